import { setTimeout as delay } from 'node:timers/promises';
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, ServiceError, type Client, type ScheduleOptionsAction, type ScheduleSpec } from '@temporalio/client';
import type { hostRecheck } from '../workflows/host-recheck.workflow.js';
import type { statusReconciler } from '../workflows/status-reconciler.workflow.js';
import type { auditArchive } from '../workflows/audit-archive.workflow.js';
import type { recordingRetention } from '../workflows/recording-retention.workflow.js';
import type { gatewaySync } from '../workflows/gateway-sync.workflow.js';
import type { securityAlerts } from '../workflows/security-alerts.workflow.js';

export const HOST_RECHECK_SCHEDULE_ID = 'host-recheck';
export const STATUS_RECONCILER_SCHEDULE_ID = 'status-reconciler';
export const AUDIT_ARCHIVE_SCHEDULE_ID = 'audit-archive';
export const RECORDING_RETENTION_SCHEDULE_ID = 'recording-retention';
export const GATEWAY_SYNC_SCHEDULE_ID = 'gateway-sync';
export const SECURITY_ALERTS_SCHEDULE_ID = 'security-alerts';

/** Who hears about a retried schedule call (the worker's logger); silent when absent. */
export interface ScheduleLog {
  warn(obj: object, msg: string): void;
}

interface Common {
  taskQueue: string;
  log?: ScheduleLog | undefined;
}

/**
 * The platform's Temporal Schedules (not cron in Node): created if absent, updated when the
 * configured interval or threshold changed. Overlapping runs are skipped.
 */
export async function ensureSchedules(
  client: Client,
  o: Common & { recheckInterval: string; offlineAfter: number; reconcileInterval?: string; auditArchiveInterval?: string; auditRetentionDays?: number; gatewaySyncInterval?: string | undefined; securityAlertInterval?: string; recordingRetention?: { interval: string; retentionDays: number; mode: 'delete' | 'archive' } | undefined },
): Promise<void> {
  const { taskQueue, log } = o;
  await ensureReconcilerSchedule(client, { taskQueue, log, interval: o.reconcileInterval ?? '5m' });
  if (o.recordingRetention) await ensureRecordingRetentionSchedule(client, { taskQueue, log, ...o.recordingRetention });
  if (o.auditArchiveInterval) await ensureAuditArchiveSchedule(client, { taskQueue, log, interval: o.auditArchiveInterval, retentionDays: o.auditRetentionDays ?? 365 });
  await ensureSecurityAlertsSchedule(client, { taskQueue, log, interval: o.securityAlertInterval ?? '1m' });
  if (o.gatewaySyncInterval) await ensureGatewaySyncSchedule(client, { taskQueue, log, interval: o.gatewaySyncInterval });
  await upsertSchedule(client, {
    scheduleId: HOST_RECHECK_SCHEDULE_ID,
    spec: { intervals: [{ every: o.recheckInterval as `${number}m` }] },
    action: { type: 'startWorkflow', workflowType: 'hostRecheck', args: [{ offlineAfter: o.offlineAfter }] as Parameters<typeof hostRecheck>, taskQueue, workflowExecutionTimeout: '1 hour' },
    catchupWindow: '1 minute',
    log,
  });
}

/**
 * `status-reconciler`: every `interval` (default 5 minutes), rows whose workflow closed without
 * recording a final status are fixed and reported (workflows/status-reconciler.workflow.ts).
 */
export async function ensureReconcilerSchedule(client: Client, o: Common & { interval: string; minAgeMs?: number; scheduleId?: string }): Promise<void> {
  await upsertSchedule(client, {
    scheduleId: o.scheduleId ?? STATUS_RECONCILER_SCHEDULE_ID,
    spec: { intervals: [{ every: o.interval as `${number}m` }] },
    action: {
      type: 'startWorkflow',
      workflowType: 'statusReconciler',
      args: [{ ...(o.minAgeMs === undefined ? {} : { minAgeMs: o.minAgeMs }) }] as Parameters<typeof statusReconciler>,
      taskQueue: o.taskQueue,
      workflowExecutionTimeout: '30 minutes',
    },
    catchupWindow: '1 minute',
    log: o.log,
  });
}

/** `recording-retention`: deletes or archives terminal recordings of sessions that ended more than N days ago (workflows/recording-retention.workflow.ts). */
export async function ensureRecordingRetentionSchedule(client: Client, o: Common & { interval: string; retentionDays: number; mode: 'delete' | 'archive'; scheduleId?: string }): Promise<void> {
  await upsertSchedule(client, {
    scheduleId: o.scheduleId ?? RECORDING_RETENTION_SCHEDULE_ID,
    spec: { intervals: [{ every: o.interval as `${number}d` }] },
    action: {
      type: 'startWorkflow',
      workflowType: 'recordingRetention',
      args: [{ retentionDays: o.retentionDays, mode: o.mode }] as Parameters<typeof recordingRetention>,
      taskQueue: o.taskQueue,
      workflowExecutionTimeout: '2 hours',
    },
    catchupWindow: '1 hour',
    log: o.log,
  });
}

