import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';

// One attempt, short: a pre-check at submit. The account-opening workflow checks again when it runs.
const remote = proxyActivities<Pick<Activities, 'lookupHostUser'>>({
  startToCloseTimeout: '20 seconds',
  retry: { maximumAttempts: 1 },
});

/** host-user-lookup/<hostId>/<ts>: does an OS account with this name exist on the host? (read-only, no host lock) */
export async function hostUserLookup(input: { hostId: string; username: string }): Promise<{ exists: boolean }> {
  return remote.lookupHostUser(input.hostId, input.username);
}
