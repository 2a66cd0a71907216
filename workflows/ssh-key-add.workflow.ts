import { ApplicationFailure, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import { hostChangeLocks } from './shared/host-change-lock.js';
import type { Activities } from '../activities/index.js';

const db = proxyActivities<Pick<Activities, 'activeAllocationsOfKeyOwner'>>({ startToCloseTimeout: '30 seconds' });
const remote = proxyActivities<Pick<Activities, 'addKeyToAllocation'>>({
  startToCloseTimeout: '2 minutes',
  // An offline host is retried for about an hour, like ssh-key-revoke.
  retry: { initialInterval: '5 seconds', maximumInterval: '5 minutes', maximumAttempts: 20, nonRetryableErrorTypes: ['AuthenticationFailed', 'HostKeyMismatch', 'AccountExistsNotManaged', 'NotFound', 'InvalidInput'] },
});

export interface SshKeyAddHost {
  allocationId: string;
  hostId: string;
  added: number;
  skipped?: string;
  error?: string;
}

/**
 * ssh-key-add/<keyId>: a key a customer user adds while they rent hosts reaches the accounts of
 * their active allocations now (the mirror of ssh-key-revoke). One activity per allocation, in
 * parallel; a host that cannot be reached is named and the run fails so the Web UI shows it.
 */
export async function sshKeyAdd(input: { keyId: string }): Promise<{ hosts: SshKeyAddHost[] }> {
  const targets = await db.activeAllocationsOfKeyOwner(input.keyId);
  const locks = hostChangeLocks();
  // Patch `host-change-lock`: each host's change runs under host-change-lock/<hostId> (waits for an
  // account opening or another key change on that host; released in a finally).
  const locked = patched('host-change-lock');
  const hosts = await Promise.all(
    targets.map(async (t): Promise<SshKeyAddHost> => {
      try {
        const change = () => remote.addKeyToAllocation(t.allocationId, input.keyId);
        return { ...t, ...(await (locked ? locks.withHostLock(t.hostId, workflowInfo().workflowId, change) : change())) };
      } catch (err) {
        const cause = (err as { cause?: Error }).cause ?? (err as Error);
        return { ...t, added: 0, error: cause.message };
      }
    }),
  );
  const failed = hosts.filter((h) => h.error);
  if (failed.length) {
    throw ApplicationFailure.nonRetryable(`key not added on ${failed.length} host(s): ${failed.map((h) => `${h.hostId}: ${h.error}`).join('; ')}`, 'KeyAddIncomplete', hosts);
  }
  return { hosts };
}
