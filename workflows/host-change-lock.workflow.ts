import { condition, continueAsNew, defineQuery, defineSignal, getExternalWorkflowHandle, setHandler, workflowInfo } from '@temporalio/workflow';

/**
 * host-change-lock/<hostId>: one change at a time on a host (Temporal's mutex pattern). Workflows
 * that change a host for a short while (account opening, ssh key add/revoke) request it, wait for
 * `granted`, do their remote work and send `release` — in a `finally`, so a failure or a
 * cancellation releases it too (workflows/shared/host-change-lock.ts).
 *
 * Why not `host-lock/<hostId>`: that one is the *allocation's* hold on a rented host (months long,
 * the API refuses a second allocation with 40901). Account openings on a customer's rented host and
 * key changes of its tenant happen *while* the allocation holds it, so they cannot take that lock;
 * they queue here instead and wait (FIFO) rather than being refused.
 *
 * A lost release (the holder was terminated, or its release signal never came) does not block the
 * host for long: while a holder has the lock, the lock pings it every 20 s with a no-op signal; a
 * holder run that no longer exists cannot be signalled, and the lock goes to the next waiter. A
 * waiter that is gone by its turn is skipped the same way. With no waiter for 30 s the workflow
 * completes (the next request's signal-with-start starts it again); after 500 grants it continues as new, carrying
 * the queue.
 */
export interface HostChangeLockRequest {
  holderWorkflowId: string;
  holderRunId: string;
  /** Unique per request (the holder's uuid4). */
  token: string;
  /** What the holder does, for the Web UI (e.g. `account-opening/<requestId>`). */
  purpose: string;
}

export interface HostChangeLockInput {
  hostId: string;
  /** Waiters carried over continue-as-new. */
  queue?: HostChangeLockRequest[];
}

export interface HostChangeLockState {
  hostId: string;
  holder: HostChangeLockRequest | null;
  waiting: HostChangeLockRequest[];
  granted: number;
}

export const requestChangeLockSignal = defineSignal<[HostChangeLockRequest]>('request');
export const releaseChangeLockSignal = defineSignal<[{ token: string }]>('release');
/** Lock → holder. */
export const changeLockGrantedSignal = defineSignal<[{ token: string }]>('host-change-lock-granted');
/** Lock → holder, a liveness probe: it fails once the holder run has ended. */
export const changeLockProbeSignal = defineSignal<[]>('host-change-lock-probe');
export const changeLockStateQuery = defineQuery<HostChangeLockState>('state');

export const CHANGE_LOCK_PROBE = '20 seconds';
const IDLE = '30 seconds';
const MAX_GRANTS_PER_RUN = 500;

export async function hostChangeLock(input: HostChangeLockInput): Promise<{ hostId: string; granted: number }> {
  const queue: HostChangeLockRequest[] = [...(input.queue ?? [])];
  let holder: HostChangeLockRequest | null = null;
  let granted = 0;
  // Tokens released (or granted) in this run: a request signal repeated by a retried activity, or
  // arriving after its holder gave up, is not queued again.
  const finished: string[] = [];
  const finish = (token: string) => {
    finished.push(token);
    if (finished.length > 1000) finished.shift();
  };
  setHandler(requestChangeLockSignal, (r) => {
    if (holder?.token === r.token || queue.some((q) => q.token === r.token) || finished.includes(r.token)) return;
    queue.push(r);
  });
  setHandler(releaseChangeLockSignal, ({ token }) => {
    finish(token);
    if (holder?.token === token) holder = null;
    else {
      // A waiter that gave up (cancelled before its turn).
      const i = queue.findIndex((q) => q.token === token);
      if (i >= 0) queue.splice(i, 1);
    }
  });
  setHandler(changeLockStateQuery, () => ({ hostId: input.hostId, holder, waiting: [...queue], granted }));

  for (;;) {
    if (!queue.length && !(await condition(() => queue.length > 0, IDLE))) return { hostId: input.hostId, granted };
    if (granted >= MAX_GRANTS_PER_RUN || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof hostChangeLock>({ hostId: input.hostId, queue: [...queue] });
    }
    const next = queue.shift()!;
    holder = next;
    finish(next.token);
    const holderHandle = getExternalWorkflowHandle(next.holderWorkflowId, next.holderRunId);
    try {
      await holderHandle.signal(changeLockGrantedSignal, { token: next.token });
    } catch {
      // The waiter is gone (terminated, or ended before its turn): next one.
      holder = null;
      continue;
    }
    granted++;
    while (holder?.token === next.token) {
      if (await condition(() => holder?.token !== next.token, CHANGE_LOCK_PROBE)) break;
      try {
        await holderHandle.signal(changeLockProbeSignal);
      } catch {
        // The holder ended without releasing (a lost release): the host is free again.
        holder = null;
      }
    }
  }
}
