// Roles as data: create, change and delete roles; every change is audited with before/after and
// invalidates the in-memory role cache. Plain functions (deps, input), shared by routes and tests.
import type { SqlEntityManager } from '@mikro-orm/sql';
import { HostGroupSchema, RoleSchema, UserSchema, type RoleRow } from '../../../db/entities/index.js';
import { recordAudit } from '../../../db/audit.js';
import { conflict, forbidden, notFound, validationError, type FieldError } from '../../errors.js';
import { ALL, isPermission } from '../../authz/permissions.js';
import { resolveRoles, type Principal, type RoleCache } from '../../authz/principal.js';
import { assertWithinOwn } from '../../authz/duties.js';

export interface RoleInput {
  name?: string;
  description?: string;
  parent?: string | null;
  permissions?: string[];
  host_group_ids?: string[];
}
interface Deps {
  em: SqlEntityManager;
  roles: RoleCache;
}
interface Meta {
  ip?: string | null;
  requestId?: string | null;
}

export const snapshot = (r: RoleRow) => ({ name: r.name, description: r.description, parent: r.parent ?? null, permissions: [...r.permissions], host_group_ids: [...r.hostGroupIds], builtin: r.builtin });

/** The permissions a role would have (its own, expanded, plus its parent chain's) after a change. */
async function effectiveAfter(em: SqlEntityManager, name: string, row: Pick<RoleRow, 'parent' | 'permissions' | 'hostGroupIds'>): Promise<Set<string>> {
  const rows = (await em.find(RoleSchema, {})).filter((r) => r.name !== name);
  return resolveRoles([...rows, { name, parent: row.parent ?? null, permissions: row.permissions, hostGroupIds: row.hostGroupIds }], new Map()).get(name)!.permissions;
}

async function validate(em: SqlEntityManager, name: string, input: RoleInput): Promise<void> {
  const errors: FieldError[] = [];
  (input.permissions ?? []).forEach((perm, i) => {
    if (perm !== ALL && !isPermission(perm)) errors.push({ field: `permissions.${i}`, message: `unknown permission "${perm}" (see GET /api/v1/permissions)` });
  });
  if (input.parent) {
    const all = new Map((await em.find(RoleSchema, {})).map((r) => [r.name, r.parent ?? null]));
    if (!all.has(input.parent)) errors.push({ field: 'parent', message: `role "${input.parent}" does not exist` });
    else {
      // No cycles: walking up from the new parent must not reach this role.
      const seen = new Set<string>();
      for (let p: string | null | undefined = input.parent; p && !seen.has(p); p = all.get(p)) {
        if (p === name) {
          errors.push({ field: 'parent', message: `"${input.parent}" inherits from "${name}": that would be a cycle` });
          break;
        }
        seen.add(p);
      }
    }
  }
  const groups = input.host_group_ids ?? [];
  if (groups.length) {
    const found = new Set((await em.find(HostGroupSchema, { id: { $in: groups } })).map((g) => g.id));
    groups.forEach((g, i) => {
      if (!found.has(g)) errors.push({ field: `host_group_ids.${i}`, message: 'host group does not exist' });
    });
  }
  if (errors.length) throw validationError(errors);
}

export async function createRole(deps: Deps, actor: Principal, input: RoleInput & { name: string }, meta: Meta = {}): Promise<RoleRow> {
  const em = deps.em.fork();
  if (await em.findOne(RoleSchema, { name: input.name })) throw conflict(`name: role "${input.name}" already exists`);
  await validate(em, input.name, input);
  const row = em.create(RoleSchema, {
    name: input.name,
    description: input.description ?? '',
    parent: input.parent ?? null,
    permissions: [...new Set(input.permissions ?? [])],
    hostGroupIds: [...new Set(input.host_group_ids ?? [])],
    builtin: false,
  });
  assertWithinOwn(actor, await effectiveAfter(em, row.name, row), `role "${row.name}"`);
  recordAudit(em, { actor: actor.username, action: 'role.create', targetType: 'role', targetId: row.name, ip: meta.ip, requestId: meta.requestId, detail: { before: null, after: snapshot(row) } });
  await em.flush();
  deps.roles.invalidate();
  return row;
}

