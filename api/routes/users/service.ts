// Platform users: creation with a one-time initial password, the first admin, unlock, admin
// password reset and disable. Shared by the routes and the `hostflow` CLI.
import type { SqlEntityManager } from '@mikro-orm/sql';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { RoleSchema, SessionSchema, UserSchema, type Role, type User } from '../../../db/entities/index.js';
import type { AuthDeps } from '../../deps.js';
import { conflict, forbidden, notFound, validationError } from '../../errors.js';
import type { Principal, RoleCache } from '../../authz/principal.js';
import { assertCanGrant, assertRolesExist } from '../roles/service.js';
import { applyPassword, assertPasswordPolicy, generateInitialPassword } from '../auth/password-policy.js';
import { accountSubject, clearLock } from '../auth/locks.js';
import { recordLoginEvent } from '../auth/events.js';
import { recordAudit } from '../../../db/audit.js';

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

export interface UserUpdateInput {
  email?: string | null;
  fullName?: string | null;
  timezone?: string | null;
  roles?: string[];
  disabled?: boolean;
}

/** Whether a role is one of a customer's people's (customer_member, customer_owner or inheriting from them). */
async function tenantRoleNames(em: SqlEntityManager): Promise<Set<string>> {
  const rows = new Map((await em.fork().find(RoleSchema, {})).map((r) => [r.name, r.parent ?? null]));
  const out = new Set<string>();
  for (const name of rows.keys()) {
    const seen = new Set<string>();
    for (let n: string | null | undefined = name; n && !seen.has(n); n = rows.get(n)) {
      if (n === 'customer_member' || n === 'customer_owner') out.add(name);
      seen.add(n);
    }
  }
  return out;
}

/**
 * Edits a platform user (not the username). Roles: rows of `roles`, a customer's people keep
 * customer roles and staff keep staff roles (40001 naming `roles.N`), nobody grants what they do
 * not hold (403), nobody changes their own roles or disables themselves (403), and the last
 * enabled admin stays an enabled admin (409). Disabling ends the user's sessions at once (API keys
 * stop with the owner). The change and its `user.update` audit row (before/after of the changed
 * fields) commit together; sessions end after that commit.
 */
export async function updateUser(
  d: Deps,
  input: { id: string; actor: Principal; roleCache: RoleCache; patch: UserUpdateInput; meta: { actor: string; ip?: string; requestId?: string } },
): Promise<{ user: User; changed: string[] }> {
  const em = d.em.fork();
  const { patch, actor } = input;
  const user = await em.findOne(UserSchema, { id: input.id });
  if (!user) throw notFound('user');
  const wasEnabledAdmin = user.roles.includes('admin') && !user.disabledAt;
  const before: Record<string, unknown> = {};
  const after: Record<string, unknown> = {};
  const set = <K extends 'email' | 'fullName' | 'timezone'>(api: string, prop: K, v: User[K] | undefined) => {
    if (v === undefined || (user[prop] ?? null) === v) return;
    before[api] = user[prop] ?? null;
    after[api] = v;
    user[prop] = v;
  };
  set('email', 'email', patch.email);
  set('full_name', 'fullName', patch.fullName);
  set('timezone', 'timezone', patch.timezone);

  if (patch.roles !== undefined) {
    const roles = [...new Set(patch.roles)];
    const changed = roles.length !== user.roles.length || roles.some((r) => !user.roles.includes(r));
    if (changed) {
      if (actor.id === user.id) throw forbidden('separation of duties: you cannot change your own roles');
      await assertRolesExist(em, patch.roles);
      const tenant = await tenantRoleNames(em);
      const isCustomerPerson = Boolean(user.customerId);
      const bad = patch.roles.flatMap((r, i) =>
        tenant.has(r) === isCustomerPerson ? [] : [{ field: `roles.${i}`, message: isCustomerPerson ? `role "${r}" is for platform staff; ${user.username} belongs to a customer` : `role "${r}" is for a customer's people; ${user.username} is platform staff` }],
      );
      if (bad.length) throw validationError(bad);
      await assertCanGrant(input.roleCache, actor, roles.filter((r) => !user.roles.includes(r)));
      before.roles = user.roles;
      after.roles = roles;
      user.roles = roles;
    }
  }

  let endSessions = false;
  if (patch.disabled !== undefined && patch.disabled !== Boolean(user.disabledAt)) {
    if (actor.id === user.id) throw forbidden('you cannot disable yourself');
    before.disabled = Boolean(user.disabledAt);
    after.disabled = patch.disabled;
    user.disabledAt = patch.disabled ? d.identity.clock() : null;
    endSessions = patch.disabled;
  }

  if (wasEnabledAdmin && !(user.roles.includes('admin') && !user.disabledAt)) {
    const admins = await em.fork().find(UserSchema, { roles: { $contains: ['admin'] }, disabledAt: null } as never);
    if (!admins.some((a) => a.id !== user.id)) throw conflict(`${user.username} is the last enabled admin: make another user admin first`);
  }
  if (Object.keys(after).length) {
    recordAudit(em, { actor: input.meta.actor, action: 'user.update', targetType: 'user', targetId: user.id, ip: input.meta.ip, requestId: input.meta.requestId, before, after });
    await em.flush();
  }
  if (endSessions) await em.nativeUpdate(SessionSchema, { userId: user.id, revokedAt: null }, { revokedAt: d.identity.clock(), revokeReason: 'disabled' });
  return { user, changed: Object.keys(after) };
}
