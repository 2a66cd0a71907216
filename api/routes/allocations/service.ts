// Allocation domain operations shared by the routes (and usable from the CLI and tests): create
// with the per-host lock, and the recovery paths an operator needs when a lifecycle workflow is
// gone or failed (reclaim directly, retry, terminate, cancel a future-dated allocation, release a
// leftover host lock). Plain functions taking (deps, input).
import { runSummary } from '../../../config/temporal.js';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { eagerStartOptions } from '../../../config/temporal.js';
import { normaliseReminderOffsets } from '../../../workflows/shared/reminder-offsets.js';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { conflict, validationError, type FieldError } from '../../errors.js';
import { rethrowMapped } from '../../temporal-errors.js';
import {
  AllocationSchema,
  AllocationStepSchema,
  VncServiceSchema,
  CustomerSchema,
  HOLDING_ALLOCATION_STATUSES,
  HostAccountSchema,
  HostSchema,
  SshKeySchema,
  TerminalKeySchema,
  UserSchema,
  type Allocation as AllocationRow,
  type Customer,
  type Host,
  type User,
} from '../../../db/entities/index.js';
import type { Scope } from '../../authz/scope.js';
import type { AllocationPlanInput } from '../../../activities/remote/allocation-plan.js';
import { recordAudit } from '../../../db/audit.js';
import { linuxUsername, windowsUsername } from '../../../activities/remote/validation.js';
import { CustomerIdKey, HostIdKey, LifecycleStatusKey } from '../../../workflows/shared/search-attributes.js';
import type { allocation } from '../../../workflows/allocation.workflow.js';
import { cancelUpdate } from '../../../workflows/allocation.workflow.js';
import type { hostLock } from '../../../workflows/host-lock.workflow.js';
import { releaseSignal } from '../../../workflows/host-lock.workflow.js';
import { returnEarlyUpdate, terminateUpdate, type LeaseActor, type LeaseState } from '../../../workflows/lease.workflow.js';
import type { reclaim } from '../../../workflows/reclaim.workflow.js';

export interface AllocationServiceDeps {
  em: SqlEntityManager;
  temporal: { client: Client; taskQueue: string; eagerStart?: boolean };
  settings: { leaseBufferDays?: number; reclaimGraceMinutes?: number };
}

export interface RequestMeta {
  ip?: string;
  requestId: string;
}

export interface AllocationCreateInput {
  host_id: string;
  customer_id: string;
  customer_user_id: string;
  starts_at?: string;
  ends_at: string;
  buffer_days?: number;
  grace_minutes?: number;
  os_username?: string;
  notes?: string;
  reminder_offsets?: string[];
  vnc?: boolean;
}

const searchAttributes = (hostId: string, customerId: string, status: string) =>
  new TypedSearchAttributes([
    { key: HostIdKey, value: hostId },
    { key: CustomerIdKey, value: customerId },
    { key: LifecycleStatusKey, value: status },
  ]);

/**
 * Why `osUsername` cannot be the customer's login on `host`, or null. The host's management user
 * (the platform's own login, readable in GET /hosts) and any account on the host the platform
 * knows it did not create for a customer are refused here, at submit, instead of failing after
 * the allocation started (AccountExistsNotManaged) and stranding the host.
 */
export async function osUsernameConflict(em: SqlEntityManager, host: { id: string; username: string }, osUsername: string): Promise<string | null> {
  if (osUsername === host.username) return `${osUsername} is the host's management user`;
  const existing = await em.findOne(HostAccountSchema, { host: host.id, username: osUsername, status: { $ne: 'deleted' } });
  if (existing) {
    return existing.origin === 'pre-existing'
      ? `${osUsername} already exists on the host and is not managed by the platform`
      : `${osUsername} is already a managed account on the host (${existing.createdFromAllocationId ? 'another allocation' : 'an account opening'})`;
  }
  return null;
}

