import { ensureTerminalKey } from '../../db/terminal-keys.js';
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import ssh2 from 'ssh2';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { AllocationSchema, HostAccountSchema, SshKeySchema, type Allocation, type HostAccount } from '../../db/entities/index.js';
import type { Vault } from '../../db/vault.js';
import type { Logger } from '../../config/logger.js';
import type { SshExecutor } from '../ssh/ssh-executor.js';
import type { RemoteExecutor } from './executor.js';
import { classified } from './failures.js';
import { generatePassword } from './passwords.js';
import { hostAccountSecretContext } from './host-targets.js';
import { check, linuxAccountOps } from './account-ops.js';
import * as linux from './linux.js';

export interface AllocationRemoteDeps {
  em: SqlEntityManager;
  vault: Vault;
  logger: Logger;
  ssh: RemoteExecutor & Pick<SshExecutor, 'verifyLogin'>;
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

export interface TaskReport {
  userExists: boolean;
  /** The uid looked for (recorded on the account row, so a re-run can look after the name is gone). */
  uid?: number | null;
  /** The account is gone and the recorded uid belongs to another account now: nothing of that uid is counted. */
  uidReassigned?: { uid: number; owner: string };
  /** Processes other than SSH connection handlers (those are in `sshConnections`). */
  processes: number;
  sshConnections: number;
  gpuProcesses: number;
  /** Running containers the platform attributes to the tenant (label or uid); all of them in `containerList`. */
  containers: number;
  sessions: number;
  /** What else the tenant has on the host (counts by category, see linux.footprintLeftovers). */
  scheduled?: { atJobs: number; crontab: number; linger: boolean; userUnits: number };
  /** Files owned by the uid outside home and tmp (bounded scan). */
  files?: { count: number; status: string };
  /** Every running container with its owner where the runtime tells (`ownerUid` null = unknown). */
  containerList?: { id: string; image: string; ownerUid: number | null; attributed: boolean }[];
  /** What this host could not be asked (no systemd, no nvidia-smi, ...): reported, not skipped. */
  notChecked?: string[];
  /** Up to 20 process descriptions (`pid comm`), for the notice and the progress API. */
  sample: string[];
}

/**
 * Remote side of allocation and reclaim (Linux hosts over SSH). Every activity is idempotent:
 * it looks at the host first and only changes what is not yet as wanted, so a retry or a re-run
 * after a crash finishes the job instead of failing on its own earlier half.
 */
export function createAllocationRemoteActivities(deps: AllocationRemoteDeps) {
  const load = async (em: SqlEntityManager, allocationId: string) => {
    const a = await em.findOne(AllocationSchema, { id: allocationId }, { populate: ['host', 'customerUser'] });
    if (!a) throw ApplicationFailure.nonRetryable(`allocation ${allocationId} does not exist`, 'NotFound');
    if (a.host.os !== 'linux') throw ApplicationFailure.nonRetryable(`host ${a.host.slug} is ${a.host.os}: allocation supports Linux hosts`, 'InvalidInput');
    return a;
  };
  const run = (hostId: string, cmd: string, stdin?: string, timeoutMs = 60_000) => deps.ssh.exec(hostId, cmd, { timeoutMs, stdin });
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

  /** Refuses to touch an OS account the platform did not create for this allocation. */
  const assertOurs = async (a: Allocation): Promise<boolean> => {
    const ops = linuxAccountOps(deps.ssh, a.host.id);
    if (!(await ops.exists(a.osUsername))) return false;
    const marker = await ops.readMarker(a.osUsername);
    if (marker !== allocationRef(a.id)) {
      throw ApplicationFailure.nonRetryable(
        `user ${a.osUsername} on ${a.host.slug} was not created by this allocation (marker: ${marker ?? 'none'}); not touching it`,
        'AccountExistsNotManaged',
      );
    }
    return true;
  };

  /** The account row of this allocation (the uid it recorded lives there). */
  const accountOf = (em: SqlEntityManager, a: Allocation) => em.findOne(HostAccountSchema, { host: a.host.id, username: a.osUsername, createdFromAllocationId: a.id });

  /** What of the tenant is on the host; records the uid on the account row the first time it is seen. */
  const footprintOf = async (a: Allocation, files: 'outside-home-tmp' | 'everywhere' | 'none'): Promise<linux.TenantFootprint> => {
    const em = deps.em.fork();
    const account = await accountOf(em, a);
    const cmd = linux.tenantFootprint({ username: a.osUsername, uid: account?.uid ?? undefined, allocationId: a.id, files });
    const f = linux.parseTenantFootprint(check(await run(a.host.id, cmd, undefined, 90_000), `footprint of ${a.osUsername}`).stdout);
    if (account && f.userExists && f.uid !== null && account.uid !== f.uid) {
      account.uid = f.uid;
      await em.flush();
    }
    return f;
  };

  const reportOf = (f: linux.TenantFootprint): TaskReport => ({
    userExists: f.userExists,
    uid: f.uid,
    ...(f.uidReassigned ? { uidReassigned: f.uidReassigned } : {}),
    processes: f.processes.length,
    sshConnections: f.sshConnections,
    gpuProcesses: f.gpuProcesses.length,
    containers: f.containers.filter((c) => c.attributed).length,
    sessions: f.sessions.length,
    scheduled: { atJobs: f.atJobs.length, crontab: f.crontabs.length, linger: f.linger, userUnits: f.userUnits.length + f.enabledUserUnits.length + (f.userManager ? 1 : 0) },
    files: { count: f.files.count, status: f.files.status },
    containerList: f.containers.slice(0, 20).map((c) => ({ id: c.id, image: c.image, ownerUid: c.ownerUid, attributed: c.attributed })),
    notChecked: f.unavailable,
    sample: [
      ...f.gpuProcesses.map((g) => `gpu ${g.pid} ${g.name}`),
      ...f.processes.map((p) => `${p.pid} ${p.comm}`),
      ...f.containers.filter((c) => c.attributed).map((c) => `container ${c.id} ${c.image}`),
    ].slice(0, 20),
  });

  const tasksOf = async (a: Allocation, files: 'outside-home-tmp' | 'none' = 'none'): Promise<TaskReport> => reportOf(await footprintOf(a, files));

  return {
    /**
     * Removes accounts that earlier allocations of this host left behind (their reclaim was
     * skipped or failed): only accounts whose on-host marker names that allocation.
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
        const ops = linuxAccountOps(deps.ssh, a.host.id);
        const removed: string[] = [];
        for (const acc of leftovers) {
          heartbeat({ cleaning: acc.username });
          if (await ops.exists(acc.username)) {
            const marker = await ops.readMarker(acc.username);
            if (marker !== allocationRef(acc.createdFromAllocationId!)) {
              throw ApplicationFailure.nonRetryable(`leftover account ${acc.username} has marker ${marker ?? 'none'}; refusing to delete it`, 'AccountExistsNotManaged');
            }
            // As reclaim does: nothing of theirs may keep running or stay scheduled.
            check(await run(a.host.id, linux.endTenantActivity({ username: acc.username, uid: acc.uid ?? undefined, allocationId: acc.createdFromAllocationId! }), undefined, 120_000), `end everything of ${acc.username}`);
            check(await run(a.host.id, linux.cleanupUserLeftovers(acc.username)), `clean leftovers of ${acc.username}`);
            await ops.remove(acc.username);
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
     * Creates the customer's OS account (marker `allocation/<id>`) with a new password, or, on a
     * re-run, finds the one this allocation made and re-applies the same stored password.
     */
    async createCustomerAccount(allocationId: string): Promise<{ hostAccountId: string; createdNow: boolean }> {
      return classified(async () => {
        const em = deps.em.fork();
        const a = await load(em, allocationId);
        const ops = linuxAccountOps(deps.ssh, a.host.id);
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
        // The uid, so reclaim can still find what it left once the name is gone.
        const uid = Number(check(await run(a.host.id, linux.userUid(a.osUsername)), `uid of ${a.osUsername}`).stdout.trim());
        if (Number.isInteger(uid) && uid > 0) account.uid = uid;
        account.status = 'active';
        a.hostAccountId = account.id;
        await em.flush();
        return { hostAccountId: account.id, createdNow: !exists };
      });
    },

    /** Adds the customer user's active keys to the account's authorized_keys (no duplicates, other lines untouched). */
    async injectCustomerKeys(allocationId: string): Promise<{ added: number; present: number; fingerprints: string[] }> {
      return classified(async () => {
        const em = deps.em.fork();
        const a = await load(em, allocationId);
        const keys = await em.find(SshKeySchema, { user: a.customerUser.id, revokedAt: null }, { orderBy: { createdAt: 'asc' } });
        // The web terminal's platform-managed key goes in with the customer's (it leaves with the account at reclaim).
        const terminalKey = a.host.os === 'linux' ? await ensureTerminalKey(deps.em, deps.vault, a.id) : null;
        if (!keys.length && !terminalKey) return { added: 0, present: 0, fingerprints: [] };
        const cmd = linux.addAuthorizedKeys(a.osUsername, [...keys.map((k) => k.publicKey), ...(terminalKey ? [terminalKey] : [])]);
        const r = check(await run(a.host.id, cmd.script, cmd.stdin), `add keys for ${a.osUsername}`);
        const markers = linux.parseMarkers(r.stdout);
        // A key revoked while this ran (after the read above) may just have been added: read again, take it off.
        const revoked = await revokedFingerprints(a.customerUser.id);
        if (revoked.length) {
          const rm = linux.removeAuthorizedKeys(a.osUsername, revoked);
          check(await run(a.host.id, rm.script, rm.stdin), `remove revoked keys of ${a.osUsername}`);
        }
        return {
          added: markers.filter((m) => m.marker === 'KEY_ADDED').length,
          present: markers.filter((m) => m.marker === 'KEY_PRESENT').length,
          fingerprints: keys.map((k) => k.fingerprint),
        };
      });
    },

    /**
     * Proves key login works for the account: a throwaway ed25519 key is added, used to log in over
     * SSH (checking `id -un`), and removed; then every customer key must be in authorized_keys as
     * sshd reads it. The throwaway private key lives only in this function's memory, so a copy of
     * its public half left behind by a crash grants nothing.
     */
    async verifyCustomerLogin(allocationId: string): Promise<{ verified: true; keys: number }> {
      return classified(async () => {
        const em = deps.em.fork();
        const a = await load(em, allocationId);
        const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: `hostflow-verify-${a.id}` });
        const pub = pair.public.trim();
        const add = linux.addAuthorizedKeys(a.osUsername, [pub]);
        check(await run(a.host.id, add.script, add.stdin), `add verification key for ${a.osUsername}`);
        try {
          let out;
          try {
            out = await deps.ssh.verifyLogin({ hostId: a.host.id, address: a.host.address, port: a.host.port, username: a.osUsername, privateKey: pair.private, pinnedFingerprint: a.host.hostKeyFingerprint ?? null }, 'id -un');
          } catch (err) {
            throw ApplicationFailure.nonRetryable(`key login as ${a.osUsername} failed: ${(err as Error).message}`, 'LoginVerificationFailed');
          }
          if (out.exitCode !== 0 || out.stdout.trim() !== a.osUsername) {
            throw ApplicationFailure.nonRetryable(`logged in but the session is not ${a.osUsername}`, 'LoginVerificationFailed');
          }
        } finally {
          const rm = linux.removeAuthorizedKeys(a.osUsername, [pub]);
          await run(a.host.id, rm.script, rm.stdin).catch(() => undefined);
        }
        const listed = linux.parseMarkers(check(await run(a.host.id, linux.listAuthorizedKeys(a.osUsername)), `list keys of ${a.osUsername}`).stdout)
          .filter((m) => m.marker === 'KEY')
          .map((m) => m.value);
        const keys = await em.find(SshKeySchema, { user: a.customerUser.id, revokedAt: null });
        const missing = keys.filter((k) => !listed.includes(k.fingerprint));
        if (missing.length) throw ApplicationFailure.nonRetryable(`keys ${missing.map((k) => k.fingerprint).join(', ')} are not in authorized_keys`, 'LoginVerificationFailed');
        return { verified: true, keys: keys.length };
      });
    },

