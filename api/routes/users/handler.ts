import { Router } from 'express';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { AppDeps } from '../../deps.js';
import { z, type OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { conflict } from '../../errors.js';
import { PageQuery, pageOffsets, pageResult } from '../../pagination.js';
import { generateToken, hashToken } from '../../middleware/auth.js';
import { UserSchema, type User as UserRow } from '../../../db/entities/index.js';
import { assertCanGrant, assertRolesExist } from '../roles/service.js';
import type { AuthzContext } from '../../route.js';
import { pii } from '../../authz/mask.js';
import { recordAudit } from '../../../db/audit.js';

const User = z.object({ id: z.string(), username: z.string(), email: pii(z.string().nullable(), 'email'), roles: z.array(z.string()), created_at: z.string() }).openapi('User');
const UserCreate = z
  .object({
    username: z.string().regex(/^[A-Za-z0-9_.-]{2,64}$/, '2-64 letters, digits, "_", "." or "-"'),
    email: z.string().email().optional(),
    roles: z.array(z.string().max(64)).min(1).openapi({ description: 'Role names (GET /api/v1/roles)' }),
  })
  .openapi('UserCreate');
const UserCreated = User.extend({ api_token: z.string().openapi({ description: 'Shown once; only its hash is stored' }) });

const toDto = (u: UserRow) => ({ id: u.id, username: u.username, email: u.email ?? null, roles: u.roles, created_at: u.createdAt.toISOString() });

/** Platform users with API tokens: a temporary identity model until the identity issue lands. */
export function userRoutes(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/users',
    summary: 'Create a user; its API token is returned once',
    tags: ['users'],
    permission: 'user.write',
    body: UserCreate,
    response: UserCreated,
    status: 201,
    handler: async ({ body, user, req, principal }) => {
      const em = deps.em.fork();
      await assertRolesExist(em, body.roles);
      await assertCanGrant((req.app.locals.authz as AuthzContext).roles, principal!, body.roles);
      const token = generateToken();
      const row = em.create(UserSchema, { username: body.username, email: body.email ?? null, roles: [...new Set(body.roles)], apiTokenHash: hashToken(token) });
      recordAudit(em, { actor: user!.username, action: 'user.create', targetType: 'user', targetId: row.id, ip: req.ip, requestId: req.requestId, detail: { username: row.username, roles: row.roles } });
      try {
        await em.flush();
      } catch (err) {
        if (err instanceof UniqueConstraintViolationException) throw conflict(`user ${body.username} already exists`);
        throw err;
      }
      return { ...toDto(row), api_token: token };
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
  return r;
}
