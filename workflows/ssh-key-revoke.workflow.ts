import { ApplicationFailure, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import { hostChangeLocks } from './shared/host-change-lock.js';
import type { Activities } from '../activities/index.js';
import { dbActivityOptions, notifyActivityOptions } from './shared/policies.js';

const db = proxyActivities<Pick<Activities, 'allocationsOfKeyOwner'>>(dbActivityOptions);
const notifier = proxyActivities<Pick<Activities, 'notify'>>(notifyActivityOptions);
const remote = proxyActivities<Pick<Activities, 'removeRevokedKey'>>({
  startToCloseTimeout: '2 minutes',
  // An offline host is retried for about an hour (reclaim removes every key of the customer anyway).
  retry: { initialInterval: '5 seconds', maximumInterval: '5 minutes', maximumAttempts: 20, nonRetryableErrorTypes: ['AuthenticationFailed', 'HostKeyMismatch', 'AccountExistsNotManaged', 'NotFound', 'InvalidInput'] },
});

export interface SshKeyRevokeHost {
  allocationId: string;
  hostId: string;
  removed: number;
  skipped?: string;
  error?: string;
}

export interface SshKeyRevokeResult {
  hosts: SshKeyRevokeHost[];
}

/**
 * ssh-key-revoke/<keyId>: a revoked key leaves the hosts of its owner's allocations now, not at
 * the next reclaim. One activity per allocation, in parallel; a host that cannot be reached is
 * reported by name and the run fails so the Web UI shows it (the DB already says "revoked", so no
 * allocation adds the key again).
 *
 * Patch `ssh-key-revoke-notify`: the key's owner hears of it (event ssh_key.revoked, with the
 * number of hosts it was removed from), whether or not every host could be reached.
 */
export async function sshKeyRevoke(input: { keyId: string }): Promise<SshKeyRevokeResult> {
  const targets = await db.allocationsOfKeyOwner(input.keyId);
  const locks = hostChangeLocks();
  // Patch `host-change-lock`: each host's change runs under host-change-lock/<hostId> (waits for an
  // account opening or another key change on that host; released in a finally).
  const locked = patched('host-change-lock');
  const hosts = await Promise.all(
    targets.map(async (t): Promise<SshKeyRevokeHost> => {
      try {
        const change = () => remote.removeRevokedKey(t.allocationId, input.keyId);
        return { ...t, ...(await (locked ? locks.withHostLock(t.hostId, workflowInfo().workflowId, change) : change())) };
      } catch (err) {
        const cause = (err as { cause?: Error }).cause ?? (err as Error);
        return { ...t, removed: 0, error: cause.message };
      }
    }),
  );
  const failed = hosts.filter((h) => h.error);
  if (patched('ssh-key-revoke-notify')) {
    try {
      await notifier.notify({ event: 'ssh_key.revoked', key: `ssh-key-revoke/${input.keyId}`, to: { owner: true }, data: { keyId: input.keyId, hosts: hosts.length - failed.length } });
    } catch {
      // recorded in the send log by the activity; the revocation itself stands
    }
  }
  if (failed.length) {
    throw ApplicationFailure.nonRetryable(`key not removed from ${failed.length} host(s): ${failed.map((h) => `${h.hostId}: ${h.error}`).join('; ')}`, 'KeyRevokeIncomplete', hosts);
  }
  return { hosts };
}