    /**
     * Reclaim step 1: what the customer still has on the host — processes (also re-parented ones),
     * GPU apps, containers (with their owner), sessions, systemd user units and lingering, `at`
     * jobs, crontab, files owned by the uid outside home and tmp.
     */
    async checkRunningTasks(allocationId: string): Promise<TaskReport> {
      return classified(async () => {
        const a = await load(deps.em.fork(), allocationId);
        if (await neverCreated(a)) return { userExists: false, processes: 0, sshConnections: 0, gpuProcesses: 0, containers: 0, sessions: 0, sample: [] } as TaskReport;
        return tasksOf(a, 'outside-home-tmp');
      });
    },

    /**
     * SIGTERM, wait up to `termWaitMs` for them to exit; then end everything of the uid
     * (linux.endTenantActivity: crontab, at jobs, lingering / systemd user manager, attributed
     * containers, then SIGSTOP+SIGKILL of every process of the uid until none is left). Works by
     * the recorded uid when the account is gone. Returns what is left (should be nothing).
     */
    async stopCustomerTasks(allocationId: string, termWaitMs = 10_000): Promise<{ signalled: string[]; ended?: Record<string, unknown>; remaining: TaskReport }> {
      return classified(async () => {
        const em = deps.em.fork();
        const a = await load(em, allocationId);
        const signalled: string[] = [];
        if (await neverCreated(a)) return { signalled, remaining: { userExists: false, processes: 0, sshConnections: 0, gpuProcesses: 0, containers: 0, sessions: 0, sample: [] } as TaskReport };
        let report = await tasksOf(a);
        const uid = report.uid ?? (await accountOf(em, a))?.uid ?? undefined;
        if (!report.userExists && uid === undefined) return { signalled, remaining: report };
        if (report.userExists && (report.processes || report.sshConnections)) {
          check(await run(a.host.id, linux.killUserProcesses(a.osUsername, 'TERM')), `SIGTERM processes of ${a.osUsername}`);
          signalled.push('TERM');
          const until = Date.now() + termWaitMs;
          while (Date.now() < until) {
            heartbeat({ waiting: 'TERM' });
            await sleep(500);
            report = await tasksOf(a);
            if (!report.processes) break;
          }
        }
        heartbeat({ ending: 'everything of the uid' });
        const r = check(await run(a.host.id, linux.endTenantActivity({ username: a.osUsername, uid, allocationId: a.id }), undefined, 120_000), `end everything of ${a.osUsername}`);
        const m = linux.parseMarkers(r.stdout);
        const ended = {
          crontabRemoved: m.some((x) => x.marker === 'CRONTAB_REMOVED'),
          atJobsRemoved: m.filter((x) => x.marker === 'AT_REMOVED').length,
          lingerRemoved: m.some((x) => x.marker === 'LINGER_REMOVED'),
          userManagerTerminated: m.some((x) => x.marker === 'USER_TERMINATED'),
          containersRemoved: m.filter((x) => x.marker === 'CONTAINER_REMOVED').length,
          killRounds: Number(m.find((x) => x.marker === 'KILL_ROUNDS')?.value ?? 0),
          systemd: !m.some((x) => x.marker === 'NO_SYSTEMD'),
        };
        if (ended.killRounds) signalled.push('KILL');
        report = await tasksOf(a);
        if (report.processes || report.sshConnections || report.gpuProcesses) {
          throw ApplicationFailure.retryable(`${report.processes + report.sshConnections} process(es) of ${a.osUsername} survived SIGKILL`, 'TasksStillRunning');
        }
        return { signalled, ended, remaining: report };
      });
    },