export async function updateRole(deps: Deps, actor: Principal, name: string, input: RoleInput, meta: Meta = {}): Promise<RoleRow> {
  const em = deps.em.fork();
  const row = await em.findOne(RoleSchema, { name });
  if (!row) throw notFound('role');
  const changesGrants = input.permissions !== undefined || input.parent !== undefined || input.host_group_ids !== undefined;
  if (row.builtin && changesGrants && !actor.roles.includes('admin')) throw forbidden('only an admin can change the permissions of a built-in role');
  if (row.name === 'admin' && changesGrants) throw conflict('the admin role always has every permission');
  await validate(em, name, input);
  const before = snapshot(row);
  if (input.description !== undefined) row.description = input.description;
  if (input.parent !== undefined) row.parent = input.parent;
  if (input.permissions !== undefined) row.permissions = [...new Set(input.permissions)];
  if (input.host_group_ids !== undefined) row.hostGroupIds = [...new Set(input.host_group_ids)];
  if (changesGrants) assertWithinOwn(actor, await effectiveAfter(em, row.name, row), `role "${row.name}"`);
  recordAudit(em, { actor: actor.username, action: 'role.update', targetType: 'role', targetId: row.name, ip: meta.ip, requestId: meta.requestId, detail: { before, after: snapshot(row) } });
  await em.flush();
  deps.roles.invalidate();
  return row;
}

export async function deleteRole(deps: Deps, actor: Principal, name: string, meta: Meta = {}): Promise<void> {
  const em = deps.em.fork();
  const row = await em.findOne(RoleSchema, { name });
  if (!row) throw notFound('role');
  if (row.builtin) throw conflict(`"${name}" is a built-in role and cannot be deleted`);
  const children = await em.find(RoleSchema, { parent: name });
  if (children.length) throw conflict(`roles ${children.map((c) => c.name).join(', ')} inherit from "${name}"`);
  const n = await usersHolding(em, name);
  if (n) throw conflict(`${n} users hold role "${name}"; take it from them first`);
  recordAudit(em, { actor: actor.username, action: 'role.delete', targetType: 'role', targetId: name, ip: meta.ip, requestId: meta.requestId, detail: { before: snapshot(row), after: null } });
  em.remove(row);
  await em.flush();
  deps.roles.invalidate();
}

/** Role names that do not exist in the roles table (for validating a user's role list). */
export async function unknownRoles(em: SqlEntityManager, names: string[]): Promise<string[]> {
  if (!names.length) return [];
  const found = new Set((await em.fork().find(RoleSchema, { name: { $in: names } }, { fields: ['name'] })).map((r) => r.name));
  return names.filter((n) => !found.has(n));
}

/** A role grant may not give the grantee permissions the granter lacks (403). */
export async function assertCanGrant(cache: RoleCache, actor: Principal, names: string[]): Promise<void> {
  const roles = await cache.roles();
  assertWithinOwn(actor, names.flatMap((n) => [...(roles.get(n)?.permissions ?? [])]), `granting ${names.join(', ')}`);
}

/** Throws 40001 naming `field.N` for each role name that is not a row of `roles`. */
export async function assertRolesExist(em: SqlEntityManager, names: string[], field = 'roles'): Promise<void> {
  const unknown = new Set(await unknownRoles(em, names));
  if (unknown.size) throw validationError(names.flatMap((n, i) => (unknown.has(n) ? [{ field: `${field}.${i}`, message: `role "${n}" does not exist` }] : [])));
}

export const usersHolding = (em: SqlEntityManager, name: string) => em.fork().count(UserSchema, { roles: { $contains: [name] } } as never);

/**
 * Roles for platform staff (registration, invitation, time-bound grants): rows of the roles table,
 * except a customer's people's roles (customer_member, customer_owner and roles inheriting from
 * them): those belong to a customer, not a department. 40001 naming `field.N` otherwise.
 */
export async function assertStaffRoles(em: SqlEntityManager, names: string[], field = 'roles'): Promise<void> {
  await assertRolesExist(em, names, field);
  const rows = new Map((await em.fork().find(RoleSchema, {})).map((r) => [r.name, r.parent ?? null]));
  const tenantRole = (name: string) => {
    const seen = new Set<string>();
    for (let n: string | null | undefined = name; n && !seen.has(n); n = rows.get(n)) {
      if (n === 'customer_member' || n === 'customer_owner') return true;
      seen.add(n);
    }
    return false;
  };
  const bad = names.flatMap((n, i) => (tenantRole(n) ? [{ field: `${field}.${i}`, message: `role "${n}" is for a customer's people, not registrable` }] : []));
  if (bad.length) throw validationError(bad);
}
