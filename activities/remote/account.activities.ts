import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { AccountOpeningRequestSchema, HostAccountSchema, HostSchema, type Host, type HostAccount } from '../../db/entities/index.js';
import type { Vault } from '../../db/vault.js';
import type { Logger } from '../../config/logger.js';
import { classified } from './failures.js';
import { generatePassword } from './passwords.js';
import { hostAccountSecretContext } from './host-targets.js';
import { accountOpsFor, type AccountOps, type LoginVerifier } from './account-ops.js';
import type { RemoteExecutor } from './executor.js';
import { changePassword, reconcilePendingPassword, type PasswordTarget, type ReconcileOutcome } from './pending-password.js';

export interface AccountActivityDeps {
  em: SqlEntityManager;
  vault: Vault;
  logger: Logger;
  ssh: RemoteExecutor & LoginVerifier;
  winrm: RemoteExecutor & LoginVerifier;
}

export interface ProvisionResult {
  hostAccountId: string;
  /** True when this call (not an earlier attempt) ran the create command. */
  createdNow: boolean;
  /** The account already existed from an earlier attempt of this same request. */
  preExisting: boolean;
}

const heartbeat = (step: string) => {
  try {
    Context.current().heartbeat({ step });
  } catch {
    // not inside an activity (unit use)
  }
};

/** The groups an opened account gets: the requested ones, RDP users on Windows, the admin group when asked. */
export function defaultGroups(host: Pick<Host, 'os'>, groups: string[], isAdmin: boolean): string[] {
  const base = host.os === 'windows' ? ['Remote Desktop Users', ...groups] : [...groups];
  if (isAdmin) base.push(host.os === 'windows' ? 'Administrators' : 'sudo');
  return [...new Set(base)];
}

/**
 * OS accounts on managed hosts. Every activity is check-then-act: the HostAccount row is written
 * (with the encrypted password) *before* the remote change, so a retry after a crash finds it and
 * re-uses the same account and the same password — never a duplicate, never a second password.
 */
