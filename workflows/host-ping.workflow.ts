import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { dbActivityOptions } from './shared/policies.js';
import type { PingResult } from '../activities/remote/remote.activities.js';

const remote = proxyActivities<Pick<Activities, 'pingHost'>>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, initialInterval: '1 second', nonRetryableErrorTypes: ['AuthenticationFailed', 'HostKeyMismatch', 'HostNotFound', 'CredentialMissing'] },
});
const db = proxyActivities<Pick<Activities, 'markHostSeen'>>(dbActivityOptions);

/** host-ping/<hostId>/<ts>: is the host reachable with its stored credentials and pinned key? */
export async function hostPing(input: { hostId: string }): Promise<PingResult> {
  const result = await remote.pingHost(input.hostId);
  // Workflow time (deterministic), not the activity's wall clock.
  await db.markHostSeen(input.hostId, new Date().toISOString());
  return result;
}
