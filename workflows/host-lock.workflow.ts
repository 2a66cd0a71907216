import { condition, defineSignal, patched, proxyActivities, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { dbActivityOptions } from './shared/policies.js';

/**
 * host-lock/<hostId>: a host is held by at most one allocation. The API starts this workflow with
 * the id-conflict policy FAIL before it records an allocation, so of N concurrent requests for
 * one host exactly one gets the lock (the others get 409, as does the DB's partial unique index).
 * Reclaim releases it with the `release` signal naming its allocation. If the allocation never
 * came to exist (the API died between the two steps) or no longer holds the host, the lock lets
 * go by itself at its next check: 5 minutes after the start, then every 10 minutes (it was once a
 * day, so a lost release blocked the host for up to a day). An operator can also release a lock
 * whose allocation is over: POST /api/v1/hosts/:id/lock/release.
 */
export interface HostLockInput {
  hostId: string;
  allocationId: string;
}

export const releaseSignal = defineSignal<[{ allocationId: string }]>('release');

const db = proxyActivities<Pick<Activities, 'allocationHoldsHost'>>(dbActivityOptions);

export async function hostLock(input: HostLockInput): Promise<{ allocationId: string; releasedBy: 'signal' | 'stale' }> {
  let released = false;
  setHandler(releaseSignal, ({ allocationId }) => {
    if (allocationId === input.allocationId) released = true;
  });
  // First check soon (a creation that never finished), then every 10 minutes (runs started
  // before this change keep their daily check).
  let wait: string = '5 minutes';
  for (;;) {
    if (await condition(() => released, wait)) return { allocationId: input.allocationId, releasedBy: 'signal' };
    if (!(await db.allocationHoldsHost(input.allocationId))) return { allocationId: input.allocationId, releasedBy: 'stale' };
    wait = patched('host-lock-10m-check') ? '10 minutes' : '1 day';
  }
}