    /** Removes the customer's keys (all keys of theirs the platform knows, revoked ones too) from the account. */
    async revokeCustomerKeys(allocationId: string): Promise<{ removed: number; skipped?: string }> {
      return classified(async () => {
        const em = deps.em.fork();
        const a = await load(em, allocationId);
        if (await neverCreated(a)) return { removed: 0, skipped: NEVER_CREATED };
        if (!(await assertOurs(a))) return { removed: 0, skipped: 'account is gone' };
        const keys = await em.find(SshKeySchema, { user: a.customerUser.id });
        if (!keys.length) return { removed: 0 };
        const cmd = linux.removeAuthorizedKeys(a.osUsername, [...new Set(keys.map((k) => k.fingerprint))]);
        const r = check(await run(a.host.id, cmd.script, cmd.stdin), `remove keys of ${a.osUsername}`);
        return { removed: linux.parseMarkers(r.stdout).filter((m) => m.marker === 'KEY_REMOVED').length };
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
        if (!(await revokedFingerprints(key.user.id)).includes(key.fingerprint)) return { removed: 0, skipped: 'the same key was added again since' };
        if ((await neverCreated(a)) || !(await assertOurs(a))) return { removed: 0, skipped: 'no account on the host' };
        const cmd = linux.removeAuthorizedKeys(a.osUsername, [key.fingerprint]);
        const r = check(await run(a.host.id, cmd.script, cmd.stdin), `remove key ${key.fingerprint} of ${a.osUsername}`);
        return { removed: linux.parseMarkers(r.stdout).filter((m) => m.marker === 'KEY_REMOVED').length };
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
        if ((await neverCreated(a)) || !(await assertOurs(a))) return { added: 0, skipped: 'no account on the host' };
        const cmd = linux.addAuthorizedKeys(a.osUsername, [key.publicKey]);
        const r = check(await run(a.host.id, cmd.script, cmd.stdin), `add key ${key.fingerprint} for ${a.osUsername}`);
        // Revoked while this ran: take it off again (the revoke workflow may have run before the add).
        const again = await deps.em.fork().findOne(SshKeySchema, { id: keyId });
        if (again?.revokedAt) {
          const rm = linux.removeAuthorizedKeys(a.osUsername, [key.fingerprint]);
          check(await run(a.host.id, rm.script, rm.stdin), `remove revoked key of ${a.osUsername}`);
          return { added: 0, skipped: 'the key was revoked meanwhile' };
        }
        return { added: linux.parseMarkers(r.stdout).filter((m) => m.marker === 'KEY_ADDED').length };
      });
    },

