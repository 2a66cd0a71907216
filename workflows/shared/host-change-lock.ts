import { CancellationScope, condition, getExternalWorkflowHandle, proxyActivities, setHandler, uuid4, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import { changeLockGrantedSignal, changeLockProbeSignal, releaseChangeLockSignal } from '../host-change-lock.workflow.js';
import { dbActivityOptions } from './policies.js';

/** Signal-with-start of the lock (an activity: workflows cannot signal-with-start). */
const lockActivities = proxyActivities<Pick<Activities, 'requestHostChangeLock'>>(dbActivityOptions);

export const changeLockId = (hostId: string) => `host-change-lock/${hostId}`;

/**
 * The holder's side of host-change-lock/<hostId>. Call once at the start of a workflow (it
 * installs the grant and probe signal handlers; no command, so replay-safe), then run each host
 * change through `withHostLock`: request (signal-with-start, by activity) → wait for the grant → run → release in a `finally`
 * (non-cancellable), so failure and cancellation release the host too.
 */
export function hostChangeLocks() {
  const granted = new Set<string>();
  setHandler(changeLockGrantedSignal, ({ token }) => void granted.add(token));
  setHandler(changeLockProbeSignal, () => undefined);

  async function withHostLock<T>(hostId: string, purpose: string, fn: () => Promise<T>, onWaiting?: () => void): Promise<T> {
    const { workflowId, runId } = workflowInfo();
    const token = uuid4();
    try {
      onWaiting?.();
      await lockActivities.requestHostChangeLock(hostId, { holderWorkflowId: workflowId, holderRunId: runId, token, purpose });
      await condition(() => granted.has(token));
      return await fn();
    } finally {
      await CancellationScope.nonCancellable(async () => {
        try {
          await getExternalWorkflowHandle(changeLockId(hostId)).signal(releaseChangeLockSignal, { token });
        } catch {
          // The lock is gone: nothing to release.
        }
      });
    }
  }

  return { withHostLock };
}
