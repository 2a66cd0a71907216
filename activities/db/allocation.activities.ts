import type { SqlEntityManager } from '@mikro-orm/sql';
import { ApplicationFailure } from '@temporalio/common';
import type { Transporter } from 'nodemailer';
import { recordAudit } from '../../db/audit.js';
import {
  AllocationSchema,
  AllocationStepSchema,
  AuditEventSchema,
  HostSchema,
  HOLDING_ALLOCATION_STATUSES,
  SshKeySchema,
  type AllocationStatus,
  type LeaseEventKind,
} from '../../db/entities/index.js';
import { canTransition } from '../../db/host-status.js';
import { connectionSummary, connectionSummaryText } from '../../db/connection-summary.js';
import { createEmitter, type NotifyDeps } from '../notify/notify.activities.js';
import { reminderKindMinutes, remainingText } from '../../workflows/shared/reminder-offsets.js';
import type { Logger } from '../../config/logger.js';
import { observeLeaseNoticeLag } from '../../config/metrics.js';

export interface AllocationDbDeps extends NotifyDeps {
  em: SqlEntityManager;
  logger: Logger;
  mailer: Transporter | null;
  mailFrom: string;
}

export interface LeaseEventInput {
  allocationId: string;
  kind: LeaseEventKind;
  /** Workflow times (ms since epoch): when it was due, when it fired, and the lease end it refers to. */
  dueAtMs: number;
  firedAtMs: number;
  endsAtMs: number;
  bufferEndsAtMs?: number;
}

/** The audit actor of host status changes made by reclaim (finishReclaim undoes only its own). */
const RECLAIM_ACTOR = 'system:reclaim';


