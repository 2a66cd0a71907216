import { ensureTerminalKey } from '../../db/terminal-keys.js';
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import ssh2 from 'ssh2';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { AllocationSchema, HostAccountSchema, SshKeySchema, type Allocation, type HostAccount } from '../../db/entities/index.js';
import type { Vault } from '../../db/vault.js';
import type { Logger } from '../../config/logger.js';
import type { RemoteExecutor } from './executor.js';
import { classified } from './failures.js';
import { generatePassword } from './passwords.js';
import { hostAccountSecretContext } from './host-targets.js';
import { hostOpsFor, type LoginVerifier } from './account-ops.js';
import { EMPTY_REPORT, recordIdentity, recordedIdentity, type HostOps, type TaskReport, type Tenant } from './host-ops.js';

export interface AllocationRemoteDeps {
  em: SqlEntityManager;
  vault: Vault;
  logger: Logger;
  ssh: RemoteExecutor & LoginVerifier;
  winrm: RemoteExecutor & LoginVerifier;
}

/** The marker an allocation writes on the host for the customer's account. */
export const allocationRef = (allocationId: string) => `allocation/${allocationId}`;

const heartbeat = (details: unknown) => {
  try {
    Context.current().heartbeat(details);
  } catch {
    // not inside an activity
  }
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type { TaskReport } from './host-ops.js';

const NO_KEYS = 'the host has no SSH keys to manage (password login)';

/**
 * Remote side of allocation and reclaim, for any OS: every host change goes through the host's
 * `HostOps` (activities/linux/, activities/windows/); nothing here branches on the OS. Every
 * activity is idempotent: it looks at the host first and only changes what is not yet as wanted,
 * so a retry or a re-run after a crash finishes the job instead of failing on its own earlier half.
 */
export function createAllocationRemoteActivities(deps: AllocationRemoteDeps) {
  const load = async (em: SqlEntityManager, allocationId: string) => {
    const a = await em.findOne(AllocationSchema, { id: allocationId }, { populate: ['host', 'customerUser'] });
    if (!a) throw ApplicationFailure.nonRetryable(`allocation ${allocationId} does not exist`, 'NotFound');
    return a;
  };
  const opsOf = (a: Allocation): HostOps => hostOpsFor(a.host, deps);
  const passwordOf = (a: HostAccount) => (a.secretCiphertext ? deps.vault.decrypt(a.secretCiphertext, hostAccountSecretContext(a.id, a.secretVersion)) : null);

  /** Fingerprints of the user's revoked keys, less any added again since (active under a new row). */
  const revokedFingerprints = async (userId: string): Promise<string[]> => {
    const rows = await deps.em.fork().find(SshKeySchema, { user: userId }, { fields: ['fingerprint', 'revokedAt'] });
    const active = new Set(rows.filter((k) => !k.revokedAt).map((k) => k.fingerprint));
    return [...new Set(rows.filter((k) => k.revokedAt && !active.has(k.fingerprint)).map((k) => k.fingerprint))];
  };

  /**
   * Whether this allocation ever began creating its account (createCustomerAccount records the row
   * before it touches the host). One that never did, e.g. refused because the name belonged to an
   * existing user, has nothing of the customer on the host: reclaim must leave that user alone
   * (not kill its processes, not fail on it) so the host comes back.
   */
  const neverCreated = async (a: Allocation): Promise<boolean> =>
    !a.hostAccountId && (await deps.em.fork().count(HostAccountSchema, { host: a.host.id, createdFromAllocationId: a.id })) === 0;
  const NEVER_CREATED = 'this allocation never created an account on the host';

  /** The account row of this allocation (the uid / SID it recorded lives there). */
  const accountOf = (em: SqlEntityManager, a: Allocation) => em.findOne(HostAccountSchema, { host: a.host.id, username: a.osUsername, createdFromAllocationId: a.id });

  /**
   * Refuses to touch an OS account the platform did not create for this allocation: its marker
   * names the allocation where the OS keeps one, else this allocation's live account row is the record.
   */
  const assertOurs = async (a: Allocation): Promise<boolean> => {
    const ops = opsOf(a).accounts;
    if (!(await ops.exists(a.osUsername))) return false;
    if (ops.keepsMarker) {
      const marker = await ops.readMarker(a.osUsername);
      if (marker !== allocationRef(a.id)) {
        throw ApplicationFailure.nonRetryable(`user ${a.osUsername} on ${a.host.slug} was not created by this allocation (marker: ${marker ?? 'none'}); not touching it`, 'AccountExistsNotManaged');
      }
      return true;
    }
    const row = await accountOf(deps.em.fork(), a);
    if (!row || row.status === 'deleted') {
      throw ApplicationFailure.nonRetryable(`user ${a.osUsername} on ${a.host.slug} was not created by this allocation (no account record of it); not touching it`, 'AccountExistsNotManaged');
    }
    return true;
  };

  const tenantOf = async (a: Allocation, em = deps.em.fork()): Promise<Tenant> => ({
    host: a.host,
    username: a.osUsername,
    allocationId: a.id,
    identity: recordedIdentity(await accountOf(em, a)),
  });

  /** What of the tenant is on the host; records the uid / SID on the account row the first time it is seen. */
  const tasksOf = async (a: Allocation, files: 'outside-home-tmp' | 'everywhere' | 'none' = 'none'): Promise<TaskReport> => {
    const em = deps.em.fork();
    const { report, identity } = await opsOf(a).tenant.footprint(await tenantOf(a, em), files);
    const account = await accountOf(em, a);
    if (account && recordIdentity(account, identity)) await em.flush();
    return report;
  };

  return {
    /**
     * Removes accounts that earlier allocations of this host left behind (their reclaim was
     * skipped or failed): only accounts the platform created for that allocation.
     */
    async cleanPreviousTenant(allocationId: string): Promise<{ removed: string[] }> {
      return classified(async () => {
        const em = deps.em.fork();
        const a = await load(em, allocationId);
        const leftovers = await em.find(HostAccountSchema, {
          host: a.host.id,
          createdFromAllocationId: { $ne: null, $nin: [a.id] },
          status: { $ne: 'deleted' },
        });
        const ops = opsOf(a);
        const removed: string[] = [];
        for (const acc of leftovers) {
          heartbeat({ cleaning: acc.username });
          if (await ops.accounts.exists(acc.username)) {
            if (ops.accounts.keepsMarker) {
              const marker = await ops.accounts.readMarker(acc.username);
              if (marker !== allocationRef(acc.createdFromAllocationId!)) {
                throw ApplicationFailure.nonRetryable(`leftover account ${acc.username} has marker ${marker ?? 'none'}; refusing to delete it`, 'AccountExistsNotManaged');
              }
            }
            // As reclaim does: nothing of theirs may keep running or stay scheduled.
            await ops.tenant.endAll({ host: a.host, username: acc.username, allocationId: acc.createdFromAllocationId!, identity: recordedIdentity(acc) });
            await ops.accounts.remove(acc.username);
            removed.push(acc.username);
          }
          acc.status = 'deleted';
          acc.secretCiphertext = null;
          acc.secretKeyId = null;
        }
        await em.flush();
        return { removed };
      });
    },

    /**
     * Creates the customer's OS account (marker `allocation/<id>` where the OS keeps one) with a
     * new password and the groups its OS needs for a login (Remote Desktop Users on Windows), or, on
     * a re-run, finds the one this allocation made and re-applies the same stored password.
     */
    async createCustomerAccount(allocationId: string): Promise<{ hostAccountId: string; createdNow: boolean }> {
      return classified(async () => {
        const em = deps.em.fork();
        const a = await load(em, allocationId);
        const ops = opsOf(a).accounts;
        let account = await em.findOne(HostAccountSchema, { host: a.host.id, username: a.osUsername });
        if (account && account.status !== 'deleted' && account.createdFromAllocationId !== a.id) {
          throw ApplicationFailure.nonRetryable(`account ${a.osUsername} on ${a.host.slug} is already managed by the platform for something else`, 'AccountExistsNotManaged');
        }
        const exists = await assertOurs(a);
        if (!account || account.status === 'deleted') {
          if (account) {
            em.remove(account);
            await em.flush();
          }
          account = em.create(HostAccountSchema, {
            host: a.host,
            username: a.osUsername,
            fullName: a.customerUser.fullName ?? a.customerUser.username,
            email: a.customerUser.email ?? null,
            description: `allocation ${a.id}`,
            origin: 'platform-created',
            status: 'provisioning',
            groups: [],
            ownerUserId: a.customerUser.id,
            createdFromAllocationId: a.id,
            secretVersion: 1,
          });
          const enc = deps.vault.encrypt(generatePassword(), hostAccountSecretContext(account.id, 1));
          account.secretCiphertext = enc.ciphertext;
          account.secretKeyId = enc.keyId;
          await em.flush();
        }
        let password = passwordOf(account);
        if (!password) {
          account.secretVersion += 1;
          const enc = deps.vault.encrypt(generatePassword(), hostAccountSecretContext(account.id, account.secretVersion));
          account.secretCiphertext = enc.ciphertext;
          account.secretKeyId = enc.keyId;
          account.secretRevealedAt = null;
          await em.flush();
          password = passwordOf(account)!;
        }
        if (!exists) {
          await ops.create({ username: a.osUsername, fullName: account.fullName ?? a.osUsername, description: '', password, ref: allocationRef(a.id) });
        } else {
          await ops.setPassword(a.osUsername, password);
        }
        if (ops.loginGroups.length) {
          await ops.addGroups(a.osUsername, [...ops.loginGroups]);
          account.groups = [...ops.loginGroups];
        }
        // The uid / SID, so reclaim can still find what it left once the name is gone.
        recordIdentity(account, await ops.identity(a.osUsername));
        account.status = 'active';
        a.hostAccountId = account.id;
        await em.flush();
        return { hostAccountId: account.id, createdNow: !exists };
      });
    },

    /** Adds the customer user's active keys to the account's authorized_keys (no duplicates, other lines untouched); nothing where the OS has no keys. */
    async injectCustomerKeys(allocationId: string): Promise<{ added: number; present: number; fingerprints: string[]; skipped?: string }> {
      return classified(async () => {
        const em = deps.em.fork();
        const a = await load(em, allocationId);
        const keyOps = opsOf(a).keys;
        if (!keyOps) return { added: 0, present: 0, fingerprints: [], skipped: NO_KEYS };
        const keys = await em.find(SshKeySchema, { user: a.customerUser.id, revokedAt: null }, { orderBy: { createdAt: 'asc' } });
        // The web terminal's platform-managed key goes in with the customer's (it leaves with the account at reclaim).
        const terminalKey = await ensureTerminalKey(deps.em, deps.vault, a.id);
        if (!keys.length && !terminalKey) return { added: 0, present: 0, fingerprints: [] };
        const r = await keyOps.add(a.osUsername, [...keys.map((k) => k.publicKey), ...(terminalKey ? [terminalKey] : [])]);
        // A key revoked while this ran (after the read above) may just have been added: read again, take it off.
        const revoked = await revokedFingerprints(a.customerUser.id);
        if (revoked.length) await keyOps.remove(a.osUsername, revoked);
        return { ...r, fingerprints: keys.map((k) => k.fingerprint) };
      });
    },

    /**
     * Proves the customer can log in. With SSH keys: a throwaway ed25519 key is added, used to log
     * in (checking `id -un`), and removed; then every customer key must be in authorized_keys as
     * sshd reads it (the throwaway private key lives only in this function's memory). Without
     * (Windows): a login with the stored password, and the groups a login needs are held.
     */
    async verifyCustomerLogin(allocationId: string): Promise<{ verified: true; keys: number; groups?: string[] }> {
      return classified(async () => {
        const em = deps.em.fork();
        const a = await load(em, allocationId);
        const ops = opsOf(a);
        if (!ops.keys) {
          const account = await accountOf(em, a);
          const password = account ? passwordOf(account) : null;
          if (!password) throw ApplicationFailure.nonRetryable('no stored password to verify the login with', 'LoginVerificationFailed');
          const { groups } = await ops.accounts.verifyLogin(a.host, a.osUsername, password);
          const missing = ops.accounts.loginGroups.filter((g) => !groups.some((x) => x.toLowerCase() === g.toLowerCase()));
          if (missing.length) throw ApplicationFailure.nonRetryable(`logged in as ${a.osUsername} but groups ${missing.join(', ')} are missing`, 'LoginVerificationFailed');
          return { verified: true, keys: 0, groups };
        }
        const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: `hostflow-verify-${a.id}` });
        const pub = pair.public.trim();
        await ops.keys.add(a.osUsername, [pub]);
        try {
          await ops.keys.verifyKeyLogin(a.host, a.osUsername, pair.private);
        } finally {
          await ops.keys.remove(a.osUsername, [pub]).catch(() => undefined);
        }
        const listed = await ops.keys.list(a.osUsername);
        const keys = await em.find(SshKeySchema, { user: a.customerUser.id, revokedAt: null });
        const missing = keys.filter((k) => !listed.includes(k.fingerprint));
        if (missing.length) throw ApplicationFailure.nonRetryable(`keys ${missing.map((k) => k.fingerprint).join(', ')} are not in authorized_keys`, 'LoginVerificationFailed');
        return { verified: true, keys: keys.length };
      });
    },

    /**
     * Reclaim step 1: what the customer still has on the host (Linux: processes, GPU apps,
     * containers, sessions, user units, at jobs, crontab, files; Windows: sessions, processes,
     * scheduled tasks, profile).
     */
    async checkRunningTasks(allocationId: string): Promise<TaskReport> {
      return classified(async () => {
        const a = await load(deps.em.fork(), allocationId);
        if (await neverCreated(a)) return { ...EMPTY_REPORT };
        return tasksOf(a, 'outside-home-tmp');
      });
    },

    /**
     * Asks the tenant's work to end (SIGTERM / logoff), waits up to `termWaitMs`, then ends
     * everything of the uid / SID (HostOps.tenant.stop). Works by the recorded identity when the
     * account is gone. Returns what is left (should be nothing).
     */
    async stopCustomerTasks(allocationId: string, termWaitMs = 10_000): Promise<{ signalled: string[]; ended?: Record<string, unknown>; remaining: TaskReport }> {
      return classified(async () => {
        const em = deps.em.fork();
        const a = await load(em, allocationId);
        if (await neverCreated(a)) return { signalled: [], remaining: { ...EMPTY_REPORT } };
        const t = await tenantOf(a, em);
        // Seen first (records the identity if it was not yet), then stopped.
        await tasksOf(a);
        return opsOf(a).tenant.stop({ ...t, identity: recordedIdentity(await accountOf(deps.em.fork(), a)) }, termWaitMs);
      });
    },

    /** Removes the customer's keys (all keys of theirs the platform knows, revoked ones too) from the account. */
    async revokeCustomerKeys(allocationId: string): Promise<{ removed: number; skipped?: string }> {
      return classified(async () => {
        const em = deps.em.fork();
        const a = await load(em, allocationId);
        const keyOps = opsOf(a).keys;
        if (!keyOps) return { removed: 0, skipped: NO_KEYS };
        if (await neverCreated(a)) return { removed: 0, skipped: NEVER_CREATED };
        if (!(await assertOurs(a))) return { removed: 0, skipped: 'account is gone' };
        const keys = await em.find(SshKeySchema, { user: a.customerUser.id });
        if (!keys.length) return { removed: 0 };
        return { removed: await keyOps.remove(a.osUsername, [...new Set(keys.map((k) => k.fingerprint))]) };
      });
    },

    /**
     * Takes one revoked key off the allocation's account now (`ssh-key-revoke` workflow). No account
     * yet, or already gone: nothing to do (allocation never adds a revoked key).
     */
    async removeRevokedKey(allocationId: string, keyId: string): Promise<{ removed: number; skipped?: string }> {
      return classified(async () => {
        const em = deps.em.fork();
        const a = await load(em, allocationId);
        const key = await em.findOne(SshKeySchema, { id: keyId });
        if (!key) throw ApplicationFailure.nonRetryable(`ssh key ${keyId} does not exist`, 'NotFound');
        if (!key.revokedAt) throw ApplicationFailure.nonRetryable(`ssh key ${key.fingerprint} is not revoked`, 'InvalidInput');
        const keyOps = opsOf(a).keys;
        if (!keyOps) return { removed: 0, skipped: NO_KEYS };
        if (!(await revokedFingerprints(key.user.id)).includes(key.fingerprint)) return { removed: 0, skipped: 'the same key was added again since' };
        if ((await neverCreated(a)) || !(await assertOurs(a))) return { removed: 0, skipped: 'no account on the host' };
        return { removed: await keyOps.remove(a.osUsername, [key.fingerprint]) };
      });
    },

    /**
     * Puts a key its owner added after allocation on the allocation's account now (`ssh-key-add`
     * workflow). Only while the allocation is active or in its buffer, the key still active and the
     * account ours; otherwise nothing to do (reclaim may already have revoked keys).
     */
    async addKeyToAllocation(allocationId: string, keyId: string): Promise<{ added: number; skipped?: string }> {
      return classified(async () => {
        const em = deps.em.fork();
        const a = await load(em, allocationId);
        if (!['active', 'buffer'].includes(a.status)) return { added: 0, skipped: `allocation is ${a.status}` };
        const key = await em.findOne(SshKeySchema, { id: keyId });
        if (!key) throw ApplicationFailure.nonRetryable(`ssh key ${keyId} does not exist`, 'NotFound');
        if (key.user.id !== a.customerUser.id) throw ApplicationFailure.nonRetryable(`ssh key ${key.fingerprint} is not the allocation's customer user's`, 'InvalidInput');
        if (key.revokedAt) return { added: 0, skipped: 'the key was revoked meanwhile' };
        const keyOps = opsOf(a).keys;
        if (!keyOps) return { added: 0, skipped: NO_KEYS };
        if ((await neverCreated(a)) || !(await assertOurs(a))) return { added: 0, skipped: 'no account on the host' };
        const r = await keyOps.add(a.osUsername, [key.publicKey]);
        // Revoked while this ran: take it off again (the revoke workflow may have run before the add).
        const again = await deps.em.fork().findOne(SshKeySchema, { id: keyId });
        if (again?.revokedAt) {
          await keyOps.remove(a.osUsername, [key.fingerprint]);
          return { added: 0, skipped: 'the key was revoked meanwhile' };
        }
        return { added: r.added };
      });
    },

    /** Nothing new can log in while cleanup runs: password locked / account disabled, and the password expired. */
    async lockCustomerAccount(allocationId: string): Promise<{ locked: boolean }> {
      return classified(async () => {
        const a = await load(deps.em.fork(), allocationId);
        if ((await neverCreated(a)) || !(await assertOurs(a))) return { locked: false };
        await opsOf(a).accounts.lock(a.osUsername);
        return { locked: true };
      });
    },

    /** What the tenant left outside its account (Linux: crontab, tmp files, files of the uid; Windows: a profile whose account is gone). */
    async cleanCustomerLeftovers(allocationId: string): Promise<Record<string, unknown>> {
      return classified(async () => {
        const em = deps.em.fork();
        const a = await load(em, allocationId);
        if ((await neverCreated(a)) || !(await assertOurs(a))) return { crontabRemoved: false, tmpFilesRemoved: 0 };
        return opsOf(a).tenant.cleanLeftovers(await tenantOf(a, em));
      });
    },

    /** Ends its sessions, deletes the account with its home / profile, wipes the stored password. */
    async deleteCustomerAccount(allocationId: string): Promise<{ deleted: boolean }> {
      return classified(async () => {
        const em = deps.em.fork();
        const a = await load(em, allocationId);
        let deleted = false;
        if (!(await neverCreated(a)) && (await assertOurs(a))) {
          await opsOf(a).accounts.remove(a.osUsername);
          deleted = true;
        }
        const account = await accountOf(em, a);
        if (account) {
          account.status = 'deleted';
          account.secretCiphertext = null;
          account.secretKeyId = null;
          await em.flush();
        }
        return { deleted };
      });
    },

    /**
     * Nothing of the customer is left (HostOps.tenant.leftovers: Linux — account, marker, home,
     * processes, GPU apps, containers, sessions, user units, at jobs, crontab, files of the uid;
     * Windows — account, sessions, processes, scheduled tasks, profile). Looked at up to `attempts`
     * times (things that were just killed take a moment to go); then fails, non-retryable, naming
     * each category left with its count (no names or paths: the message reaches history and the customer).
     */
    async verifyReclaimClean(allocationId: string, attempts = 3): Promise<{ clean: true; notChecked: string[]; filesScan: string }> {
      return classified(async () => {
        const a = await load(deps.em.fork(), allocationId);
        // The same name may belong to a user that predates this allocation: not ours to check.
        if (await neverCreated(a)) return { clean: true, notChecked: [], filesScan: 'not-ours' };
        const ops = opsOf(a);
        const t = await tenantOf(a);
        let r: Awaited<ReturnType<HostOps['tenant']['leftovers']>> = { left: {}, notChecked: [], filesScan: 'not-scanned' };
        for (let i = 0; i < attempts; i++) {
          if (i) await sleep(2000);
          heartbeat({ verifying: i + 1 });
          r = await ops.tenant.leftovers(t);
          if (!Object.keys(r.left).length) break;
        }
        if (Object.keys(r.left).length) {
          const what = Object.entries(r.left).map(([k, n]) => `${k} ${n}`).join(', ');
          throw ApplicationFailure.nonRetryable(`${a.host.slug} is not clean of ${a.osUsername}: ${what}`, 'NotClean');
        }
        return { clean: true, notChecked: r.notChecked, filesScan: r.filesScan };
      });
    },
  };
}