/** `audit-archive`: retention of the audit trail (workflows/audit-archive.workflow.ts). */
export async function ensureAuditArchiveSchedule(client: Client, o: Common & { interval: string; retentionDays: number }): Promise<void> {
  await upsertSchedule(client, {
    scheduleId: AUDIT_ARCHIVE_SCHEDULE_ID,
    spec: { intervals: [{ every: o.interval as `${number}d` }] },
    action: { type: 'startWorkflow', workflowType: 'auditArchive', args: [{ retentionDays: o.retentionDays }] as Parameters<typeof auditArchive>, taskQueue: o.taskQueue, workflowExecutionTimeout: '2 hours' },
    catchupWindow: '1 hour',
    log: o.log,
  });
}

/**
 * `gateway-sync`: the drift check of the managed gateway (workflows/gateway-sync.workflow.ts): a
 * hand-edited config, a lost reload or a dead nginx is put right within one interval.
 */
export async function ensureGatewaySyncSchedule(client: Client, o: Common & { interval: string; scheduleId?: string }): Promise<void> {
  await upsertSchedule(client, {
    scheduleId: o.scheduleId ?? GATEWAY_SYNC_SCHEDULE_ID,
    spec: { intervals: [{ every: o.interval as `${number}m` }] },
    action: {
      type: 'startWorkflow',
      workflowType: 'gatewaySync',
      workflowId: 'gateway-sync/drift',
      args: [{ reason: 'drift' }] as Parameters<typeof gatewaySync>,
      taskQueue: o.taskQueue,
      workflowExecutionTimeout: '10 minutes',
    },
    catchupWindow: '1 minute',
    log: o.log,
  });
}

/** `security-alerts`: security events become notifications (workflows/security-alerts.workflow.ts). */
export async function ensureSecurityAlertsSchedule(client: Client, o: Common & { interval: string }): Promise<void> {
  await upsertSchedule(client, {
    scheduleId: SECURITY_ALERTS_SCHEDULE_ID,
    spec: { intervals: [{ every: o.interval as `${number}m` }] },
    action: { type: 'startWorkflow', workflowType: 'securityAlerts', args: [{}] as Parameters<typeof securityAlerts>, taskQueue: o.taskQueue, workflowExecutionTimeout: '30 minutes' },
    catchupWindow: '1 minute',
    log: o.log,
  });
}

/** gRPC codes a retry cannot fix: a bad spec, or a caller who may not do this. */
const PERMANENT_GRPC_CODES = new Set([3 /* INVALID_ARGUMENT */, 7 /* PERMISSION_DENIED */, 12 /* UNIMPLEMENTED */, 16 /* UNAUTHENTICATED */]);

function causeOf(err: unknown): { code?: unknown; message?: string } | undefined {
  return (err as { cause?: { code?: unknown; message?: string } }).cause;
}

/**
 * Creates the schedule, or updates its spec and action when it exists. Updating describes the
 * schedule first, which the server answers by querying its scheduler workflow: right after a
 * (dev) server restart, or on a loaded machine, that query can time out or find the scheduler not
 * yet queryable (CI met "Failed to describe schedule" on a restart). Such failures are retried
 * with backoff within `retryForMs`; a bad spec or a refused caller is not.
 */
export async function upsertSchedule(
  client: Client,
  o: { scheduleId: string; spec: ScheduleSpec; action: ScheduleOptionsAction; catchupWindow: '1 minute' | '1 hour'; log?: ScheduleLog | undefined; retryForMs?: number },
): Promise<void> {
  const deadline = Date.now() + (o.retryForMs ?? 120_000);
  for (let attempt = 1; ; attempt++) {
    try {
      try {
        await client.schedule.create({ scheduleId: o.scheduleId, spec: o.spec, action: o.action, policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: o.catchupWindow } });
      } catch (err) {
        if (!(err instanceof ScheduleAlreadyRunning)) throw err;
        await client.schedule.getHandle(o.scheduleId).update((prev) => ({ ...prev, spec: o.spec, action: o.action }));
      }
      return;
    } catch (err) {
      const code = causeOf(err)?.code;
      // Not found while updating: deleted in between, and the next attempt creates it.
      const transient = err instanceof ScheduleNotFoundError || (err instanceof ServiceError && !(typeof code === 'number' && PERMANENT_GRPC_CODES.has(code)));
      const cause = causeOf(err)?.message;
      if (!transient || Date.now() >= deadline) {
        throw new Error(`schedule ${o.scheduleId}: ${(err as Error).message}${cause ? ` (${cause})` : ''}`, { cause: err });
      }
      const retryInMs = Math.min(5_000, 500 * 2 ** (attempt - 1));
      o.log?.warn({ scheduleId: o.scheduleId, attempt, err: (err as Error).message, cause, retryInMs }, 'schedule create/update failed; retrying');
      await delay(retryInMs);
    }
  }
}
