// Account-opening domain operations shared by routes (and usable by the CLI and tests).
// Who may ask for which account on which host: one rule for `is_admin` and privileged groups, and
// the tenant rule (customer users only on hosts allocated to their customer). Plain functions
// taking (deps, input), used at submit; the approver then decides on a request that is allowed.
// Is the username free on the host: refused at submit what provisioning would refuse.
import { raw } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { eagerStartOptions, runSummary } from '../../../config/temporal.js';
import { TypedSearchAttributes } from '@temporalio/common';
import type { AppDeps } from '../../deps.js';
import { forbidden, validationError, type FieldError } from '../../errors.js';
import { AccountOpeningRequestSchema, AllocationSchema, EnvTemplateSchema, HostAccountSchema, HostSchema, UserSchema, type AccountPolicy, type Host } from '../../../db/entities/index.js';
import { HostIdKey } from '../../../workflows/shared/search-attributes.js';
import type { Scope } from '../../authz/scope.js';
import type { hostUserLookup } from '../../../workflows/host-user-lookup.workflow.js';

/** Denied unless a host's or template's account policy allows them (issue 12). */
export const PRIVILEGED_LINUX_GROUPS = ['root', 'sudo', 'wheel', 'adm', 'disk', 'docker', 'lxd'] as const;
/** Windows groups that amount to administrator rights (compared case-insensitively). */
export const PRIVILEGED_WINDOWS_GROUPS = ['administrators', 'backup operators', 'hyper-v administrators', 'remote management users'] as const;

export function isPrivilegedGroup(os: 'linux' | 'windows', group: string): boolean {
  return os === 'windows' ? (PRIVILEGED_WINDOWS_GROUPS as readonly string[]).includes(group.toLowerCase()) : (PRIVILEGED_LINUX_GROUPS as readonly string[]).includes(group);
}

/** The host's policy merged with its template's: allowed if either allows. */
export async function effectiveAccountPolicy(em: SqlEntityManager, host: Pick<Host, 'accountPolicy' | 'templateId'>): Promise<Required<AccountPolicy>> {
  const tpl = host.templateId ? await em.findOne(EnvTemplateSchema, { id: host.templateId }, { fields: ['accountPolicy'] }) : null;
  const parts = [host.accountPolicy, tpl?.accountPolicy].filter((x): x is AccountPolicy => !!x);
  return {
    allowAdmin: parts.some((x) => x.allowAdmin === true),
    allowGroups: [...new Set(parts.flatMap((x) => x.allowGroups ?? []))],
    privilegedBy: parts.some((x) => x.privilegedBy === 'anyone') ? 'anyone' : 'staff',
  };
}

export interface AccountRequestCheck {
  requester: { id: string; roles: readonly string[] };
  host: Pick<Host, 'id' | 'slug' | 'os' | 'accountPolicy' | 'templateId'>;
  isAdmin: boolean;
  groups: string[];
}

const isStaff = (roles: readonly string[]) => roles.includes('admin') || roles.includes('operator');

/**
 * Throws 40301 when a customer user asks for an account on a host not allocated to their customer,
 * 40001 naming `is_admin` / `groups.<i>` when the host's policy does not allow that privilege, and
 * 40301 when it does but the requester is not staff and the policy does not say `anyone`.
 */
export async function assertAccountRequestAllowed(deps: { em: SqlEntityManager }, input: AccountRequestCheck): Promise<void> {
  const em = deps.em.fork();
  const me = await em.findOne(UserSchema, { id: input.requester.id }, { fields: ['customerId', 'roles'] });
  const customerId = me?.customerId ?? null;
  if (customerId || (input.requester.roles.includes('customer') && !isStaff(input.requester.roles))) {
    const held = customerId ? await em.count(AllocationSchema, { host: input.host.id, customer: customerId, status: { $in: ['active', 'buffer'] } }) : 0;
    if (!held) throw forbidden(`host_id: customer users may request accounts only on hosts allocated to their customer (${input.host.slug} is not)`);
  }

  const policy = await effectiveAccountPolicy(em, input.host);
  const errors: FieldError[] = [];
  const privileged: string[] = [];
  if (input.isAdmin) {
    privileged.push('is_admin');
    if (!policy.allowAdmin) errors.push({ field: 'is_admin', message: `administrator accounts are not allowed on ${input.host.slug} (its account policy does not allow them)` });
  }
  input.groups.forEach((g, i) => {
    if (!isPrivilegedGroup(input.host.os, g)) return;
    privileged.push(g);
    const allowed = input.host.os === 'windows' ? policy.allowGroups.some((a) => a.toLowerCase() === g.toLowerCase()) : policy.allowGroups.includes(g);
    if (!allowed) errors.push({ field: `groups.${i}`, message: `group ${g} is privileged and not allowed on ${input.host.slug} (its account policy does not allow it)` });
  });
  if (errors.length) throw validationError(errors);
  if (privileged.length && !isStaff(input.requester.roles) && policy.privilegedBy !== 'anyone') {
    throw forbidden(`${privileged.join(', ')}: privileged accounts need an admin or operator as requester on ${input.host.slug}`);
  }
}

