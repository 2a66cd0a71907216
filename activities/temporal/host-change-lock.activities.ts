import { Context } from '@temporalio/activity';
import { requestChangeLockSignal, type HostChangeLockRequest, type hostChangeLock } from '../../workflows/host-change-lock.workflow.js';

/**
 * The one activity of host-change-lock/<hostId> (Temporal's mutex sample): signal-with-start puts
 * the request into the host's lock workflow, starting it when it is not running. It uses the
 * worker's own client (activity context), on the worker's task queue. Idempotent: a retried
 * request carries the same token, which the lock queues once.
 */
export function createHostChangeLockActivities() {
  return {
    async requestHostChangeLock(hostId: string, request: HostChangeLockRequest): Promise<void> {
      const ctx = Context.current();
      await ctx.client.workflow.signalWithStart<typeof hostChangeLock, [HostChangeLockRequest]>('hostChangeLock', {
        workflowId: `host-change-lock/${hostId}`,
        taskQueue: ctx.info.taskQueue,
        args: [{ hostId }],
        signal: requestChangeLockSignal,
        signalArgs: [request],
      });
    },
  };
}
