// Who is calling, and what they may do: the authenticated user (api/middleware/auth.ts) resolved
// against the roles table into permissions and a row scope. Built once per request in defineRoute.
import type { SqlEntityManager } from '@mikro-orm/sql';
import { HostGroupSchema, RoleSchema, type RoleRow } from '../../db/entities/index.js';
import type { AuthedUser } from '../middleware/auth.js';
import { ALL, PERMISSION_NAMES, TENANT_PERMISSIONS, type Permission } from './permissions.js';


export type RowScope = 'all' | 'company' | 'own';

/**
 * The one principal type: the authenticated user (session or API key, api/middleware/auth.ts;
 * `customerId` is the tenant of a customer's person, null for platform staff) plus what the roles
 * table makes of its roles. For an API key `roles` are already the key's subset, so the
 * permissions are those of the key, never more than the owner's.
 */
export interface Principal extends AuthedUser {
  permissions: ReadonlySet<Permission>;
  /** `all`: everyone's rows (within hostGroups); `company`: the tenant's rows; `own`: only rows that are the principal's. */
  rowScope: RowScope;
  /** Host group names the principal is limited to; null = not limited. */
  hostGroups: string[] | null;
}

export const can = (p: Principal, perm: Permission) => p.permissions.has(perm);

interface ResolvedRole {
  permissions: Set<Permission>;
  /** Host group names from the nearest role on the chain that has any; null = unscoped. */
  hostGroups: string[] | null;
}

/**
 * The roles table in memory, reloaded when a role changes (invalidate) and at most `ttlMs` old,
 * so several API processes converge after a change made through another one.
 */
export class RoleCache {
  private loaded: Promise<Map<string, ResolvedRole>> | null = null;
  private loadedAt = 0;
  constructor(
    private readonly em: SqlEntityManager,
    private readonly ttlMs = 30_000,
  ) {}

  invalidate(): void {
    this.loaded = null;
  }

  async roles(): Promise<Map<string, ResolvedRole>> {
    if (!this.loaded || Date.now() - this.loadedAt > this.ttlMs) {
      this.loadedAt = Date.now();
      this.loaded = this.load().catch((err) => {
        this.loaded = null;
        throw err;
      });
    }
    return this.loaded;
  }

  private async load(): Promise<Map<string, ResolvedRole>> {
    const em = this.em.fork();
    const [rows, groups] = await Promise.all([em.find(RoleSchema, {}), em.find(HostGroupSchema, {})]);
    const groupNames = new Map(groups.map((g) => [g.id, g.name]));
    return resolveRoles(rows, groupNames);
  }

  /** Names of roles that exist (for validating role lists on users). */
  async exists(names: string[]): Promise<string[]> {
    const roles = await this.roles();
    return names.filter((n) => !roles.has(n));
  }
}

/** Flattens inheritance: each role gets its ancestors' permissions; `*` expands to the whole catalogue. */
export function resolveRoles(rows: Array<Pick<RoleRow, 'name' | 'parent' | 'permissions' | 'hostGroupIds'>>, groupNames: Map<string, string>): Map<string, ResolvedRole> {
  const byName = new Map(rows.map((r) => [r.name, r]));
  const out = new Map<string, ResolvedRole>();
  for (const row of rows) {
    const permissions = new Set<Permission>();
    let hostGroups: string[] | null = null;
    const seen = new Set<string>();
    for (let r: typeof row | undefined = row; r && !seen.has(r.name); r = r.parent ? byName.get(r.parent) : undefined) {
      seen.add(r.name);
      for (const perm of r.permissions) {
        if (perm === ALL) PERMISSION_NAMES.forEach((x) => permissions.add(x));
        else if ((PERMISSION_NAMES as string[]).includes(perm)) permissions.add(perm as Permission);
      }
      if (hostGroups === null && r.hostGroupIds.length) hostGroups = r.hostGroupIds.map((id) => groupNames.get(id) ?? `(deleted group ${id})`);
    }
    out.set(row.name, { permissions, hostGroups });
  }
  return out;
}

/**
 * The roles that are one of `names` or inherit from one (through any number of parents): who a
 * role-addressed message reaches, so a custom role made from `approver` gets what approvers get.
 */
export function rolesInheriting(rows: Array<Pick<RoleRow, 'name' | 'parent'>>, names: Iterable<string>): Set<string> {
  const parent = new Map(rows.map((r) => [r.name, r.parent ?? null]));
  const wanted = new Set(names);
  const out = new Set<string>();
  for (const name of new Set([...wanted, ...parent.keys()])) {
    const seen = new Set<string>();
    for (let r: string | null = name; r && !seen.has(r); r = parent.get(r) ?? null) {
      seen.add(r);
      if (wanted.has(r)) {
        out.add(name);
        break;
      }
    }
  }
  return out;
}

/** The one place that reads the tenant of a user: authentication puts it on req.user. */
export const customerIdOf = (user: Pick<AuthedUser, 'customerId'>): string | null => user.customerId ?? null;

interface Grant {
  permissions: ReadonlySet<Permission>;
  /** null = not limited to host groups. */
  hostGroups: string[] | null;
}
/** What a list of role names grants, per loaded roles table (a new table, after a change, starts empty). */
const grants = new WeakMap<Map<string, ResolvedRole>, Map<string, Grant>>();

function grantOf(roles: Map<string, ResolvedRole>, names: string[]): Grant {
  let memo = grants.get(roles);
  if (!memo) grants.set(roles, (memo = new Map()));
  const key = names.join('\u0000');
  let g = memo.get(key);
  if (g) return g;
  const permissions = new Set<Permission>();
  let unscoped = false;
  const groups = new Set<string>();
  for (const name of names) {
    const r = roles.get(name);
    if (!r) continue; // a role deleted meanwhile grants nothing
    r.permissions.forEach((x) => permissions.add(x));
    if (r.hostGroups === null) unscoped = true;
    else r.hostGroups.forEach((g) => groups.add(g));
  }
  g = { permissions, hostGroups: unscoped || !names.length ? null : [...groups] };
  if (memo.size < 1000) memo.set(key, g);
  return g;
}

export async function resolvePrincipal(cache: RoleCache, user: AuthedUser): Promise<Principal> {
  const granted = grantOf(await cache.roles(), user.roles);
  const customerId = customerIdOf(user);
  const { hostGroups } = granted;
  // A tenant's person holds at most the tenant capabilities, whatever their roles say.
  const permissions = customerId ? new Set([...granted.permissions].filter((x) => TENANT_PERMISSIONS.has(x))) : granted.permissions;
  // A tenant's person never sees beyond their company, whatever their roles say.
  const rowScope: RowScope = permissions.has('scope.all') && !customerId ? 'all' : permissions.has('scope.company') && customerId ? 'company' : 'own';
  return { ...user, customerId, permissions, rowScope, hostGroups: hostGroups && [...hostGroups] };
}
