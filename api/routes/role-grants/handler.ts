import { Router } from 'express';
import type { AppDeps } from '../../deps.js';
import { type OpenAPIRegistry, z } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import type { RoleCache } from '../../authz/principal.js';
import { GrantParams, RoleGrant, RoleGrantCreate, RoleGrantExtend, RoleGrantRevoke, UserIdParams } from './schema.js';
import { extendRoleGrant, grantRole, listRoleGrants, revokeRoleGrant, toRoleGrantDto, type RoleGrantDeps } from './service.js';

export function roleGrantRoutes(deps: AppDeps & { roleCache: RoleCache }, registry: OpenAPIRegistry): Router {
  const r = Router();
  const tags = ['role-grants'];
  const gd: RoleGrantDeps = { em: deps.em, temporal: deps.temporal, roles: deps.roleCache };

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/users/:id/role-grants',
    summary: 'Grant a role until a moment (role_grant.manage; not to oneself; only permissions one holds); it is taken away at the end, with a reminder a day before',
    tags,
    permission: 'role_grant.manage',
    params: UserIdParams,
    body: RoleGrantCreate,
    response: RoleGrant,
    status: 201,
    handler: async ({ params, body, principal, req }) => toRoleGrantDto(await grantRole(gd, principal!, params.id, body, req)),
  });
  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/users/:id/role-grants',
    summary: "A user's time-bound role grants (holders of role_grant.manage, or the user)",
    tags,
    permission: 'authenticated',
    params: UserIdParams,
    response: z.object({ items: z.array(RoleGrant) }),
    handler: async ({ params, principal }) => ({ items: (await listRoleGrants(gd, principal!, params.id)).map(toRoleGrantDto) }),
  });
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/users/:id/role-grants/:grantId/extend',
    summary: 'Move the end of an active grant later (the reminder moves with it)',
    tags,
    permission: 'role_grant.manage',
    params: GrantParams,
    body: RoleGrantExtend,
    response: RoleGrant,
    handler: ({ params, body, principal, req }) => extendRoleGrant(gd, principal!, params.id, params.grantId, body.until, req),
  });
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/users/:id/role-grants/:grantId/revoke',
    summary: 'End an active grant now, with a reason',
    tags,
    permission: 'role_grant.manage',
    params: GrantParams,
    body: RoleGrantRevoke,
    response: z.object({ id: z.string(), status: z.string() }),
    handler: async ({ params, body, principal, req }) => {
      const g = await revokeRoleGrant(gd, principal!, params.id, params.grantId, body.reason, req);
      return { id: g.id, status: 'revoked' };
    },
  });
  return r;
}
