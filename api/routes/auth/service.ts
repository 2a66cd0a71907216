// Login, tokens, sessions and passwords: plain functions (deps, input), shared by the routes,
// the CLI and tests.
import type { SqlEntityManager } from '@mikro-orm/sql';
import { RefreshTokenSchema, SessionSchema, UserSchema, type Session, type User } from '../../../db/entities/index.js';
import { recordAudit } from '../../../db/audit.js';
import type { AuthDeps } from '../../deps.js';
import { ApiError, conflict, loginLocked, notFound, sessionEnded, secondFactorRequired, unauthenticated, validationError } from '../../errors.js';
import { newRefreshToken, sha256, signAccessToken } from './tokens.js';
import { accountSubject, clearLock, lockedUntil, recordFailure } from './locks.js';
import { recordLoginEvent } from './events.js';
import { hasSecondFactorInput, mfaMethods, sendEmailCode, verifySecondFactor, type SecondFactorInput } from './mfa.js';
import { applyPassword, assertPasswordPolicy } from './password-policy.js';
import { issuePasswordToken, consumePasswordToken } from './password-tokens.js';
import { sendIdentityMail } from './mail.js';

export interface ClientInfo {
  ip: string | null;
  userAgent: string | null;
}

export interface TokenPair {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
  refresh_expires_at: string;
  session_id: string;
  /** Set when the session may only change the password (first login, admin reset, expired password). */
  restricted: 'password_change' | null;
}

const badCredentials = () => unauthenticated('invalid username or password');
const RESET_TTL_MINUTES = 30;

async function issueTokens(d: AuthDeps, em: SqlEntityManager, s: Session): Promise<TokenPair> {
  const now = d.identity.clock();
  const refresh = newRefreshToken();
  const expiresAt = new Date(now.getTime() + d.identity.settings.refreshTokenDays * 86_400_000);
  em.create(RefreshTokenSchema, { sessionId: s.id, tokenHash: sha256(refresh), expiresAt, createdAt: now });
  await em.flush();
  const access = await signAccessToken(d.identity, { userId: s.userId, sessionId: s.id });
  return {
    access_token: access.token,
    token_type: 'Bearer',
    expires_in: access.expiresIn,
    refresh_token: refresh,
    refresh_expires_at: expiresAt.toISOString(),
    session_id: s.id,
    restricted: s.restricted === 'password_change' ? 'password_change' : null,
  };
}

const idleCutoff = (d: AuthDeps) => new Date(d.identity.clock().getTime() - d.identity.settings.idleTimeoutMinutes * 60_000);

/** Sessions that count as live: not revoked and seen within the idle timeout. */
export function liveSessions(d: AuthDeps, em: SqlEntityManager, where: { userId?: string } = {}) {
  return em.find(SessionSchema, { ...where, revokedAt: null, lastSeenAt: { $gte: idleCutoff(d) } }, { orderBy: { createdAt: 'asc', id: 'asc' } });
}

async function revokeSessions(d: AuthDeps, em: SqlEntityManager, where: { userId: string; exceptId?: string }, reason: string): Promise<number> {
  return em.nativeUpdate(
    SessionSchema,
    { userId: where.userId, revokedAt: null, ...(where.exceptId ? { id: { $ne: where.exceptId } } : {}) },
    { revokedAt: d.identity.clock(), revokeReason: reason },
  );
}

function passwordExpired(d: AuthDeps, u: User): boolean {
  const days = d.identity.settings.password.maxAgeDays;
  if (!days || !u.passwordChangedAt) return false;
  return d.identity.clock().getTime() - u.passwordChangedAt.getTime() > days * 86_400_000;
}

/**
 * Username + password (+ a second factor when enrolled). Locks are checked before any work;
 * a missing user costs the same argon2 verification as a wrong password; every answer for bad
 * credentials is the same whether or not the username exists.
 */