/** Validates, takes the per-host lock, records the row and starts `allocation/<id>`. */
export async function createAllocation(deps: AllocationServiceDeps, input: { body: AllocationCreateInput; actor: string; meta: RequestMeta; scope?: Scope }): Promise<AllocationRow> {
  const { body } = input;
  const { client, taskQueue } = deps.temporal;
  const em = deps.em.fork();
  const errors: FieldError[] = [];
  // Out-of-scope rows answer like missing ones (an East operator cannot allocate a West host).
  const scoped = async <T extends object>(entity: Parameters<Scope['where']>[1], where: Record<string, unknown>) =>
    em.findOne(entity as never, (input.scope ? await input.scope.where(em, entity, where) : where) as never) as Promise<T | null>;
  const [host, customer, cu] = await Promise.all([
    scoped<Host>(HostSchema, { id: body.host_id }),
    scoped<Customer>(CustomerSchema, { id: body.customer_id }),
    scoped<User>(UserSchema, { id: body.customer_user_id }),
  ]);
  if (!host) errors.push({ field: 'host_id', message: 'host does not exist' });
  else if (host.status !== 'online') errors.push({ field: 'host_id', message: `host ${host.slug} is ${host.status}, not online` });
  if (!customer) errors.push({ field: 'customer_id', message: 'customer does not exist' });
  if (!cu) errors.push({ field: 'customer_user_id', message: 'user does not exist' });
  else if (customer && cu.customerId !== customer.id) errors.push({ field: 'customer_user_id', message: `user ${cu.username} does not belong to customer ${customer.code}` });
  const osUsername = body.os_username ?? cu?.username ?? '';
  // The account name follows the host's OS rules (Windows: 20 characters, no \\ / [ ] : ; | = , + * ? < > @ ").
  const u = (host?.os === 'windows' ? windowsUsername : linuxUsername).safeParse(osUsername);
  if (!u.success) errors.push({ field: 'os_username', message: u.error.issues[0]?.message ?? 'invalid' });
  else if (host) {
    const why = await osUsernameConflict(em, host, osUsername);
    if (why) errors.push({ field: 'os_username', message: `${why}; choose another name` });
  }
  const now = Date.now();
  const startsAt = body.starts_at ? Date.parse(body.starts_at) : now;
  const endsAt = Date.parse(body.ends_at);
  if (endsAt <= Math.max(now, startsAt)) errors.push({ field: 'ends_at', message: 'must be after starts_at and in the future' });
  if (startsAt < now - 60_000) errors.push({ field: 'starts_at', message: 'must not be in the past' });
  // Reminder policy: the allocation's own offsets, else its customer's, else the default (null).
  let reminderOffsets: number[] | null = customer?.reminderOffsets ?? null;
  if (body.reminder_offsets) {
    const r = normaliseReminderOffsets(body.reminder_offsets);
    if ('error' in r) errors.push({ field: 'reminder_offsets', message: r.error });
    else reminderOffsets = r.minutes;
  }
  if (errors.length) throw validationError(errors);

  const bufferDays = body.buffer_days ?? deps.settings.leaseBufferDays ?? 3;
  const graceMinutes = body.grace_minutes ?? deps.settings.reclaimGraceMinutes ?? 60;
  const row = em.create(AllocationSchema, {
    host: host!,
    customer: customer!,
    customerUser: cu!,
    osUsername,
    startsAt: new Date(startsAt),
    endsAt: new Date(endsAt),
    bufferSeconds: Math.round(bufferDays * 86_400),
    graceSeconds: Math.round(graceMinutes * 60),
    status: 'pending',
    notes: body.notes ?? null,
    reminderOffsets,
    createdBy: input.actor,
  });

  // VNC auto-deployment: the row is the option (the allocation's deploy-vnc step and reclaim read it).
  if (body.vnc) em.create(VncServiceSchema, { allocationId: row.id, hostId: host!.id, osUsername, status: 'requested' });

  // 1. The per-host lock: of concurrent requests, exactly one starts host-lock/<hostId>.
  const lockId = `host-lock/${host!.id}`;
  try {
    await client.workflow.start<typeof hostLock>('hostLock', {
      workflowId: lockId,
      taskQueue,
      args: [{ hostId: host!.id, allocationId: row.id }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      typedSearchAttributes: new TypedSearchAttributes([{ key: HostIdKey, value: host!.id }]),
      memo: { allocationId: row.id },
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw conflict(`host_id: host ${host!.slug} is already allocated`);
    throw err;
  }
  const releaseLock = () => client.workflow.getHandle(lockId).signal(releaseSignal, { allocationId: row.id }).catch(() => undefined);
  // 2. The database's partial unique index: one holding allocation per host.
  recordAudit(em, { actor: input.actor, action: 'allocation.create', targetType: 'allocation', targetId: row.id, ip: input.meta.ip, requestId: input.meta.requestId, detail: { host: host!.slug, customer: customer!.code, ends_at: body.ends_at } });
  try {
    await em.flush();
  } catch (err) {
    await releaseLock();
    if (err instanceof UniqueConstraintViolationException) throw conflict(`host_id: host ${host!.slug} is already allocated`);
    throw err;
  }
  // 3. The lifecycle.
  try {
    await client.workflow.start<typeof allocation>('allocation', {
      workflowId: `allocation/${row.id}`,
      taskQueue,
      ...eagerStartOptions(deps.temporal),
      args: [{ allocationId: row.id, hostId: host!.id, customerId: customer!.id, startsAtMs: startsAt, endsAtMs: endsAt, bufferMs: row.bufferSeconds * 1000, graceMs: row.graceSeconds * 1000, ...(reminderOffsets ? { reminderOffsetsMinutes: reminderOffsets } : {}), ...(body.vnc ? { vnc: true } : {}) }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      typedSearchAttributes: searchAttributes(host!.id, customer!.id, 'pending'),
      ...runSummary(`Rental of ${host!.slug} to ${customer!.name} (${customer!.code}) until ${new Date(endsAt).toISOString().slice(0, 10)}`, { host: host!.slug, customer: customer!.code, username: osUsername }),
    });
  } catch (err) {
    row.status = 'cancelled';
    row.error = 'the allocation workflow could not be started';
    await em.flush();
    await releaseLock();
    throw err;
  }
  return row;
}

/** RUNNING, or the closed status name, or null when the workflow never existed. */
async function workflowStatus(client: Client, workflowId: string): Promise<string | null> {
  try {
    return (await client.workflow.getHandle(workflowId).describe()).status.name;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

const audit = async (deps: AllocationServiceDeps, actor: string, action: string, targetType: string, id: string, meta: RequestMeta, detail?: Record<string, unknown>) => {
  const em = deps.em.fork();
  recordAudit(em, { actor, action, targetType, targetId: id, ip: meta.ip, requestId: meta.requestId, detail });
  await em.flush();
};

/**
 * Starts `reclaim/<id>` directly (no lease involved), resuming after the reclaim steps already
 * done when the last reclaim failed. The row goes to `reclaiming` only if it is still in `from`.
 */
async function startReclaimDirectly(deps: AllocationServiceDeps, a: AllocationRow): Promise<void> {
  const em = deps.em.fork();
  // Reclaim runs once per allocation, so its recorded steps are this reclaim's: resume after them.
  const done =
    a.status === 'reclaim-failed' || a.status === 'reclaiming' ? (await em.find(AllocationStepSchema, { allocation: a.id, phase: 'reclaim', status: { $in: ['done', 'skipped'] } })).map((s) => s.step) : [];
  const updated = await em.nativeUpdate(AllocationSchema, { id: a.id, status: a.status }, { status: 'reclaiming', updatedAt: new Date() });
  if (updated === 0) throw conflict('the allocation changed while this request ran; look again');
  try {
    await deps.temporal.client.workflow.start<typeof reclaim>('reclaim', {
      workflowId: `reclaim/${a.id}`,
      taskQueue: deps.temporal.taskQueue,
      args: [{ allocationId: a.id, hostId: a.host.id, graceMs: a.graceSeconds * 1000, done }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      typedSearchAttributes: searchAttributes(a.host.id, a.customer.id, 'reclaiming'),
      ...runSummary(`Reclaim of ${a.host.slug} from ${a.customer.code}`, { host: a.host.slug, customer: a.customer.code, username: a.osUsername }),
    });
  } catch (err) {
    await em.nativeUpdate(AllocationSchema, { id: a.id, status: 'reclaiming' }, { status: a.status });
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw conflict('reclaim is already running');
    throw err;
  }
}

/**
 * Reclaim now. A running lease is asked to end (its Update starts reclaim); when the lease is
 * gone (terminated, failed, timed out, or never started), reclaim starts directly; a failed
 * allocation is cleaned up; a failed reclaim resumes at its failed step.
 */
export async function reclaimAllocation(deps: AllocationServiceDeps, input: { allocation: AllocationRow; actor: LeaseActor; meta: RequestMeta }): Promise<{ via: 'lease' | 'direct' }> {
  const a = input.allocation;
  const client = deps.temporal.client;
  if (a.status === 'reclaimed' || a.status === 'cancelled') throw conflict(`allocation is ${a.status}`);
  if (a.status === 'reclaiming' && (await workflowStatus(client, `reclaim/${a.id}`)) === 'RUNNING') throw conflict('reclaim is already running');
  if (a.status === 'pending' || a.status === 'provisioning') {
    if ((await workflowStatus(client, `allocation/${a.id}`)) === 'RUNNING') {
      throw conflict(
        a.status === 'pending' && a.startsAt.getTime() > Date.now()
          ? 'the allocation has not started yet; cancel it instead (POST /allocations/:id/cancel)'
          : 'the allocation is still being provisioned; wait for it to finish or fail',
      );
    }
  }
  let via: 'lease' | 'direct' = 'direct';
  if ((a.status === 'active' || a.status === 'buffer') && (await workflowStatus(client, `lease/${a.id}`)) === 'RUNNING') {
    try {
      await client.workflow.getHandle(`lease/${a.id}`).executeUpdate(returnEarlyUpdate, { args: [{ mode: 'reclaim', actor: input.actor }] });
      via = 'lease';
    } catch (err) {
      rethrowMapped(err, 'lease');
    }
  } else {
    await startReclaimDirectly(deps, a);
  }
  await audit(deps, input.actor.username, 'allocation.reclaim', 'allocation', a.id, input.meta, { from: a.status, via });
  return { via };
}

/**
 * Retry from the failed step: failed provisioning resumes provisioning; a failed reclaim resumes
 * the reclaim (the same as POST /reclaim).
 */
export async function retryAllocation(deps: AllocationServiceDeps, input: { allocation: AllocationRow; actor: LeaseActor; meta: RequestMeta }): Promise<{ retried: 'allocate' | 'reclaim' }> {
  const a = input.allocation;
  if (a.status === 'reclaim-failed') {
    await reclaimAllocation(deps, input);
    return { retried: 'reclaim' };
  }
  if (a.status !== 'failed') throw conflict(`allocation is ${a.status}; only a failed allocation (retry provisioning) or a reclaim-failed one (retry reclaim) can be retried`);
  const done = (await deps.em.fork().find(AllocationStepSchema, { allocation: a.id, phase: 'allocate', status: { $in: ['done', 'skipped'] } })).map((s) => s.step);
  const vnc = (await deps.em.fork().count(VncServiceSchema, { allocationId: a.id, status: { $ne: 'removed' } })) > 0;
  try {
    await deps.temporal.client.workflow.start<typeof allocation>('allocation', {
      workflowId: `allocation/${a.id}`,
      taskQueue: deps.temporal.taskQueue,
      ...eagerStartOptions(deps.temporal),
      args: [{ allocationId: a.id, hostId: a.host.id, customerId: a.customer.id, startsAtMs: Date.now(), endsAtMs: a.endsAt.getTime(), bufferMs: a.bufferSeconds * 1000, graceMs: a.graceSeconds * 1000, done, ...(a.reminderOffsets ? { reminderOffsetsMinutes: a.reminderOffsets } : {}), ...(vnc ? { vnc: true } : {}) }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      typedSearchAttributes: searchAttributes(a.host.id, a.customer.id, 'provisioning'),
      ...runSummary(`Rental of ${a.host.slug} to ${a.customer.code} (retry) until ${a.endsAt.toISOString().slice(0, 10)}`, { host: a.host.slug, customer: a.customer.code, username: a.osUsername }),
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw conflict('the allocation is already being provisioned');
    throw err;
  }
  await audit(deps, input.actor.username, 'allocation.retry', 'allocation', a.id, input.meta, { from: a.failedStep });
  return { retried: 'allocate' };
}

/**
 * Terminate now (admin, with a reason). A running lease takes the Update; without one (the lease
 * is gone, provisioning failed, or a reclaim failed) the reclaim starts directly, so terminate is a
 * way out of every holding state except a reclaim already running.
 */
export async function terminateAllocation(deps: AllocationServiceDeps, input: { allocation: AllocationRow; actor: LeaseActor; reason: string; meta: RequestMeta }): Promise<LeaseState | null> {
  const a = input.allocation;
  const client = deps.temporal.client;
  if (!HOLDING_ALLOCATION_STATUSES.includes(a.status)) throw conflict(`allocation is ${a.status}`);
  if (['active', 'buffer'].includes(a.status) && (await workflowStatus(client, `lease/${a.id}`)) === 'RUNNING') {
    let s: LeaseState;
    try {
      s = await client.workflow.getHandle(`lease/${a.id}`).executeUpdate(terminateUpdate, { args: [{ reason: input.reason, actor: input.actor }] });
    } catch (err) {
      return rethrowMapped(err, 'lease');
    }
    await audit(deps, input.actor.username, 'allocation.terminate', 'allocation', a.id, input.meta, { reason: input.reason });
    return s;
  }
  const em = deps.em.fork();
  await em.nativeUpdate(AllocationSchema, { id: a.id }, { terminateReason: input.reason.trim() });
  await reclaimAllocation(deps, input);
  await audit(deps, input.actor.username, 'allocation.terminate', 'allocation', a.id, input.meta, { reason: input.reason, via: 'reclaim' });
  return null;
}

/**
 * Cancels an allocation that has not started (future `starts_at`): the allocation workflow, asleep
 * until the start, takes the `cancel` Update, records `cancelled` and releases the host lock.
 * Nothing ran on the host, so nothing needs reclaiming.
 */
export async function cancelAllocation(deps: AllocationServiceDeps, input: { allocation: AllocationRow; actor: LeaseActor; reason?: string; meta: RequestMeta }): Promise<void> {
  const a = input.allocation;
  if (a.status !== 'pending') throw conflict(`allocation is ${a.status}; only an allocation that has not started can be cancelled (reclaim or terminate it instead)`);
  try {
    await deps.temporal.client.workflow.getHandle(`allocation/${a.id}`).executeUpdate(cancelUpdate, { args: [{ actor: input.actor, reason: input.reason ?? null }] });
  } catch (err) {
    rethrowMapped(err, 'allocation');
  }
  await audit(deps, input.actor.username, 'allocation.cancel', 'allocation', a.id, input.meta, { reason: input.reason ?? null });
}

/**
 * Releases a leftover `host-lock/<hostId>`: one whose allocation no longer holds the host (the
 * release signal was lost). While the allocation still holds it, 40901 names the allocation and
 * its way out (reclaim / retry / terminate / cancel). Audited.
 */
export async function releaseHostLock(deps: AllocationServiceDeps, input: { hostId: string; actor: string; meta: RequestMeta }): Promise<{ released: boolean; allocationId: string | null }> {
  const client = deps.temporal.client;
  const handle = client.workflow.getHandle<typeof hostLock>(`host-lock/${input.hostId}`);
  let d;
  try {
    d = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { released: false, allocationId: null };
    throw err;
  }
  if (d.status.name !== 'RUNNING') return { released: false, allocationId: null };
  // The API starts every lock with its allocation id in the memo (no worker needed to read it).
  const holder = { allocationId: String((d.memo as { allocationId?: unknown } | undefined)?.allocationId ?? '') };
  const a = holder.allocationId ? await deps.em.fork().findOne(AllocationSchema, { id: holder.allocationId }) : null;
  if (a && HOLDING_ALLOCATION_STATUSES.includes(a.status)) {
    throw conflict(
      `host lock is held by allocation ${a.id}, which is ${a.status}; end it first (${a.status === 'pending' ? 'cancel' : a.status === 'failed' || a.status === 'reclaim-failed' ? 'retry, reclaim or terminate' : 'reclaim or terminate'})`,
      { allocation_id: a.id, status: a.status },
    );
  }
  await handle.signal(releaseSignal, { allocationId: holder.allocationId });
  await audit(deps, input.actor, 'host.lock.release', 'host', input.hostId, input.meta, { allocationId: holder.allocationId, allocationStatus: a?.status ?? null });
  return { released: true, allocationId: holder.allocationId };
}

/** Host ids held by an allocation (rented, or on their way in or out). */
export async function allocatedHostIds(em: SqlEntityManager, hostIds?: string[]): Promise<Set<string>> {
  const where: Record<string, unknown> = { status: { $in: [...HOLDING_ALLOCATION_STATUSES] } };
  if (hostIds) where.host = { $in: hostIds };
  const rows = await em.fork().find(AllocationSchema, where, { fields: ['host'] });
  return new Set(rows.map((r) => r.host.id));
}


export interface AllocationStats {
  by_status: Record<string, number>;
  /** Lease events recorded per UTC day over the last `days` days, by kind (reminder-7d/3d/1d, ended, reclaim-started). */
  lease_events: Array<{ day: string; kind: string; count: number }>;
  days: number;
}

/** Dashboard counts: allocations by status, and the lease events (reminders sent, …) per day. */
export async function allocationStats(em: SqlEntityManager, days = 14): Promise<AllocationStats> {
  const conn = em.getConnection();
  const byStatus = await conn.execute<Array<{ status: string; n: string }>>('select status, count(*) as n from allocations group by status');
  const events = await conn.execute<Array<{ day: string; kind: string; n: string }>>(
    `select to_char(date_trunc('day', created_at at time zone 'UTC'), 'YYYY-MM-DD') as day, kind, count(*) as n from lease_events where created_at >= now() - make_interval(days => ?) group by 1, 2 order by 1, 2`,
    [days],
  );
  return {
    by_status: Object.fromEntries(byStatus.map((x) => [x.status, Number(x.n)])),
    lease_events: events.map((x) => ({ day: x.day, kind: x.kind, count: Number(x.n) })),
    days,
  };
}

/**
 * What the allocation and reclaim plans are built from (read only): the customer user's keys, the
 * web terminal key if it exists, accounts earlier allocations left on the host, the recorded uid.
 * Mirrors what createAllocationRemoteActivities reads; refuses non-Linux hosts as they do.
 */
export async function allocationPlanInput(em: SqlEntityManager, a: AllocationRow): Promise<AllocationPlanInput> {
  if (a.host.os !== 'linux') throw conflict(`host ${a.host.slug} is ${a.host.os}: allocation supports Linux hosts`);
  const e = em.fork();
  const [active, all, terminal, leftovers, account, vnc] = await Promise.all([
    e.find(SshKeySchema, { user: a.customerUser.id, revokedAt: null }, { orderBy: { createdAt: 'asc' } }),
    e.find(SshKeySchema, { user: a.customerUser.id }, { fields: ['fingerprint'] }),
    e.findOne(TerminalKeySchema, { allocationId: a.id }),
    e.find(HostAccountSchema, { host: a.host.id, createdFromAllocationId: { $ne: null, $nin: [a.id] }, status: { $ne: 'deleted' } }),
    e.findOne(HostAccountSchema, { host: a.host.id, username: a.osUsername, createdFromAllocationId: a.id }),
    e.count(VncServiceSchema, { allocationId: a.id, status: { $ne: 'removed' } }),
  ]);
  return {
    allocation: { id: a.id, osUsername: a.osUsername, host: a.host },
    fullName: account?.fullName ?? a.customerUser.fullName ?? a.customerUser.username,
    activeKeys: active.map((k) => k.publicKey),
    allFingerprints: all.map((k) => k.fingerprint),
    terminalKey: terminal?.publicKey ?? null,
    leftovers: leftovers.map((l) => ({ username: l.username, uid: l.uid ?? null, allocationId: l.createdFromAllocationId! })),
    uid: account?.uid ?? null,
    vnc: vnc > 0,
  };
}
