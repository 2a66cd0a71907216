import { Router } from 'express';
import type { AppDeps } from '../../deps.js';
import { z, noControlText, type OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { RoleSchema, type RoleRow } from '../../../db/entities/index.js';
import { PERMISSIONS } from '../../authz/permissions.js';
import { resolveRoles, type RoleCache } from '../../authz/principal.js';
import { createRole, deleteRole, updateRole } from './service.js';

const roleName = z.string().regex(/^[a-z][a-z0-9_.-]{1,63}$/, '2-64 lowercase letters, digits, "_", "." or "-", starting with a letter');
const Role = z
  .object({
    name: z.string(),
    description: z.string(),
    parent: z.string().nullable(),
    permissions: z.array(z.string()).openapi({ description: 'Granted by this role itself (`*` = all)' }),
    effective_permissions: z.array(z.string()).openapi({ description: 'With those inherited from the parent chain' }),
    host_group_ids: z.array(z.string()),
    builtin: z.boolean(),
  })
  .openapi('Role');
const RoleCreate = z
  .object({
    name: roleName,
    description: noControlText(500, 'must not contain control characters').optional(),
    parent: roleName.nullable().optional(),
    permissions: z.array(z.string().max(64)).max(100).default([]),
    host_group_ids: z.array(z.string().uuid()).max(100).default([]),
  })
  .openapi('RoleCreate');
const RolePatch = RoleCreate.omit({ name: true }).partial().extend({ permissions: z.array(z.string().max(64)).max(100).optional(), host_group_ids: z.array(z.string().uuid()).max(100).optional() }).openapi('RolePatch');
const NameParams = z.object({ name: roleName });

/** Roles as data (GET/POST/PATCH/DELETE /api/v1/roles) and the permission catalogue. */
export function roleRoutes(deps: AppDeps, registry: OpenAPIRegistry, cache: RoleCache): Router {
  const r = Router();
  const tags = ['roles'];
  const svc = { em: deps.em, roles: cache };
  const toDtos = async (rows: RoleRow[]) => {
    const all = resolveRoles(await deps.em.fork().find(RoleSchema, {}), new Map());
    return rows.map((x) => ({
      name: x.name,
      description: x.description,
      parent: x.parent ?? null,
      permissions: x.permissions,
      effective_permissions: [...(all.get(x.name)?.permissions ?? [])].sort(),
      host_group_ids: x.hostGroupIds,
      builtin: x.builtin,
    }));
  };

  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/permissions', summary: 'The permission catalogue', tags, permission: 'role.read',
    response: z.array(z.object({ name: z.string(), description: z.string() })),
    handler: async () => Object.entries(PERMISSIONS).map(([name, description]) => ({ name, description })),
  });
  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/roles', summary: 'Roles with their own and effective (inherited) permissions', tags, permission: 'role.read',
    response: z.array(Role),
    handler: async () => toDtos(await deps.em.fork().find(RoleSchema, {}, { orderBy: { builtin: 'desc', name: 'asc' } })),
  });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/roles', summary: 'Create a custom role (audited)', tags, permission: 'role.manage', body: RoleCreate, response: Role, status: 201,
    handler: async ({ body, principal, req }) => (await toDtos([await createRole(svc, principal!, body, { ip: req.ip, requestId: req.requestId })]))[0]!,
  });
  defineRoute(r, registry, {
    method: 'patch', path: '/api/v1/roles/:name', summary: "Change a role (built-in roles' permissions: admin only; audited with before/after)", tags, permission: 'role.manage', params: NameParams, body: RolePatch, response: Role,
    handler: async ({ params, body, principal, req }) => (await toDtos([await updateRole(svc, principal!, params.name, body, { ip: req.ip, requestId: req.requestId })]))[0]!,
  });
  defineRoute(r, registry, {
    method: 'delete', path: '/api/v1/roles/:name', summary: 'Delete a custom role nobody holds and no role inherits from (audited)', tags, permission: 'role.manage', params: NameParams, response: z.object({ deleted: z.boolean() }),
    handler: async ({ params, principal, req }) => {
      await deleteRole(svc, principal!, params.name, { ip: req.ip, requestId: req.requestId });
      return { deleted: true };
    },
  });
  return r;
}
