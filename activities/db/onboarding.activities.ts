import type { SqlEntityManager } from '@mikro-orm/sql';
import { ApplicationFailure } from '@temporalio/common';
import { HostSchema, OnboardingStepSchema, type HostStatus, type OnboardingStepName, type StepStatus } from '../../db/entities/index.js';
import { canTransition } from '../../db/host-status.js';

export interface StepWrite {
  step: OnboardingStepName;
  status: StepStatus;
  error?: string | null;
  detail?: Record<string, unknown> | null;
  /** For 'running': false when this is a retry of the same step run (the attempt is not counted again). Default true. */
  newAttempt?: boolean;
}

/** Upserts one step row of a host's onboarding in `em` (the caller flushes). */
export async function writeOnboardingStep(em: SqlEntityManager, hostId: string, w: StepWrite): Promise<void> {
  let row = await em.findOne(OnboardingStepSchema, { host: hostId, step: w.step });
  if (!row) row = em.create(OnboardingStepSchema, { host: hostId, step: w.step });
  row.status = w.status;
  if (w.status === 'running') {
    if (w.newAttempt !== false || row.attempts === 0) row.attempts += 1;
    row.startedAt = new Date();
    row.finishedAt = null;
    row.error = null;
  }
  if (w.status === 'done' || w.status === 'failed' || w.status === 'skipped') row.finishedAt = new Date();
  if (w.error !== undefined) row.error = w.error?.slice(0, 2000) ?? null;
  if (w.detail !== undefined) row.detail = w.detail;
}

/** Moves a loaded host along the status machine (db/host-status.ts) in `em`; a no-op if it is already there. */
async function moveHostStatus(em: SqlEntityManager, hostId: string, to: HostStatus): Promise<{ from: HostStatus; to: HostStatus }> {
  const host = await em.findOneOrFail(HostSchema, { id: hostId });
  const from = host.status;
  if (from === to) return { from, to };
  if (!canTransition(from, to)) throw ApplicationFailure.nonRetryable(`host ${host.slug} cannot go from ${from} to ${to}`, 'InvalidTransition');
  host.status = to;
  return { from, to };
}

/** Onboarding progress and host status mirrors. */
export function createOnboardingDbActivities(deps: { em: SqlEntityManager }) {
  return {
    async setOnboardingStep(hostId: string, step: OnboardingStepName, status: StepStatus, extra: { error?: string | null; detail?: Record<string, unknown> | null } = {}): Promise<void> {
      const em = deps.em.fork();
      await writeOnboardingStep(em, hostId, { step, status, ...extra });
      await em.flush();
    },

    /**
     * Several step records and, optionally, the host's status, in one transaction: the onboarding
     * workflow's bookkeeping between the steps that do remote work (the skipped steps, the last
     * step with the host online, a failed step with the host failed) in one local activity.
     */
    async recordOnboardingSteps(hostId: string, writes: StepWrite[], hostStatus?: HostStatus): Promise<void> {
      const em = deps.em.fork();
      for (const w of writes) await writeOnboardingStep(em, hostId, w);
      if (hostStatus) await moveHostStatus(em, hostId, hostStatus);
      await em.flush();
    },

    /** Moves a host along the status machine (db/host-status.ts); a no-op if it is already there. */
    async setHostStatus(hostId: string, to: HostStatus): Promise<{ from: HostStatus; to: HostStatus }> {
      const em = deps.em.fork();
      const r = await moveHostStatus(em, hostId, to);
      await em.flush();
      return r;
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