/** Allocation, lease and reclaim mirrors in the DB, and their notifications. */
export function createAllocationDbActivities(deps: AllocationDbDeps) {
  const notify = createEmitter(deps);
  return {
    /** Allocations of the key's owner that hold a host (and so may have the key in authorized_keys). */
    async allocationsOfKeyOwner(keyId: string): Promise<Array<{ allocationId: string; hostId: string }>> {
      const em = deps.em.fork();
      const key = await em.findOne(SshKeySchema, { id: keyId });
      if (!key) throw ApplicationFailure.nonRetryable(`ssh key ${keyId} does not exist`, 'NotFound');
      const rows = await em.find(AllocationSchema, { customerUser: key.user, status: { $in: [...HOLDING_ALLOCATION_STATUSES] } }, { fields: ['id', 'host'], orderBy: { createdAt: 'asc' } });
      return rows.map((a) => ({ allocationId: a.id, hostId: a.host.id }));
    },

    /** Allocations of the key's owner whose account is in use (active or buffer): where a new key must go. */
    async activeAllocationsOfKeyOwner(keyId: string): Promise<Array<{ allocationId: string; hostId: string }>> {
      const em = deps.em.fork();
      const key = await em.findOne(SshKeySchema, { id: keyId });
      if (!key) throw ApplicationFailure.nonRetryable(`ssh key ${keyId} does not exist`, 'NotFound');
      const rows = await em.find(AllocationSchema, { customerUser: key.user, status: { $in: ['active', 'buffer'] } }, { fields: ['id', 'host'], orderBy: { createdAt: 'asc' } });
      return rows.map((a) => ({ allocationId: a.id, hostId: a.host.id }));
    },

    async setAllocationStep(
      allocationId: string,
      phase: 'allocate' | 'reclaim',
      step: string,
      position: number,
      status: 'pending' | 'running' | 'done' | 'failed' | 'skipped' | 'waiting',
      extra: { error?: string | null; detail?: Record<string, unknown> | null } = {},
    ): Promise<void> {
      const em = deps.em.fork();
      let row = await em.findOne(AllocationStepSchema, { allocation: allocationId, phase, step });
      if (!row) row = em.create(AllocationStepSchema, { allocation: allocationId, phase, step, position });
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

    async setAllocationStatus(
      allocationId: string,
      status: AllocationStatus,
      extra: { failedStep?: string | null; error?: string | null; endsAtMs?: number; terminateReason?: string | null; onlyFrom?: AllocationStatus[] } = {},
    ): Promise<void> {
      const em = deps.em.fork();
      const a = await em.findOneOrFail(AllocationSchema, { id: allocationId });
      if (extra.onlyFrom && !extra.onlyFrom.includes(a.status)) return;
      a.status = status;
      if (extra.failedStep !== undefined) a.failedStep = extra.failedStep;
      if (extra.error !== undefined) a.error = extra.error?.slice(0, 2000) ?? null;
      if (extra.endsAtMs !== undefined) a.endsAt = new Date(extra.endsAtMs);
      if (extra.terminateReason !== undefined) a.terminateReason = extra.terminateReason;
      if (status === 'reclaimed') a.reclaimedAt = new Date();
      await em.flush();
    },

    /** Whether the allocation still holds its host (the host lock releases itself when not). */
    async allocationHoldsHost(allocationId: string): Promise<boolean> {
      const a = await deps.em.fork().findOne(AllocationSchema, { id: allocationId });
      return !!a && HOLDING_ALLOCATION_STATUSES.includes(a.status);
    },

    async allocationTemplate(allocationId: string): Promise<string | null> {
      const a = await deps.em.fork().findOneOrFail(AllocationSchema, { id: allocationId }, { populate: ['host'] });
      return a.host.templateId ?? null;
    },

    /**
     * A lease event, exactly once per (allocation, kind): the row's unique key records it; the
     * notification is exactly-once per (event key, recipient, channel) in notify. A retry after a
     * crash between the two finishes the send instead of skipping or repeating it.
     */
    async recordLeaseEvent(input: LeaseEventInput): Promise<{ recorded: boolean; notification: string }> {
      const em = deps.em.fork();
      const a = await em.findOneOrFail(AllocationSchema, { id: input.allocationId }, { populate: ['host', 'customerUser'] });
      const inserted = await em.getConnection().execute<Array<{ id: string }>>(
        `insert into lease_events (id, allocation_id, kind, due_at, fired_at, lease_ends_at, created_at)
         values (gen_random_uuid(), ?, ?, ?, ?, ?, now()) on conflict (allocation_id, kind) do nothing returning id`,
        [a.id, input.kind, new Date(input.dueAtMs), new Date(input.firedAtMs), new Date(input.endsAtMs)],
      );
      const minutes = reminderKindMinutes(input.kind);
      const common = { host: a.host.name, hostSlug: a.host.slug, allocationId: a.id, endsAt: input.endsAtMs };
      const key = `lease/${a.id}/${input.kind}`;
      const to = { userIds: [a.customerUser.id] };
      const n =
        minutes !== null
          ? await notify({ event: 'lease.reminder', key, to, data: { ...common, days: Math.floor(minutes / 1440), daysText: remainingText(minutes).en, remainingZh: remainingText(minutes).zh } })
          : input.kind === 'ended'
            ? await notify({ event: 'lease.ended', key, to, data: { ...common, bufferEndsAt: input.bufferEndsAtMs ?? input.endsAtMs } })
            : await notify({ event: 'reclaim.started', key, to, data: { host: a.host.name, hostSlug: a.host.slug, allocationId: a.id } });
      await em.getConnection().execute('update lease_events set notification = ? where allocation_id = ? and kind = ?', [n.status === 'duplicate' ? 'sent' : n.status, a.id, input.kind]);
      // Due vs sent: once per notice delivered (a replayed duplicate of one already sent is not counted again).
      if (n.status !== 'duplicate') observeLeaseNoticeLag(minutes !== null ? 'reminder' : input.kind === 'ended' ? 'ended' : 'reclaim', n.status, input.dueAtMs);
      return { recorded: inserted.length > 0, notification: n.status };
    },

    async sendConnectionSummary(allocationId: string): Promise<{ notification: string }> {
      const em = deps.em.fork();
      const s = await connectionSummary(em, allocationId);
      if (!s) throw ApplicationFailure.nonRetryable(`allocation ${allocationId} does not exist`, 'NotFound');
      const a = await em.findOneOrFail(AllocationSchema, { id: allocationId });
      const n = await notify({ event: 'allocation.ready', key: `allocation/${allocationId}/connection-summary`, to: { userIds: [a.customerUser.id] }, data: { host: s.host.name, summary: connectionSummaryText(s), allocationId } });
      return { notification: n.status };
    },

    async notifyRunningTasks(allocationId: string, sample: string[], graceEndsAtMs: number): Promise<{ notification: string }> {
      const em = deps.em.fork();
      const a = await em.findOneOrFail(AllocationSchema, { id: allocationId }, { populate: ['host', 'customerUser'] });
      const n = await notify({
        event: 'reclaim.blocked',
        key: `reclaim/${allocationId}/tasks-running`,
        to: { userIds: [a.customerUser.id] },
        data: { host: a.host.name, hostSlug: a.host.slug, allocationId, graceEndsAt: graceEndsAtMs, tasks: sample.map((t) => `  ${t}`).join('\n') },
      });
      return { notification: n.status };
    },

    /**
     * Reclaim finished: allocation reclaimed, and the host back in the pool — but only out of a
     * `maintenance` that reclaim itself set (failReclaim). A status an operator set while the
     * reclaim ran (their `host.status` audit event is the latest) is theirs and stays.
     */
    async finishReclaim(allocationId: string): Promise<{ hostStatus: string }> {
      const em = deps.em.fork();
      const a = await em.findOneOrFail(AllocationSchema, { id: allocationId }, { populate: ['host'] });
      a.status = 'reclaimed';
      a.reclaimedAt = new Date();
      a.failedStep = null;
      a.error = null;
      const host = await em.findOneOrFail(HostSchema, { id: a.host.id });
      if (host.status === 'maintenance') {
        const last = await em.findOne(AuditEventSchema, { action: 'host.status', targetType: 'host', targetId: host.id }, { orderBy: { at: 'desc', id: 'desc' } });
        const byThisReclaim = last?.actor === RECLAIM_ACTOR && (last.detail as { allocationId?: string } | null)?.allocationId === a.id;
        if (byThisReclaim) {
          host.status = 'online';
          recordAudit(em, { actor: RECLAIM_ACTOR, action: 'host.status', targetType: 'host', targetId: host.id, detail: { from: 'maintenance', to: 'online', allocationId: a.id, reason: 'reclaim finished' } });
        }
      }
      await em.flush();
      return { hostStatus: host.status };
    },

    /** Reclaim failed at `step`: the host goes to `maintenance` so nobody allocates it half-cleaned. */
    async failReclaim(allocationId: string, step: string, error: string): Promise<void> {
      const em = deps.em.fork();
      const a = await em.findOneOrFail(AllocationSchema, { id: allocationId }, { populate: ['host'] });
      a.status = 'reclaim-failed';
      a.failedStep = step;
      a.error = error.slice(0, 2000);
      const host = await em.findOneOrFail(HostSchema, { id: a.host.id });
      if (host.status !== 'maintenance' && canTransition(host.status, 'maintenance')) {
        recordAudit(em, { actor: RECLAIM_ACTOR, action: 'host.status', targetType: 'host', targetId: host.id, detail: { from: host.status, to: 'maintenance', allocationId: a.id, reason: `reclaim failed at ${step}` } });
        host.status = 'maintenance';
      }
      await em.flush();
      deps.logger.warn({ allocationId, step }, 'reclaim failed; host in maintenance');
    },
  };
}