    /** Locks the password, expires the account and the password, so nothing new can log in while cleanup runs. */
    async lockCustomerAccount(allocationId: string): Promise<{ locked: boolean }> {
      return classified(async () => {
        const a = await load(deps.em.fork(), allocationId);
        if ((await neverCreated(a)) || !(await assertOurs(a))) return { locked: false };
        check(await run(a.host.id, linux.lockUser(a.osUsername, { expirePassword: true })), `lock ${a.osUsername}`);
        return { locked: true };
      });
    },

    /**
     * Crontab and files in /tmp, /var/tmp, /dev/shm owned by the customer's uid, then (bounded)
     * every other file of that uid on the root filesystem outside its home (the home goes with the
     * account).
     */
    async cleanCustomerLeftovers(allocationId: string): Promise<{ crontabRemoved: boolean; tmpFilesRemoved: number; otherFilesRemoved?: number; timedOut?: boolean }> {
      return classified(async () => {
        const em = deps.em.fork();
        const a = await load(em, allocationId);
        if ((await neverCreated(a)) || !(await assertOurs(a))) return { crontabRemoved: false, tmpFilesRemoved: 0 };
        heartbeat({ cleaning: 'tmp' });
        const r = check(await run(a.host.id, linux.cleanupUserLeftovers(a.osUsername), undefined, 300_000), `clean leftovers of ${a.osUsername}`);
        const m = linux.parseMarkers(r.stdout);
        const uid = (await footprintOf(a, 'none')).uid;
        let otherFilesRemoved = 0;
        let timedOut = false;
        if (uid !== null) {
          heartbeat({ cleaning: 'files of the uid' });
          const f = linux.parseMarkers(check(await run(a.host.id, linux.removeTenantFiles({ username: a.osUsername, uid }), undefined, 90_000), `remove files of ${a.osUsername}`).stdout);
          otherFilesRemoved = Number(f.find((x) => x.marker === 'FILES_REMOVED')?.value ?? 0);
          timedOut = f.some((x) => x.marker === 'FILES_TIMED_OUT');
        }
        return {
          crontabRemoved: m.some((x) => x.marker === 'CRONTAB_REMOVED'),
          tmpFilesRemoved: Number(m.find((x) => x.marker === 'TMP_REMOVED')?.value ?? 0),
          otherFilesRemoved,
          timedOut,
        };
      });
    },

