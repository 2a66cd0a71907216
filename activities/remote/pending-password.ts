import { ApplicationFailure } from '@temporalio/common';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { HostAccountSchema, type HostAccount } from '../../db/entities/index.js';
import type { Vault } from '../../db/vault.js';
import type { Logger } from '../../config/logger.js';
import { generatePassword } from './passwords.js';
import { hostAccountSecretContext } from './host-targets.js';

/**
 * Password changes that never lose a password (the JumpServer #12631 failure mode: a WinRM
 * password change went through, the NTLM check after it failed, and the new password was thrown
 * away — nobody knew the account's password any more).
 *
 *   1. The new password is written to the vault as *pending* (encrypted, bound to the next secret
 *      version) before anything is sent to the host.
 *   2. The change is sent.
 *   3. A login with the new password is tried. Only when it succeeds is the pending password
 *      promoted to the account's current secret.
 *   4. Otherwise (refused, the host unreachable, the worker killed between 2 and 4) both passwords
 *      stay in the vault, and the next attempt — a retry of the activity, the next run, or the
 *      status-reconciler Schedule — reconciles first: the pending password, then the current one,
 *      is tried; the one that logs in is the truth. If neither does and the host can be reached,
 *      the pending password is applied again with the platform's own credential and checked.
 *
 * The vault always holds a password that logs in, or both candidates.
 */
export interface PasswordTarget {
  /** Sends the change to the host (with the platform's own credential). */
  apply(password: string): Promise<void>;
  /**
   * Does a login with this password succeed? `false` only when the host refused it (wrong password);
   * throws when it cannot tell (unreachable, timed out): nothing may be decided on that.
   */
  logsIn(password: string): Promise<boolean>;
}

export interface PasswordDeps {
  em: SqlEntityManager;
  vault: Vault;
  logger?: Logger;
}

export type ReconcileOutcome =
  /** No change was pending. */
  | 'none'
  /** The pending password logs in: it is the account's password now. */
  | 'promoted'
  /** The pending password is refused and the current one logs in: the change never took; pending dropped. */
  | 'kept-current'
  /** Neither logged in: the pending password was applied again, logs in, and is promoted. */
  | 'reapplied'
  /** Neither logs in, even after applying it again (or it could not be applied): both kept. */
  | 'unknown';

const currentOf = (vault: Vault, a: HostAccount) => (a.secretCiphertext ? vault.decrypt(a.secretCiphertext, hostAccountSecretContext(a.id, a.secretVersion)) : null);
const pendingOf = (vault: Vault, a: HostAccount) =>
  a.pendingSecretCiphertext ? vault.decrypt(a.pendingSecretCiphertext, hostAccountSecretContext(a.id, a.secretVersion + 1)) : null;

function promote(a: HostAccount): void {
  a.secretCiphertext = a.pendingSecretCiphertext;
  a.secretKeyId = a.pendingSecretKeyId;
  a.secretVersion += 1;
  a.secretRevealedAt = null;
  a.lastResetOpId = a.pendingOpId;
  dropPending(a);
}

function dropPending(a: HostAccount): void {
  a.pendingSecretCiphertext = null;
  a.pendingSecretKeyId = null;
  a.pendingSince = null;
  a.pendingOpId = null;
  a.pendingAttempts = 0;
}

/**
 * Settles a pending change of one account (see above). Writes the outcome to the vault before it
 * returns; never removes the only password that logs in.
 */
export async function reconcilePendingPassword(deps: PasswordDeps, accountId: string, target: PasswordTarget): Promise<{ outcome: ReconcileOutcome; secretVersion: number }> {
  const em = deps.em.fork();
  const a = await em.findOneOrFail(HostAccountSchema, { id: accountId });
  const pending = pendingOf(deps.vault, a);
  if (pending === null) return { outcome: 'none', secretVersion: a.secretVersion };
  const settle = async (outcome: ReconcileOutcome) => {
    if (outcome === 'promoted' || outcome === 'reapplied') promote(a);
    else if (outcome === 'kept-current') dropPending(a);
    else a.pendingAttempts += 1;
    await em.flush();
    deps.logger?.info({ accountId, username: a.username, outcome, secretVersion: a.secretVersion }, 'pending password reconciled');
    return { outcome, secretVersion: a.secretVersion };
  };
  if (await target.logsIn(pending)) return settle('promoted');
  const current = currentOf(deps.vault, a);
  if (current !== null && (await target.logsIn(current))) return settle('kept-current');
  // Neither works (or the current one was revealed and wiped): the platform's own credential sets the pending one again.
  try {
    await target.apply(pending);
  } catch (err) {
    await settle('unknown');
    throw err;
  }
  if (await target.logsIn(pending)) return settle('reapplied');
  return settle('unknown');
}

/**
 * Changes an account's password under operation `opId` (idempotent per operation: a retry of an
 * operation whose change was promoted returns it; one whose change is pending reconciles it).
 */
export async function changePassword(deps: PasswordDeps, accountId: string, opId: string, target: PasswordTarget): Promise<{ secretVersion: number; outcome: 'changed' | 'done-earlier' }> {
  const before = await deps.em.fork().findOneOrFail(HostAccountSchema, { id: accountId });
  if (before.pendingSecretCiphertext) {
    const r = await reconcilePendingPassword(deps, accountId, target);
    if (r.outcome === 'unknown') {
      throw ApplicationFailure.retryable(`the password of ${before.username} could not be settled: neither the pending nor the current password logs in; both are kept`, 'PasswordStateUnknown');
    }
    if ((r.outcome === 'promoted' || r.outcome === 'reapplied') && before.pendingOpId === opId) return { secretVersion: r.secretVersion, outcome: 'changed' };
  } else if (before.lastResetOpId === opId && before.secretCiphertext) {
    return { secretVersion: before.secretVersion, outcome: 'done-earlier' };
  }

  const em = deps.em.fork();
  const a = await em.findOneOrFail(HostAccountSchema, { id: accountId });
  const password = generatePassword();
  const enc = deps.vault.encrypt(password, hostAccountSecretContext(a.id, a.secretVersion + 1));
  a.pendingSecretCiphertext = enc.ciphertext;
  a.pendingSecretKeyId = enc.keyId;
  a.pendingSince = new Date();
  a.pendingOpId = opId;
  a.pendingAttempts = 0;
  // Recorded before the host is touched: from here on the new password cannot be lost.
  await em.flush();

  await target.apply(password);
  if (await target.logsIn(password)) {
    promote(a);
    await em.flush();
    return { secretVersion: a.secretVersion, outcome: 'changed' };
  }
  const current = currentOf(deps.vault, a);
  if (current !== null && (await target.logsIn(current))) {
    // The host still takes the old password: the change did not happen. Nothing is lost; try again.
    dropPending(a);
    await em.flush();
    throw ApplicationFailure.retryable(`the new password of ${a.username} was not accepted after the change; the current password still logs in and is kept`, 'PasswordNotChanged');
  }
  a.pendingAttempts += 1;
  await em.flush();
  throw ApplicationFailure.retryable(`the login check with the new password of ${a.username} failed right after the change; both passwords are kept and the next attempt reconciles`, 'PasswordVerificationFailed');
}