export async function login(d: AuthDeps, input: { username: string; password: string } & SecondFactorInput, client: ClientInfo): Promise<TokenPair> {
  const { identity } = d;
  const em = d.em.fork();
  const now = identity.clock();
  const acct = accountSubject(input.username);
  const ip = client.ip ?? 'unknown';
  const ev = { username: input.username, ip: client.ip, userAgent: client.userAgent, at: now };

  const [ipLocked, acctLocked] = await Promise.all([lockedUntil(identity, em, 'ip', ip), lockedUntil(identity, em, 'account', acct)]);
  if (ipLocked || acctLocked) {
    await recordLoginEvent(d, em, { ...ev, kind: 'login_locked', reason: ipLocked ? 'ip_locked' : 'account_locked' });
    const until = Math.max(ipLocked?.getTime() ?? 0, acctLocked?.getTime() ?? 0);
    throw loginLocked(Math.max(1, Math.ceil((until - now.getTime()) / 1000)));
  }

  const u = await em.findOne(UserSchema, { username: input.username });
  const ok = u?.passwordHash ? await identity.hasher.verify(input.password, u.passwordHash) : await identity.hasher.verifyDummy(input.password);
  const fail = async (reason: string, kind: 'login_failure' | 'mfa_failure' = 'login_failure'): Promise<never> => {
    const [, a] = await Promise.all([recordFailure(identity, em, 'ip', ip), recordFailure(identity, em, 'account', acct)]);
    await recordLoginEvent(d, em, { ...ev, kind, userId: u?.id, reason: a.locked ? `${reason}; account locked` : reason });
    throw kind === 'mfa_failure' ? unauthenticated('invalid second-factor code') : badCredentials();
  };
  if (!u || !ok) return fail(u ? 'bad_password' : 'unknown_user');
  if (u.disabledAt) return fail('disabled');

  if (identity.hasher.needsRehash(u.passwordHash!)) u.passwordHash = await identity.hasher.hash(input.password);

  let mfaAt: Date | null = null;
  const methods = mfaMethods(u);
  if (methods.length) {
    if (!hasSecondFactorInput(input)) {
      if (u.mfaEmailEnabledAt && !u.totpEnabledAt) void sendEmailCode(d, u);
      await em.flush();
      await recordLoginEvent(d, em, { ...ev, kind: 'mfa_required', userId: u.id });
      throw secondFactorRequired(methods);
    }
    const method = await verifySecondFactor(d, em, u, input);
    if (!method) return fail('bad_mfa_code', 'mfa_failure');
    mfaAt = now;
  }

  await clearLock(em, 'account', acct);
  const restricted = u.mustChangePassword || passwordExpired(d, u) ? 'password_change' : null;

  const live = await liveSessions(d, em, { userId: u.id });
  const max = identity.settings.maxSessions;
  if (live.length >= max) {
    if (identity.settings.sessionLimitPolicy === 'refuse') {
      await recordLoginEvent(d, em, { ...ev, kind: 'login_failure', userId: u.id, reason: 'max_sessions' });
      throw conflict(`maximum of ${max} concurrent sessions reached: log out elsewhere first`);
    }
    for (const s of live.slice(0, live.length - max + 1)) {
      s.revokedAt = now;
      s.revokeReason = 'evicted';
      await recordLoginEvent(d, em, { ...ev, kind: 'session_revoked', userId: u.id, sessionId: s.id, reason: 'evicted (max sessions)' });
    }
  }
  const s = em.create(SessionSchema, { userId: u.id, userAgent: client.userAgent?.slice(0, 255) ?? null, ip: client.ip, mfaAt, restricted, createdAt: now, lastSeenAt: now });
  const pair = await issueTokens(d, em, s);
  await recordLoginEvent(d, em, { ...ev, kind: 'login_success', userId: u.id, sessionId: s.id, reason: mfaAt ? 'mfa' : null });
  return pair;
}

/**
 * Rotates a refresh token: the presented one is used up and a new pair is issued. Presenting an
 * already-used token means it was copied: the whole session (the token family) is revoked and
 * a security event recorded.
 */