    /** Kills what is left, deletes the account with its home directory, wipes the stored password. */
    async deleteCustomerAccount(allocationId: string): Promise<{ deleted: boolean }> {
      return classified(async () => {
        const em = deps.em.fork();
        const a = await load(em, allocationId);
        let deleted = false;
        if (!(await neverCreated(a)) && (await assertOurs(a))) {
          await linuxAccountOps(deps.ssh, a.host.id).remove(a.osUsername);
          deleted = true;
        }
        const account = await em.findOne(HostAccountSchema, { host: a.host.id, username: a.osUsername, createdFromAllocationId: a.id });
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
     * Nothing of the customer is left: no account, no marker, no home, and nothing of the uid —
     * processes, GPU apps, attributed containers, sessions, lingering / user units, at jobs,
     * crontab, files anywhere on the root filesystem. Looked at up to `attempts` times (things
     * that were just killed take a moment to go); then fails, non-retryable, naming each category
     * left with its count (no names or paths: the message reaches history and the customer).
     */
    async verifyReclaimClean(allocationId: string, attempts = 3): Promise<{ clean: true; notChecked: string[]; filesScan: string }> {
      return classified(async () => {
        const a = await load(deps.em.fork(), allocationId);
        // The same name may belong to a user that predates this allocation: not ours to check.
        if (await neverCreated(a)) return { clean: true, notChecked: [], filesScan: 'not-ours' };
        let left: Record<string, number> = {};
        let f: linux.TenantFootprint | undefined;
        for (let i = 0; i < attempts; i++) {
          if (i) await sleep(2000);
          heartbeat({ verifying: i + 1 });
          f = await footprintOf(a, 'everywhere');
          left = linux.footprintLeftovers(f);
          if (!Object.keys(left).length) break;
        }
        if (f && f.uid === null && !f.userExists && (await linuxAccountOps(deps.ssh, a.host.id).readMarker(a.osUsername)) !== null) left = { ...left, marker: 1 };
        if (Object.keys(left).length) {
          const what = Object.entries(left).map(([k, n]) => `${k} ${n}`).join(', ');
          throw ApplicationFailure.nonRetryable(`${a.host.slug} is not clean of ${a.osUsername}: ${what}`, 'NotClean');
        }
        // A uid handed to another account since is not looked at by uid: say so rather than imply it was.
        const notChecked = [...(f?.unavailable ?? []), ...(f?.uidReassigned ? ['uid (reassigned to another account)'] : [])];
        return { clean: true, notChecked, filesScan: f?.files.status ?? 'not-scanned' };
      });
    },
  };
}
