import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { hostRecheck } from '../workflows/host-recheck.workflow.js';

export const HOST_RECHECK_SCHEDULE_ID = 'host-recheck';

/**
 * The platform's Temporal Schedules (not cron in Node): created if absent, updated when the
 * configured interval or threshold changed. Overlapping runs are skipped.
 */
export async function ensureSchedules(client: Client, o: { taskQueue: string; recheckInterval: string; offlineAfter: number }): Promise<void> {
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