/** How long submit waits for the on-host lookup before accepting (execution checks again). */
export const USER_LOOKUP_WAIT_MS = 8_000;

/**
 * Is `username` free on `host`? Refuses (as field errors on `username`) what provisioning would
 * refuse: the host's management login, a name the platform already manages there, and an OS account
 * that exists on the host — checked over SSH/WinRM (workflow `host-user-lookup/<hostId>/<ts>`) when
 * the host answers within USER_LOOKUP_WAIT_MS. An unreachable host is not a refusal: the
 * account-opening workflow checks again before it creates anything.
 */
export async function usernameIssuesOnHost(
  deps: Pick<AppDeps, 'em' | 'temporal' | 'logger'>,
  input: { host: Host; username: string },
): Promise<FieldError[]> {
  const { host, username } = input;
  if (username === host.username) {
    return [{ field: 'username', message: `"${username}" is the platform's management login on ${host.slug}` }];
  }
  const managed = await deps.em.fork().findOne(HostAccountSchema, { host: host.id, username, status: { $ne: 'deleted' } }, { fields: ['id'] });
  if (managed) return [{ field: 'username', message: `"${username}" is already an account on ${host.slug}, managed by the platform` }];
  const exists = await lookupOnHost(deps, host, username);
  if (exists) return [{ field: 'username', message: `user "${username}" already exists on ${host.slug} and was not created by the platform` }];
  return [];
}

async function lookupOnHost(deps: Pick<AppDeps, 'temporal' | 'logger'>, host: Host, username: string): Promise<boolean | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const handle = await deps.temporal.client.workflow.start<typeof hostUserLookup>('hostUserLookup', {
      workflowId: `host-user-lookup/${host.id}/${new Date().toISOString().replace(/[-:.]/g, '')}-${Math.random().toString(36).slice(2, 8)}`,
      taskQueue: deps.temporal.taskQueue,
      ...eagerStartOptions(deps.temporal),
      args: [{ hostId: host.id, username }],
      typedSearchAttributes: new TypedSearchAttributes([{ key: HostIdKey, value: host.id }]),
      workflowExecutionTimeout: '1 minute',
      ...runSummary(`Is there a user ${username} on ${host.slug}?`, { host: host.slug, username }),
    });
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), USER_LOOKUP_WAIT_MS);
    });
    const r = await Promise.race([handle.result(), timeout]);
    return r ? r.exists : null;
  } catch (err) {
    deps.logger.info({ host: host.slug, err: (err as Error).message }, 'user lookup at submit did not answer; execution checks again');
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * GET /account-openings/stats over the caller's rows only: the same row scope as the list (a
 * tenant's company or own requests, a staff role's host groups), applied in the query builder's
 * `where` like every other read — counts of rows the caller cannot open are not shown either.
 */
export async function accountOpeningStats(em: SqlEntityManager, scope: Scope, now = new Date()) {
  const where = await scope.where(em, AccountOpeningRequestSchema);
  const qb = () => em.createQueryBuilder(AccountOpeningRequestSchema, 'e');
  const byStatus = (await qb().select(['e.status', raw('count(*) as n')] as never).where(where as never).groupBy('e.status' as never).execute('all', false)) as unknown as Array<{ status: string; n: string | number }>;
  const byHost = (await qb()
    .select([raw('e.host_id as host_id'), raw('count(*) as n')] as never)
    .where(where as never)
    .groupBy('e.host' as never)
    .orderBy([{ [raw('count(*)') as never]: 'desc' }, { [raw('e.host_id') as never]: 'asc' }] as never)
    .limit(50)
    .execute('all', false)) as unknown as Array<{ host_id: string; n: string | number }>;
  const slugs = new Map((byHost.length ? await em.find(HostSchema, { id: { $in: byHost.map((h) => h.host_id) } }, { fields: ['id', 'slug'] }) : []).map((h) => [h.id, h.slug]));
  const since = new Date(now.getTime() - 30 * 86_400_000);
  const days = (await qb()
    .select([raw(`to_char(date_trunc('day', e.created_at at time zone 'UTC'), 'YYYY-MM-DD') as day`), raw('count(*) as n')] as never)
    .where({ $and: [where, { createdAt: { $gte: since } }] } as never)
    .groupBy(raw('1') as never)
    .orderBy({ [raw('1') as never]: 'asc' } as never)
    .execute('all', false)) as unknown as Array<{ day: string; n: string | number }>;
  return {
    by_status: Object.fromEntries(byStatus.map((x) => [x.status, Number(x.n)])),
    by_host: byHost.map((x) => ({ host_id: x.host_id, slug: slugs.get(x.host_id) ?? '', total: Number(x.n) })),
    last_30_days: days.map((x) => ({ day: x.day, submitted: Number(x.n) })),
  };
}