export function createAccountActivities(deps: AccountActivityDeps) {
  const opsFor = (host: Host): AccountOps => accountOpsFor(host.os, host.os === 'windows' ? deps.winrm : deps.ssh, host.id);
  /** The account's host as a password-change target: set with the platform's credential, checked by logging in as the account. */
  const passwordTarget = (account: HostAccount & { host: Host }): PasswordTarget => {
    const ops = opsFor(account.host);
    return {
      apply: (password) => ops.setPassword(account.username, password),
      logsIn: (password) => ops.loginWorks(account.host, account.username, password),
    };
  };
  const passwordOf = (a: HostAccount) => {
    if (!a.secretCiphertext) return null;
    return deps.vault.decrypt(a.secretCiphertext, hostAccountSecretContext(a.id, a.secretVersion));
  };

  return {
    /** Read-only: whether an OS account of this name exists on the host (submit-time pre-check). */
    async lookupHostUser(hostId: string, username: string): Promise<{ exists: boolean }> {
      return classified(async () => {
        const host = await deps.em.fork().findOne(HostSchema, { id: hostId });
        if (!host) throw ApplicationFailure.nonRetryable(`host ${hostId} does not exist`, 'HostNotFound');
        return { exists: await opsFor(host).exists(username) };
      });
    },

    async provisionAccount(requestId: string): Promise<ProvisionResult> {
      return classified(async () => {
        const em = deps.em.fork();
        const req = await em.findOneOrFail(AccountOpeningRequestSchema, { id: requestId }, { populate: ['host'] });
        const host = req.host;
        const ops = opsFor(host);
        const ref = `account-opening/${requestId}`;
        let account = await em.findOne(HostAccountSchema, { host: host.id, username: req.username });
        if (account && account.createdFromRequestId !== requestId && account.status !== 'deleted') {
          throw ApplicationFailure.nonRetryable(`account ${req.username} on ${host.slug} is already managed by the platform (another request)`, 'AccountExistsNotManaged');
        }
        heartbeat('check-existing');
        const exists = await ops.exists(req.username);
        if (exists) {
          const marker = await ops.readMarker(req.username);
          const ours = account?.createdFromRequestId === requestId && (ops.keepsMarker ? marker === ref : true);
          if (!ours) {
            throw ApplicationFailure.nonRetryable(`user ${req.username} already exists on ${host.slug} and was not created by the platform`, 'AccountExistsNotManaged');
          }
        }
        const groups = defaultGroups(host, req.groups, req.isAdmin);
        // Record intent and the password first (encrypted), then change the host.
        if (!account || account.status === 'deleted') {
          if (account) em.remove(account);
          account = em.create(HostAccountSchema, {
            host,
            username: req.username,
            fullName: req.fullName,
            email: req.userEmail ?? null,
            description: req.description ?? null,
            origin: 'platform-created',
            status: 'provisioning',
            groups,
            isAdmin: req.isAdmin,
            ownerUserId: req.applicant.id,
            createdFromRequestId: requestId,
            secretVersion: 1,
          });
          const enc = deps.vault.encrypt(generatePassword(), hostAccountSecretContext(account.id, 1));
          account.secretCiphertext = enc.ciphertext;
          account.secretKeyId = enc.keyId;
          await em.flush();
        }
        let password = passwordOf(account);
        if (!password) {
          // Revealed or wiped earlier: a re-run sets a fresh one (the only case with a new password).
          account.secretVersion += 1;
          const enc = deps.vault.encrypt(generatePassword(), hostAccountSecretContext(account.id, account.secretVersion));
          account.secretCiphertext = enc.ciphertext;
          account.secretKeyId = enc.keyId;
          account.secretRevealedAt = null;
          await em.flush();
          password = passwordOf(account)!;
        }
        let createdNow = false;
        if (!exists) {
          heartbeat('create');
          await ops.create({ username: req.username, fullName: req.fullName, description: req.description ?? '', password, ref });
          createdNow = true;
        } else {
          heartbeat('set-password');
          await ops.setPassword(req.username, password);
        }
        heartbeat('groups');
        await ops.addGroups(req.username, groups);
        account.status = 'active';
        account.groups = groups;
        await em.flush();
        deps.logger.info({ requestId, host: host.slug, username: req.username, createdNow }, 'account provisioned');
        return { hostAccountId: account.id, createdNow, preExisting: exists };
      });
    },

    /** Logs in as the new account with its password and checks its groups. */
    async verifyAccountLogin(hostAccountId: string): Promise<{ verified: true; groups: string[] }> {
      return classified(async () => {
        const em = deps.em.fork();
        const account = await em.findOneOrFail(HostAccountSchema, { id: hostAccountId }, { populate: ['host'] });
        const password = passwordOf(account);
        if (!password) throw ApplicationFailure.nonRetryable('no stored password to verify with', 'LoginVerificationFailed');
        const ops = opsFor(account.host);
        const result = await ops.verifyLogin(account.host, account.username, password);
        const missing = account.groups.filter((g) => !result.groups.map((x) => x.toLowerCase()).includes(g.toLowerCase()));
        if (missing.length) {
          throw ApplicationFailure.nonRetryable(`logged in as ${account.username} but groups ${missing.join(', ')} are missing`, 'LoginVerificationFailed');
        }
        return { verified: true, groups: result.groups };
      });
    },

    /** Compensation: removes an account this request created (never one that existed before). */
    async rollbackAccount(requestId: string): Promise<{ removed: boolean }> {
      return classified(async () => {
        const em = deps.em.fork();
        const req = await em.findOne(AccountOpeningRequestSchema, { id: requestId }, { populate: ['host'] });
        if (!req) return { removed: false };
        const account = await em.findOne(HostAccountSchema, { host: req.host.id, username: req.username, createdFromRequestId: requestId });
        if (!account || account.status === 'active') return { removed: false };
        const ops = opsFor(req.host);
        let removed = false;
        try {
          if (await ops.exists(req.username)) {
            const marker = await ops.readMarker(req.username);
            if (ops.keepsMarker ? marker === `account-opening/${requestId}` : true) {
              await ops.remove(req.username);
              removed = true;
            }
          }
        } catch (err) {
          // The host may be the reason we failed: keep the row so a re-process reuses it.
          deps.logger.warn({ requestId, err: (err as Error).message }, 'rollback could not reach the host; keeping the record for re-process');
          return { removed: false };
        }
        em.remove(account);
        await em.flush();
        return { removed };
      });
    },

    async setHostAccountEnabled(accountId: string, enabled: boolean): Promise<{ status: string }> {
      return classified(async () => {
        const em = deps.em.fork();
        const account = await managed(em, accountId);
        await opsFor(account.host).setEnabled(account.username, enabled);
        account.status = enabled ? 'active' : 'disabled';
        await em.flush();
        return { status: account.status };
      });
    },

    /**
     * New password, stored encrypted under a new version; the owner can reveal it once. Recorded as
     * pending before it is sent and promoted only after a login with it succeeds; a retry (or the
     * next run) reconciles a pending change first (pending-password.ts), so no password is lost.
     */
    async resetHostAccountPassword(accountId: string, opId: string): Promise<{ secretVersion: number }> {
      return classified(async () => {
        const account = await managed(deps.em.fork(), accountId);
        if (account.status === 'disabled') {
          throw ApplicationFailure.nonRetryable(`account ${account.username} is disabled: enable it first (a new password must be checked by logging in)`, 'InvalidInput');
        }
        heartbeat('change-password');
        const r = await changePassword(deps, accountId, opId, passwordTarget(account));
        return { secretVersion: r.secretVersion };
      });
    },

    /** Settles a pending password change of one account: the pending password, then the current one, is tried. */
    async reconcileHostAccountPassword(accountId: string): Promise<{ outcome: ReconcileOutcome; secretVersion: number }> {
      return classified(async () => {
        const account = await deps.em.fork().findOneOrFail(HostAccountSchema, { id: accountId }, { populate: ['host'] });
        return reconcilePendingPassword(deps, accountId, passwordTarget(account));
      });
    },

    /**
     * The status-reconciler Schedule's part for passwords: every account whose change has been
     * pending longer than `minAgeMs` (its run is gone or stuck) is reconciled. A host that cannot
     * be reached is reported and left for the next round (both passwords stay in the vault).
     */
    async reconcilePendingPasswords(input: { minAgeMs?: number } = {}): Promise<{ checked: number; settled: Array<{ accountId: string; outcome: ReconcileOutcome | 'unreachable' }> }> {
      const before = new Date(Date.now() - (input.minAgeMs ?? 10 * 60_000));
      const rows = await deps.em.fork().find(HostAccountSchema, { pendingSecretCiphertext: { $ne: null }, pendingSince: { $lt: before }, status: { $ne: 'deleted' } }, { populate: ['host'], limit: 100 });
      const settled: Array<{ accountId: string; outcome: ReconcileOutcome | 'unreachable' }> = [];
      for (const a of rows) {
        heartbeat(`reconcile ${a.id}`);
        try {
          settled.push({ accountId: a.id, outcome: (await reconcilePendingPassword(deps, a.id, passwordTarget(a))).outcome });
        } catch (err) {
          deps.logger.warn({ accountId: a.id, err: (err as Error).message }, 'pending password not reconciled (host not reachable); both passwords kept');
          settled.push({ accountId: a.id, outcome: 'unreachable' });
        }
      }
      return { checked: rows.length, settled };
    },

    async deleteHostAccount(accountId: string): Promise<{ status: 'deleted' }> {
      return classified(async () => {
        const em = deps.em.fork();
        const account = await managed(em, accountId);
        const ops = opsFor(account.host);
        if (await ops.exists(account.username)) await ops.remove(account.username);
        account.status = 'deleted';
        account.secretCiphertext = null;
        account.secretKeyId = null;
        await em.flush();
        return { status: 'deleted' };
      });
    },
  };
}

async function managed(em: SqlEntityManager, accountId: string) {
  const account = await em.findOne(HostAccountSchema, { id: accountId }, { populate: ['host'] });
  if (!account) throw ApplicationFailure.nonRetryable(`account ${accountId} not found`, 'NotFound');
  if (account.origin !== 'platform-created') {
    throw ApplicationFailure.nonRetryable(`account ${account.username} was not created by the platform`, 'AccountExistsNotManaged');
  }
  if (account.status === 'deleted') throw ApplicationFailure.nonRetryable(`account ${account.username} is deleted`, 'InvalidInput');
  return account;
}


