import { Router } from 'express';
import type { AppDeps } from '../../deps.js';
import { type OpenAPIRegistry, z } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { GrantParams, RoleGrant, RoleGrantCreate, RoleGrantExtend, RoleGrantRevoke, UserIdParams } from './schema.js';
import { extendRoleGrant, grantRole, listRoleGrants, revokeRoleGrant, toRoleGrantDto, type RoleGrantDeps } from './service.js';

export function roleGrantRoutes(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  const tags = ['role-grants'];
  const gd: RoleGrantDeps = { em: deps.em, temporal: deps.temporal };

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/users/:id/role-grants',
    summary: 'Grant a role until a moment (admin; not to oneself); it is taken away at the end, with a reminder a day before',
    tags,
    auth: ['admin'],
    params: UserIdParams,
    body: RoleGrantCreate,
    response: RoleGrant,
    status: 201,
    handler: async ({ params, body, user, req }) => toRoleGrantDto(await grantRole(gd, user!, params.id, body, req)),
  });
  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/users/:id/role-grants',
    summary: "A user's time-bound role grants (admins, or the user)",
    tags,
    auth: 'any',
    params: UserIdParams,
    response: z.object({ items: z.array(RoleGrant) }),
    handler: async ({ params, user }) => ({ items: (await listRoleGrants(gd, user!, params.id)).map(toRoleGrantDto) }),
  });
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/users/:id/role-grants/:grantId/extend',
    summary: 'Move the end of an active grant later (the reminder moves with it)',
    tags,
    auth: ['admin'],
    params: GrantParams,
    body: RoleGrantExtend,
    response: RoleGrant,
    handler: ({ params, body, user, req }) => extendRoleGrant(gd, user!, params.id, params.grantId, body.until, req),
  });
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/users/:id/role-grants/:grantId/revoke',
    summary: 'End an active grant now, with a reason',
    tags,
    auth: ['admin'],
    params: GrantParams,
    body: RoleGrantRevoke,
    response: z.object({ id: z.string(), status: z.string() }),
    handler: async ({ params, body, user, req }) => {
      const g = await revokeRoleGrant(gd, user!, params.id, params.grantId, body.reason, req);
      return { id: g.id, status: 'revoked' };
    },
  });
  return r;
}
