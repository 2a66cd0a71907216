import { Router } from 'express';
import type { AppDeps, AuthDeps } from '../../deps.js';
import { z, type OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { PageQuery, pageOffsets, pageResult } from '../../pagination.js';
import { UserSchema, type User as UserRow } from '../../../db/entities/index.js';
import { assertCanGrant, assertRolesExist } from '../roles/service.js';
import type { AuthzContext } from '../../route.js';
import { pii } from '../../authz/mask.js';
import { recordAudit } from '../../../db/audit.js';
import { createUser, unlockUser, updateUser } from './service.js';

const User = z
  .object({
    id: z.string(),
    username: z.string(),
    email: pii(z.string().nullable(), 'email'),
    full_name: z.string().nullable(),
    timezone: z.string().nullable(),
    customer_id: z.string().nullable(),
    roles: z.array(z.string()),
    must_change_password: z.boolean(),
    disabled: z.boolean(),
    created_at: z.string(),
  })
  .openapi('User');
const isTimeZone = (tz: string) => {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
};
const UserUpdate = z
  .object({
    email: z.string().email().max(255).nullable().optional(),
    full_name: z.string().min(1).max(100).regex(/^[^\p{Cc}]*$/u, 'no control characters').nullable().optional(),
    timezone: z.string().max(64).refine(isTimeZone, 'must be an IANA time zone, e.g. Asia/Shanghai').nullable().optional(),
    roles: z.array(z.string().max(64)).min(1).optional().openapi({ description: 'Replaces the roles (GET /api/v1/roles); customer people keep customer roles, staff keep staff roles' }),
    disabled: z.boolean().optional().openapi({ description: "true ends the user's sessions at once and stops their API keys; false enables the user again" }),
  })
  .refine((b) => Object.keys(b).length > 0, { path: ['body'], message: 'give at least one field to change' })
  .openapi('UserUpdate');
const UserCreate = z
  .object({
    username: z.string().regex(/^[A-Za-z0-9_.-]{2,64}$/, '2-64 letters, digits, "_", "." or "-"'),
    email: z.string().email().optional(),
    roles: z.array(z.string().max(64)).min(1).openapi({ description: 'Role names (GET /api/v1/roles)' }),
  })
  .openapi('UserCreate');
const UserCreated = User.extend({ initial_password: z.string().openapi({ description: 'Generated; shown once; must be changed at first login' }) });

const toDto = (u: UserRow) => ({
  id: u.id,
  username: u.username,
  email: u.email ?? null,
  full_name: u.fullName ?? null,
  timezone: u.timezone ?? null,
  customer_id: u.customerId ?? null,
  roles: u.roles,
  must_change_password: u.mustChangePassword,
  disabled: Boolean(u.disabledAt),
  created_at: u.createdAt.toISOString(),
});

/** Platform users. People log in with a password (+ MFA); automation uses API keys. */
export function userRoutes(deps: AppDeps & AuthDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/users',
    summary: 'Create a user; a generated initial password is returned once (must be changed at first login)',
    tags: ['users'],
    permission: 'user.write',
    body: UserCreate,
    response: UserCreated,
    status: 201,
    handler: async ({ body, user, req, principal }) => {
      const em = deps.em.fork();
      await assertRolesExist(em, body.roles);
      await assertCanGrant((req.app.locals.authz as AuthzContext).roles, principal!, body.roles);
      const { user: row, initialPassword } = await createUser(deps, em, { username: body.username, email: body.email ?? null, roles: body.roles });
      recordAudit(em, { actor: user!.username, action: 'user.create', targetType: 'user', targetId: row.id, ip: req.ip, requestId: req.requestId, after: { username: row.username, roles: row.roles, email: row.email ?? null } });
      await em.flush();
      return { ...toDto(row), initial_password: initialPassword };
    },
  });
  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/users',
    summary: 'List users',
    tags: ['users'],
    permission: 'user.read',
    query: PageQuery,
    response: z.object({ items: z.array(User), total: z.number(), page: z.number(), page_size: z.number(), pages: z.number() }),
    handler: async ({ query }) => {
      const [rows, total] = await deps.em.fork().findAndCount(UserSchema, {}, { ...pageOffsets(query), orderBy: { createdAt: 'asc', id: 'asc' } });
      return pageResult(rows.map(toDto), total, query);
    },
  });
  defineRoute(r, registry, {
    method: 'patch',
    path: '/api/v1/users/:id',
    summary: "Edit a user (not the username): e-mail, name, time zone, roles, disabled; audited with before/after (step-up)",
    tags: ['users'],
    permission: 'user.write',
    stepUp: true,
    params: z.object({ id: z.string().uuid('must be a user id (uuid)') }),
    body: UserUpdate,
    response: User,
    handler: async ({ params, body, user, req, principal }) => {
      const { user: row } = await updateUser(deps, {
        id: params.id,
        actor: principal!,
        roleCache: (req.app.locals.authz as AuthzContext).roles,
        patch: { email: body.email, fullName: body.full_name, timezone: body.timezone, roles: body.roles, disabled: body.disabled },
        meta: { actor: user!.username, ip: req.ip, requestId: req.requestId },
      });
      return toDto(row);
    },
  });
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/users/:id/unlock',
    summary: "Clear a user's failed-login lock (step-up)",
    tags: ['users'],
    permission: 'user.unlock',
    stepUp: true,
    params: z.object({ id: z.string().uuid('must be a user id (uuid)') }),
    response: z.object({ id: z.string(), username: z.string(), was_locked: z.boolean() }),
    handler: async ({ params, user, req }) => {
      const { user: u, wasLocked } = await unlockUser(deps, { id: params.id }, user!.username);
      const em = deps.em.fork();
      recordAudit(em, { actor: user!.username, action: 'user.unlock', targetType: 'user', targetId: u.id, ip: req.ip, requestId: req.requestId, detail: { wasLocked } });
      await em.flush();
      return { id: u.id, username: u.username, was_locked: wasLocked };
    },
  });
  return r;
}
