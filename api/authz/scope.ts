// Row scope, applied where queries are built: every list, detail and action query of a scoped
// entity goes through `scopedWhere` / `findInScope`, so a handler cannot forget the tenant.
// Cross-tenant ids answer 404 (the row "does not exist" for this principal), never 403.
import type { EntityName } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import {
  AccountOpeningRequestSchema,
  AllocationSchema,
  CustomerSchema,
  HOLDING_ALLOCATION_STATUSES,
  HostAccountSchema,
  HostGroupSchema,
  HostSchema,
  RemoteSessionSchema,
  SshKeySchema,
  UserSchema,
} from '../../db/entities/index.js';
import { notFound } from '../errors.js';
import type { Principal } from './principal.js';

type Where = Record<string, unknown>;
const none = (): Where => ({ id: { $in: [] } });

/** Allocations: staff by host group; a tenant's owner the company's; a member (or anyone else) only their own. */
function allocationWhere(p: Principal): Where {
  if (p.rowScope === 'all') return p.hostGroups ? { host: { group: { $in: p.hostGroups } } } : {};
  if (p.rowScope === 'company') return { customer: p.customerId };
  return p.customerId ? { customer: p.customerId, customerUser: p.id } : { customerUser: p.id };
}

const builders = new Map<unknown, (em: SqlEntityManager, p: Principal) => Promise<Where> | Where>([
  [AllocationSchema, (_em, p) => allocationWhere(p)],
  [
    HostSchema,
    async (em, p) => {
      // Platform staff see the fleet (within their host groups); a tenant's people only the hosts
      // their allocations hold now.
      if (!p.customerId) return p.hostGroups ? { group: { $in: p.hostGroups } } : {};
      const held = await em.find(AllocationSchema, { $and: [allocationWhere(p), { status: { $in: [...HOLDING_ALLOCATION_STATUSES] } }] } as never, { fields: ['host'] });
      return { id: { $in: [...new Set(held.map((a) => a.host.id))] } };
    },
  ],
  [
    AccountOpeningRequestSchema,
    (_em, p) => {
      if (p.rowScope === 'all') return p.hostGroups ? { host: { group: { $in: p.hostGroups } } } : {};
      if (p.rowScope === 'company') return { applicant: { customerId: p.customerId } };
      return { applicant: p.id };
    },
  ],
  [
    SshKeySchema,
    (_em, p) => {
      if (p.rowScope === 'all') return {};
      if (p.rowScope === 'company') return { user: { customerId: p.customerId } };
      return { user: p.id };
    },
  ],
  [CustomerSchema, (_em, p) => (p.customerId ? { id: p.customerId } : p.rowScope === 'all' ? {} : none())],
  /** Users as rows of a customer's member list (GET /customers/:id/users) and as owners of keys. */
  [UserSchema, (_em, p) => (p.customerId ? (p.rowScope === 'company' ? { customerId: p.customerId } : { id: p.id }) : p.rowScope === 'all' ? {} : { id: p.id })],
  [HostAccountSchema, (_em, p) => (p.rowScope === 'all' && !p.customerId ? (p.hostGroups ? { host: { group: { $in: p.hostGroups } } } : {}) : none())],
  [HostGroupSchema, (_em, p) => (p.customerId ? none() : p.hostGroups ? { name: { $in: p.hostGroups } } : {})],
  [
    RemoteSessionSchema,
    async (em, p) => {
      // Web terminal / VNC sessions: staff by the host groups of the session's host; a tenant's owner
      // the company's sessions; anyone else only their own.
      if (p.rowScope === 'all') {
        if (!p.hostGroups) return {};
        const hosts = await em.find(HostSchema, { group: { $in: p.hostGroups } }, { fields: ['id'] });
        return { hostId: { $in: hosts.map((h) => h.id) } };
      }
      if (p.rowScope === 'company') return { customerId: p.customerId };
      return { userId: p.id };
    },
  ],
]);

/** The `where` fragment limiting `entity` to the rows the principal may see. Unknown entities see nothing. */
export async function scopeOf(em: SqlEntityManager, p: Principal, entity: EntityName): Promise<Where> {
  const b = builders.get(entity);
  if (!b) return none();
  return b(em, p);
}

/** `where` AND the principal's scope. */
export async function scopedWhere(em: SqlEntityManager, p: Principal, entity: EntityName, where: Where = {}): Promise<Where> {
  const s = await scopeOf(em, p, entity);
  return Object.keys(s).length ? { $and: [where, s] } : where;
}

/** One row by id within the principal's scope, or 404 `<what> not found` (same answer as a missing id). */
export async function findInScope<T extends object>(
  em: SqlEntityManager,
  p: Principal,
  entity: EntityName<T>,
  where: Where,
  what: string,
  options: Record<string, unknown> = {},
): Promise<T> {
  const row = await em.findOne(entity, (await scopedWhere(em, p, entity, where)) as never, options as never);
  if (!row) throw notFound(what);
  return row as T;
}

/** Scope helpers bound to one principal: what handlers receive as `ctx.scope`. */
export function scopeFor(p: Principal) {
  return {
    where: (em: SqlEntityManager, entity: EntityName, where: Where = {}) => scopedWhere(em, p, entity, where),
    find: <T extends object>(em: SqlEntityManager, entity: EntityName<T>, where: Where, what: string, options: Record<string, unknown> = {}) => findInScope<T>(em, p, entity, where, what, options),
  };
}
export type Scope = ReturnType<typeof scopeFor>;