export async function refresh(d: AuthDeps, token: string, client: ClientInfo): Promise<TokenPair> {
  const em = d.em.fork();
  const now = d.identity.clock();
  const hash = sha256(token);
  const used = await em.getConnection().execute<Array<{ session_id: string; expires_at: Date | string }>>(
    `update refresh_tokens set used_at = ? where token_hash = ? and used_at is null returning session_id, expires_at`,
    [now, hash],
  );
  if (!used[0]) {
    const old = await em.findOne(RefreshTokenSchema, { tokenHash: hash });
    if (old) {
      const s = await em.findOne(SessionSchema, { id: old.sessionId });
      await em.nativeUpdate(SessionSchema, { id: old.sessionId, revokedAt: null }, { revokedAt: now, revokeReason: 'refresh_reuse' });
      await recordLoginEvent(d, em, { kind: 'refresh_reuse', userId: s?.userId, sessionId: old.sessionId, ip: client.ip, userAgent: client.userAgent, reason: 'used refresh token presented again; session revoked', securityEvent: true, at: now });
      recordAudit(em, { actor: s?.userId ?? 'unknown', action: 'security.refresh-token-reuse', targetType: 'session', targetId: old.sessionId, result: 'failure', ip: client.ip, detail: { revoked: true } });
      await em.flush();
      throw sessionEnded('refresh_reuse', 'invalid refresh token');
    }
    throw unauthenticated('invalid refresh token');
  }
  if (new Date(used[0].expires_at) <= now) throw unauthenticated('refresh token expired');
  const s = await em.findOne(SessionSchema, { id: used[0].session_id });
  if (!s || s.revokedAt) throw sessionEnded(s?.revokeReason);
  if (s.lastSeenAt < idleCutoff(d)) {
    s.revokedAt = now;
    s.revokeReason = 'idle';
    await em.flush();
    throw sessionEnded('idle', 'session ended (idle timeout)');
  }
  const u = await em.findOne(UserSchema, { id: s.userId, disabledAt: null });
  if (!u) throw unauthenticated('session ended');
  s.lastSeenAt = now;
  return issueTokens(d, em, s);
}

export async function logout(d: AuthDeps, principal: { id: string; sessionId?: string }, client: ClientInfo): Promise<void> {
  if (!principal.sessionId) throw validationError([{ field: 'authorization', message: 'logout ends a session; revoke an API key with DELETE /api/v1/api-keys/:id' }]);
  const em = d.em.fork();
  await em.nativeUpdate(SessionSchema, { id: principal.sessionId, revokedAt: null }, { revokedAt: d.identity.clock(), revokeReason: 'logout' });
  await recordLoginEvent(d, em, { kind: 'logout', userId: principal.id, sessionId: principal.sessionId, ip: client.ip, userAgent: client.userAgent, at: d.identity.clock() });
}

/** Ends one session: the owner's own (`ownerId` given) or any (an admin kick-out). */
export async function revokeSession(d: AuthDeps, input: { sessionId: string; ownerId?: string; actor: string; reason: 'logout' | 'kicked' }, client: ClientInfo): Promise<void> {
  const em = d.em.fork();
  const s = await em.findOne(SessionSchema, { id: input.sessionId, ...(input.ownerId ? { userId: input.ownerId } : {}) });
  if (!s) throw notFound('session');
  if (!s.revokedAt) {
    s.revokedAt = d.identity.clock();
    s.revokeReason = input.reason;
  }
  recordAudit(em, { actor: input.actor, action: input.reason === 'kicked' ? 'session.kick' : 'session.revoke', targetType: 'session', targetId: s.id, ip: client.ip, detail: { userId: s.userId } });
  await em.flush();
  await recordLoginEvent(d, em, { kind: 'session_revoked', userId: s.userId, sessionId: s.id, ip: client.ip, reason: input.reason === 'kicked' ? `kicked by ${input.actor}` : 'revoked by owner', at: d.identity.clock() });
}

export async function changePassword(d: AuthDeps, principal: { id: string; sessionId?: string }, input: { current_password: string; new_password: string }, client: ClientInfo): Promise<void> {
  const em = d.em.fork();
  const u = await em.findOneOrFail(UserSchema, { id: principal.id });
  const ok = u.passwordHash ? await d.identity.hasher.verify(input.current_password, u.passwordHash) : await d.identity.hasher.verifyDummy(input.current_password);
  if (!ok) {
    await recordFailure(d.identity, em, 'account', accountSubject(u.username));
    throw new ApiError(400, 40001, 'current_password: wrong password', [{ field: 'current_password', message: 'wrong password' }]);
  }
  await assertPasswordPolicy(d.identity, em, { password: input.new_password, username: u.username, userId: u.id, field: 'new_password' });
  await applyPassword(d.identity, em, u, input.new_password, { mustChange: false });
  await em.flush();
  if (principal.sessionId) await em.nativeUpdate(SessionSchema, { id: principal.sessionId }, { restricted: null });
  await revokeSessions(d, em, { userId: u.id, exceptId: principal.sessionId }, 'password_changed');
  await recordLoginEvent(d, em, { kind: 'password_changed', userId: u.id, sessionId: principal.sessionId, ip: client.ip, userAgent: client.userAgent, at: d.identity.clock() });
}

