import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
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

/**
 * The platform's Temporal Schedules (not cron in Node): created if absent, updated when the
 * configured interval or threshold changed. Overlapping runs are skipped.
 */
export async function ensureSchedules(
  client: Client,
  o: { taskQueue: string; recheckInterval: string; offlineAfter: number; reconcileInterval?: string; auditArchiveInterval?: string; auditRetentionDays?: number; gatewaySyncInterval?: string | undefined; securityAlertInterval?: string; recordingRetention?: { interval: string; retentionDays: number; mode: 'delete' | 'archive' } },
): Promise<void> {
  await ensureReconcilerSchedule(client, { taskQueue: o.taskQueue, interval: o.reconcileInterval ?? '5m' });
  if (o.recordingRetention) await ensureRecordingRetentionSchedule(client, { taskQueue: o.taskQueue, ...o.recordingRetention });
  if (o.auditArchiveInterval) await ensureAuditArchiveSchedule(client, { taskQueue: o.taskQueue, interval: o.auditArchiveInterval, retentionDays: o.auditRetentionDays ?? 365 });
  await ensureSecurityAlertsSchedule(client, { taskQueue: o.taskQueue, interval: o.securityAlertInterval ?? '1m' });
  if (o.gatewaySyncInterval) await ensureGatewaySyncSchedule(client, { taskQueue: o.taskQueue, interval: o.gatewaySyncInterval });
  const spec = { intervals: [{ every: o.recheckInterval as `${number}m` }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'hostRecheck',
    args: [{ offlineAfter: o.offlineAfter }] as Parameters<typeof hostRecheck>,
    taskQueue: o.taskQueue,
    workflowExecutionTimeout: '1 hour',
  };
  try {
    await client.schedule.create({ scheduleId: HOST_RECHECK_SCHEDULE_ID, spec, action, policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' } });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(HOST_RECHECK_SCHEDULE_ID).update((prev) => ({ ...prev, spec, action }));
  }
}

/**
 * `status-reconciler`: every `interval` (default 5 minutes), rows whose workflow closed without
 * recording a final status are fixed and reported (workflows/status-reconciler.workflow.ts).
 */
export async function ensureReconcilerSchedule(client: Client, o: { taskQueue: string; interval: string; minAgeMs?: number; scheduleId?: string }): Promise<void> {
  const scheduleId = o.scheduleId ?? STATUS_RECONCILER_SCHEDULE_ID;
  const spec = { intervals: [{ every: o.interval as `${number}m` }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'statusReconciler',
    args: [{ ...(o.minAgeMs === undefined ? {} : { minAgeMs: o.minAgeMs }) }] as Parameters<typeof statusReconciler>,
    taskQueue: o.taskQueue,
    workflowExecutionTimeout: '30 minutes',
  };
  try {
    await client.schedule.create({ scheduleId, spec, action, policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' } });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((prev) => ({ ...prev, spec, action }));
  }
}

/** `recording-retention`: deletes or archives terminal recordings of sessions that ended more than N days ago (workflows/recording-retention.workflow.ts). */
export async function ensureRecordingRetentionSchedule(client: Client, o: { taskQueue: string; interval: string; retentionDays: number; mode: 'delete' | 'archive'; scheduleId?: string }): Promise<void> {
  const scheduleId = o.scheduleId ?? RECORDING_RETENTION_SCHEDULE_ID;
  const spec = { intervals: [{ every: o.interval as `${number}d` }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'recordingRetention',
    args: [{ retentionDays: o.retentionDays, mode: o.mode }] as Parameters<typeof recordingRetention>,
    taskQueue: o.taskQueue,
    workflowExecutionTimeout: '2 hours',
  };
  try {
    await client.schedule.create({ scheduleId, spec, action, policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' } });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((prev) => ({ ...prev, spec, action }));
  }
}

/** `audit-archive`: retention of the audit trail (workflows/audit-archive.workflow.ts). */
export async function ensureAuditArchiveSchedule(client: Client, o: { taskQueue: string; interval: string; retentionDays: number }): Promise<void> {
  const spec = { intervals: [{ every: o.interval as `${number}d` }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'auditArchive',
    args: [{ retentionDays: o.retentionDays }] as Parameters<typeof auditArchive>,
    taskQueue: o.taskQueue,
    workflowExecutionTimeout: '2 hours',
  };
  try {
    await client.schedule.create({ scheduleId: AUDIT_ARCHIVE_SCHEDULE_ID, spec, action, policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' } });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(AUDIT_ARCHIVE_SCHEDULE_ID).update((prev) => ({ ...prev, spec, action }));
  }
}

/**
 * `gateway-sync`: the drift check of the managed gateway (workflows/gateway-sync.workflow.ts): a
 * hand-edited config, a lost reload or a dead nginx is put right within one interval.
 */
export async function ensureGatewaySyncSchedule(client: Client, o: { taskQueue: string; interval: string; scheduleId?: string }): Promise<void> {
  const scheduleId = o.scheduleId ?? GATEWAY_SYNC_SCHEDULE_ID;
  const spec = { intervals: [{ every: o.interval as `${number}m` }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'gatewaySync',
    workflowId: 'gateway-sync/drift',
    args: [{ reason: 'drift' }] as Parameters<typeof gatewaySync>,
    taskQueue: o.taskQueue,
    workflowExecutionTimeout: '10 minutes',
  };
  try {
    await client.schedule.create({ scheduleId, spec, action, policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' } });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((prev) => ({ ...prev, spec, action }));
  }
}

/** `security-alerts`: security events become notifications (workflows/security-alerts.workflow.ts). */
export async function ensureSecurityAlertsSchedule(client: Client, o: { taskQueue: string; interval: string }): Promise<void> {
  const spec = { intervals: [{ every: o.interval as `${number}m` }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'securityAlerts',
    args: [{}] as Parameters<typeof securityAlerts>,
    taskQueue: o.taskQueue,
    workflowExecutionTimeout: '30 minutes',
  };
  try {
    await client.schedule.create({ scheduleId: SECURITY_ALERTS_SCHEDULE_ID, spec, action, policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' } });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(SECURITY_ALERTS_SCHEDULE_ID).update((prev) => ({ ...prev, spec, action }));
  }
}
