import type { SqlEntityManager } from '@mikro-orm/sql';
import { ApplicationFailure } from '@temporalio/common';
import { HostSchema, OnboardingStepSchema, type HostStatus, type OnboardingStepName, type StepStatus } from '../../db/entities/index.js';
import { canTransition } from '../../db/host-status.js';

/** Onboarding progress and host status mirrors. */
export function createOnboardingDbActivities(deps: { em: SqlEntityManager }) {
  return {
    async setOnboardingStep(hostId: string, step: OnboardingStepName, status: StepStatus, extra: { error?: string | null; detail?: Record<string, unknown> | null } = {}): Promise<void> {
      const em = deps.em.fork();
      let row = await em.findOne(OnboardingStepSchema, { host: hostId, step });
      if (!row) row = em.create(OnboardingStepSchema, { host: hostId, step });
      row.status = status;
      if (status === 'running') {
        row.attempts += 1;
        row.startedAt = new Date();
        row.finishedAt = null;
        row.error = null;
      }
      if (status === 'done' || status === 'failed' || status === 'skipped') row.finishedAt = new Date();
      if (extra.error !== undefined) row.error = extra.error?.slice(0, 2000) ?? null;
      if (extra.detail !== undefined) row.detail = extra.detail;
      await em.flush();
    },

    /** Moves a host along the status machine (db/host-status.ts); a no-op if it is already there. */
    async setHostStatus(hostId: string, to: HostStatus): Promise<{ from: HostStatus; to: HostStatus }> {
      const em = deps.em.fork();
      const host = await em.findOneOrFail(HostSchema, { id: hostId });
      const from = host.status;
      if (from === to) return { from, to };
      if (!canTransition(from, to)) throw ApplicationFailure.nonRetryable(`host ${host.slug} cannot go from ${from} to ${to}`, 'InvalidTransition');
      host.status = to;
      await em.flush();
      return { from, to };
    },

    /** Hosts the periodic re-check looks at. */
    async listRecheckHosts(): Promise<string[]> {
      const rows = await deps.em.fork().find(HostSchema, { status: { $in: ['online', 'offline'] } }, { fields: ['id'], orderBy: { id: 'asc' } });
      return rows.map((h) => h.id);
    },

    /** Records a re-check: resets the failure count on success; after `threshold` failures an online host goes offline. */
    async recordRecheck(hostId: string, ok: boolean, threshold: number): Promise<{ status: HostStatus; changed: boolean; failures: number }> {
      const em = deps.em.fork();
      const host = await em.findOneOrFail(HostSchema, { id: hostId });
      const before = host.status;
      if (ok) {
        host.recheckFailures = 0;
        host.lastSeenAt = new Date();
        if (host.status === 'offline') host.status = 'online';
      } else {
        host.recheckFailures += 1;
        if (host.status === 'online' && host.recheckFailures >= threshold) host.status = 'offline';
      }
      await em.flush();
      return { status: host.status, changed: before !== host.status, failures: host.recheckFailures };
    },
  };
}
