import {
  ApplicationFailure,
  CancellationScope,
  ParentClosePolicy,
  condition,
  getExternalWorkflowHandle,
  setHandler,
  sleep,
  startChild,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import {
  changeLockGrantedSignal,
  changeLockProbeSignal,
  releaseChangeLockSignal,
  requestChangeLockSignal,
  type HostChangeLockRequest,
  type hostChangeLock,
} from '../host-change-lock.workflow.js';

export const changeLockId = (hostId: string) => `host-change-lock/${hostId}`;

/**
 * The holder's side of host-change-lock/<hostId>. Call once at the start of a workflow (it
 * installs the grant and probe signal handlers; no command, so replay-safe), then run each host
 * change through `withHostLock`: request → wait for the grant → run → release in a `finally`
 * (non-cancellable), so failure and cancellation release the host too.
 */
export function hostChangeLocks() {
  const granted = new Set<string>();
  setHandler(changeLockGrantedSignal, ({ token }) => void granted.add(token));
  setHandler(changeLockProbeSignal, () => undefined);

  /** Signals the lock; starts it (as an abandoned child, so it outlives us) when it is not running. */
  async function request(hostId: string, req: HostChangeLockRequest): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await getExternalWorkflowHandle(changeLockId(hostId)).signal(requestChangeLockSignal, req);
        return;
      } catch {
        // Not running (never started, or completed after being idle): start it with us as the first waiter.
      }
      try {
        await startChild<typeof hostChangeLock>('hostChangeLock', {
          workflowId: changeLockId(hostId),
          args: [{ hostId, queue: [req] }],
          parentClosePolicy: ParentClosePolicy.ABANDON,
        });
        return;
      } catch (err) {
        // Another requester started it between our two calls: signal it.
        if ((err as Error).name !== 'WorkflowExecutionAlreadyStartedError') throw err;
      }
      if (attempt >= 10) throw ApplicationFailure.nonRetryable(`could not reach ${changeLockId(hostId)}`, 'HostLockUnavailable');
      await sleep('1 second');
    }
  }

  async function withHostLock<T>(hostId: string, purpose: string, fn: () => Promise<T>, onWaiting?: () => void): Promise<T> {
    const { workflowId, runId } = workflowInfo();
    const token = uuid4();
    try {
      onWaiting?.();
      await request(hostId, { holderWorkflowId: workflowId, holderRunId: runId, token, purpose });
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