/**
 * Emails a single-use reset link (30 min) to each active account with this address. The answer
 * and its timing do not depend on whether one exists: the mail is sent after answering.
 */
export async function requestPasswordReset(d: AuthDeps, email: string, client: ClientInfo): Promise<void> {
  const em = d.em.fork();
  const users = await em.find(UserSchema, { email: { $ilike: email.replace(/[%_\\]/g, '\\$&') }, disabledAt: null });
  const work = async () => {
    for (const u of users) {
      const { token } = await issuePasswordToken(em, { userId: u.id, purpose: 'reset', ttlMinutes: RESET_TTL_MINUTES, now: d.identity.clock() });
      const link = `${d.identity.publicBaseUrl}/reset-password?token=${encodeURIComponent(token)}`;
      await sendIdentityMail(d.identity, d.logger, {
        to: u.email!,
        kind: 'password-reset',
        subject: 'Reset your Hostflow password',
        text:
          `Someone (hopefully you) asked to reset the password of the Hostflow account "${u.username}".\n\n` +
          `Open ${link}\nor POST {"token": "${token}", "new_password": "…"} to ${d.identity.publicBaseUrl}/api/v1/auth/password/reset/confirm\n\n` +
          `The link works once and expires in ${RESET_TTL_MINUTES} minutes. If you did not ask for it, ignore this message.`,
      });
      await recordLoginEvent(d, em, { kind: 'password_reset_requested', userId: u.id, ip: client.ip, userAgent: client.userAgent, at: d.identity.clock() });
    }
  };
  void work().catch((err: Error) => d.logger.error({ err: err.message }, 'password reset mail failed'));
}

/**
 * Sets a password with a reset or activation token (single use). The policy is checked before
 * the token is spent, so a refused password leaves the link usable.
 */
export async function confirmPasswordReset(d: AuthDeps, input: { token: string; new_password: string }, client: ClientInfo): Promise<void> {
  const em = d.em.fork();
  const now = d.identity.clock();
  const invalid = () => validationError([{ field: 'token', message: 'invalid, used or expired token' }]);
  const rows = await em.getConnection().execute<Array<{ user_id: string; purpose: 'reset' | 'activation' }>>(
    `select user_id, purpose from password_tokens where token_hash = ? and used_at is null and expires_at > ? limit 1`,
    [sha256(input.token), now],
  );
  const row = rows[0];
  if (!row) throw invalid();
  const u = await em.findOne(UserSchema, { id: row.user_id, disabledAt: null });
  if (!u) throw invalid();
  await assertPasswordPolicy(d.identity, em, { password: input.new_password, username: u.username, userId: u.id, field: 'new_password' });
  const userId = (await consumePasswordToken(em, input.token, 'reset', now)) ?? (await consumePasswordToken(em, input.token, 'activation', now));
  if (userId !== u.id) throw invalid();
  await applyPassword(d.identity, em, u, input.new_password, { mustChange: false });
  await em.flush();
  await revokeSessions(d, em, { userId: u.id }, 'password_reset');
  await clearLock(em, 'account', accountSubject(u.username));
  await recordLoginEvent(d, em, { kind: 'password_reset', userId: u.id, ip: client.ip, userAgent: client.userAgent, reason: row.purpose, at: now });
}

export const sessionDto = (s: Session, currentId?: string, username?: string) => ({
  id: s.id,
  user_id: s.userId,
  ...(username !== undefined ? { username } : {}),
  user_agent: s.userAgent ?? null,
  ip: s.ip ?? null,
  created_at: s.createdAt.toISOString(),
  last_seen_at: s.lastSeenAt.toISOString(),
  mfa_at: s.mfaAt?.toISOString() ?? null,
  restricted: s.restricted ?? null,
  current: s.id === currentId,
});
