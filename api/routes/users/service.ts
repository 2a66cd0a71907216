// Platform users: creation with a one-time initial password, the first admin, unlock, admin
// password reset and disable. Shared by the routes and the `hostflow` CLI.
import type { SqlEntityManager } from '@mikro-orm/sql';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { SessionSchema, UserSchema, type Role, type User } from '../../../db/entities/index.js';
import type { AuthDeps } from '../../deps.js';
import { conflict, notFound } from '../../errors.js';
import { applyPassword, assertPasswordPolicy, generateInitialPassword } from '../auth/password-policy.js';
import { accountSubject, clearLock } from '../auth/locks.js';
import { recordLoginEvent } from '../auth/events.js';

type Deps = Pick<AuthDeps, 'em' | 'identity'> & Partial<Pick<AuthDeps, 'logger'>>;

export interface UserCreateInput {
  username: string;
  email?: string | null;
  roles: Role[];
  customerId?: string | null;
  fullName?: string | null;
  timezone?: string | null;
  /** A chosen password (policy-checked); otherwise one is generated. Either way it must be changed at first login. */
  password?: string;
}

/**
 * Creates a user with an initial password flagged must-change (the first login answers with a
 * restricted token). Returns the password once; only its argon2id hash is stored.
 * The caller's em is used (and flushed) so an audit row can go with it.
 */
export async function createUser(d: Deps, em: SqlEntityManager, input: UserCreateInput): Promise<{ user: User; initialPassword: string }> {
  const initialPassword = input.password ?? generateInitialPassword(d.identity.settings.password.minLength);
  await assertPasswordPolicy(d.identity, em, { password: initialPassword, username: input.username, field: 'password' });
  const user = em.create(UserSchema, {
    username: input.username,
    email: input.email ?? null,
    roles: [...new Set(input.roles)],
    customerId: input.customerId ?? null,
    fullName: input.fullName ?? null,
    timezone: input.timezone ?? null,
  });
  try {
    await applyPassword(d.identity, em, user, initialPassword, { mustChange: true });
    await em.flush();
  } catch (err) {
    if (err instanceof UniqueConstraintViolationException) throw conflict(`username: ${input.username} is taken`);
    throw err;
  }
  return { user, initialPassword };
}

export const FIRST_ADMIN_ROLES: Role[] = ['admin', 'approver', 'operator'];

/**
 * On the very first start (no users at all) creates `admin` with a one-time initial password,
 * flagged must-change, and returns it for the start banner. Returns null when any user exists.
 */
export async function ensureFirstAdmin(d: Deps): Promise<{ username: string; password: string } | null> {
  const em = d.em.fork();
  if ((await em.count(UserSchema, {})) > 0) return null;
  try {
    const { user, initialPassword } = await createUser(d, em, { username: 'admin', roles: FIRST_ADMIN_ROLES });
    return { username: user.username, password: initialPassword };
  } catch (err) {
    // Another process created it first.
    if ((err as { code?: number }).code === 40901) return null;
    throw err;
  }
}

async function findUser(em: SqlEntityManager, ref: { id?: string; username?: string }): Promise<User> {
  const u = ref.id ? await em.findOne(UserSchema, { id: ref.id }) : await em.findOne(UserSchema, { username: ref.username! });
  if (!u) throw notFound('user');
  return u;
}

/** Clears the account's failed-login lock. */
export async function unlockUser(d: Deps, ref: { id?: string; username?: string }, actor: string): Promise<{ user: User; wasLocked: boolean }> {
  const em = d.em.fork();
  const user = await findUser(em, ref);
  const wasLocked = await clearLock(em, 'account', accountSubject(user.username));
  await recordLoginEvent(d, em, { kind: 'unlock', userId: user.id, username: user.username, reason: `by ${actor}`, at: d.identity.clock() });
  return { user, wasLocked };
}

/** A new generated password, must-change; every session of the user ends. Returns it once. */
export async function adminResetPassword(d: Deps, ref: { id?: string; username?: string }): Promise<{ user: User; password: string }> {
  const em = d.em.fork();
  const user = await findUser(em, ref);
  const password = generateInitialPassword(d.identity.settings.password.minLength);
  await applyPassword(d.identity, em, user, password, { mustChange: true });
  await em.flush();
  await em.nativeUpdate(SessionSchema, { userId: user.id, revokedAt: null }, { revokedAt: d.identity.clock(), revokeReason: 'password_reset' });
  await clearLock(em, 'account', accountSubject(user.username));
  return { user, password };
}

/** Disables a user: sessions end now, API keys stop working (the middleware requires an enabled owner). */
export async function disableUser(d: Deps, ref: { id?: string; username?: string }): Promise<User> {
  const em = d.em.fork();
  const user = await findUser(em, ref);
  user.disabledAt ??= d.identity.clock();
  await em.flush();
  await em.nativeUpdate(SessionSchema, { userId: user.id, revokedAt: null }, { revokedAt: d.identity.clock(), revokeReason: 'disabled' });
  return user;
}
