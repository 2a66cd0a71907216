import { Router } from 'express';
import { DEFAULT_REMINDER_OFFSETS_MINUTES, MAX_REMINDER_OFFSETS, REMINDER_OFFSET_PATTERN, formatReminderOffset } from '../../../workflows/shared/reminder-offsets.js';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { AppDeps } from '../../deps.js';
import { z, noControlText, NO_CONTROL_RE, type OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { conflict, forbidden } from '../../errors.js';
import { PageQuery, pageOffsets, pageResult } from '../../pagination.js';
import { readPage } from '../../../db/read.js';
import { rethrowMapped } from '../../temporal-errors.js';
import type { AuthedUser } from '../../middleware/auth.js';
import type { Scope } from '../../authz/scope.js';
import type { Principal } from '../../authz/principal.js';
import {
  ALLOCATION_STATUSES,
  AllocationSchema,
  AllocationStepSchema,
  HostAccountSchema,
  LeaseEventSchema,
  type Allocation as AllocationRow,
} from '../../../db/entities/index.js';
import { recordAudit } from '../../../db/audit.js';
import { allocationPlanInput, allocationStats, cancelAllocation, createAllocation, reclaimAllocation, retryAllocation, terminateAllocation } from './service.js';
import { connectionSummary } from '../../../db/connection-summary.js';
import { hostAccountSecretContext } from '../../../activities/remote/host-targets.js';
import { extendUpdate, leaseStateQuery, returnEarlyUpdate, type LeaseState } from '../../../workflows/lease.workflow.js';
import { RECLAIM_STEPS, RECLAIM_STEPS_WITH_VNC, forceUpdate, reclaimProgressQuery } from '../../../workflows/reclaim.workflow.js';
import { ALLOCATION_STEPS, ALLOCATION_STEPS_WITH_VNC } from '../../../workflows/allocation.workflow.js';
import { planAllocation, planReclaim } from '../../../activities/remote/allocation-plan.js';
import { InvalidInputError } from '../../../activities/remote/validation.js';
import type { StepsProgress } from '../../../workflows/shared/steps.js';

const iso = z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time with a time zone, e.g. 2026-12-31T18:00:00+08:00' });

const Allocation = z
  .object({
    id: z.string().uuid(),
    status: z.enum(ALLOCATION_STATUSES),
    host: z.object({ id: z.string(), slug: z.string(), name: z.string() }),
    customer: z.object({ id: z.string(), code: z.string(), name: z.string() }),
    customer_user: z.object({ id: z.string(), username: z.string() }),
    os_username: z.string(),
    starts_at: z.string(),
    ends_at: z.string(),
    buffer_days: z.number(),
    grace_minutes: z.number(),
    failed_step: z.string().nullable(),
    error: z.string().nullable(),
    terminate_reason: z.string().nullable(),
    notes: z.string().nullable(),
    reminder_offsets: z.array(z.string()).openapi({ description: 'When the lease reminds the customer, before its end (e.g. ["7d","3d","1d"]): the allocation\'s own list, else its customer\'s, else 7/3/1 days; fixed when the allocation is created' }),
    reclaimed_at: z.string().nullable(),
    workflow_ids: z.object({ allocation: z.string(), lease: z.string(), reclaim: z.string(), host_lock: z.string() }),
    created_by: z.string(),
    created_at: z.string(),
  })
  .openapi('Allocation');

const AllocationCreate = z
  .object({
    host_id: z.string().uuid('must be a host id (uuid)'),
    customer_id: z.string().uuid('must be a customer id (uuid)'),
    customer_user_id: z.string().uuid('must be a user id (uuid)').openapi({ description: 'The customer user whose account and SSH keys go on the host' }),
    starts_at: iso.optional().openapi({ description: 'Default: now' }),
    ends_at: iso,
    buffer_days: z.number().min(0).max(90).optional(),
    grace_minutes: z.number().min(0).max(7 * 24 * 60).optional(),
    os_username: z.string().optional().openapi({ description: "OS login name on the host; default: the customer user's username" }),
    notes: noControlText(1000, 'must not contain control characters').optional(),
    reminder_offsets: z
      .array(z.string().regex(REMINDER_OFFSET_PATTERN, 'an offset looks like 7d, 12h or 30m'))
      .max(MAX_REMINDER_OFFSETS)
      .optional()
      .openapi({ description: "Reminder offsets before the end, in days (d), hours (h) or minutes (m), e.g. [\"30d\",\"7d\",\"1d\",\"2h\"]; default: the customer's policy, else 7d/3d/1d" }),
    vnc: z
      .boolean()
      .optional()
      .openapi({ description: "VNC service auto-deployment: TigerVNC (Xvnc) for the customer's account with a platform-managed VNC password (revealed once: POST /allocations/:id/vnc/password/reveal), reachable through noVNC and the gateway; reclaim removes it. Default false" }),
  })
  .openapi('AllocationCreate');

const Step = z.object({ phase: z.string(), step: z.string(), status: z.string(), attempts: z.number(), started_at: z.string().nullable(), finished_at: z.string().nullable(), error: z.string().nullable(), detail: z.record(z.string(), z.unknown()).nullable() });
const Progress = z
  .object({
    allocation_id: z.string(),
    status: z.enum(ALLOCATION_STATUSES),
    steps: z.array(Step),
    lease: z.object({ phase: z.string(), ends_at: z.string(), buffer_ends_at: z.string().nullable(), next: z.object({ kind: z.string(), at: z.string() }).nullable(), sent: z.array(z.string()), skipped: z.array(z.string()) }).nullable(),
    lease_events: z.array(z.object({ kind: z.string(), due_at: z.string(), fired_at: z.string(), notification: z.string().nullable() })),
    reclaim: z.object({ current: z.string().nullable(), result: z.string() }).nullable(),
  })
  .openapi('AllocationProgress');
const IdParams = z.object({ id: z.string().uuid('must be an allocation id (uuid)') });

const toDto = (a: AllocationRow): z.input<typeof Allocation> => ({
  id: a.id,
  status: a.status,
  host: { id: a.host.id, slug: a.host.slug, name: a.host.name },
  customer: { id: a.customer.id, code: a.customer.code, name: a.customer.name },
  customer_user: { id: a.customerUser.id, username: a.customerUser.username },
  os_username: a.osUsername,
  starts_at: a.startsAt.toISOString(),
  ends_at: a.endsAt.toISOString(),
  buffer_days: a.bufferSeconds / 86_400,
  grace_minutes: a.graceSeconds / 60,
  failed_step: a.failedStep ?? null,
  error: a.error ?? null,
  terminate_reason: a.terminateReason ?? null,
  notes: a.notes ?? null,
  reminder_offsets: (a.reminderOffsets ?? DEFAULT_REMINDER_OFFSETS_MINUTES).map(formatReminderOffset),
  reclaimed_at: a.reclaimedAt?.toISOString() ?? null,
  workflow_ids: { allocation: `allocation/${a.id}`, lease: `lease/${a.id}`, reclaim: `reclaim/${a.id}`, host_lock: `host-lock/${a.host.id}` },
  created_by: a.createdBy,
  created_at: a.createdAt.toISOString(),
});

/** The Update's actor: who, and the permissions the API resolved (workflow validators check them). */
const actorOf = (u: Pick<Principal, 'id' | 'username' | 'roles' | 'permissions'>) => ({ id: u.id, username: u.username, roles: u.roles, permissions: [...u.permissions] });

/** Allocations: a host rented to a customer (allocation → lease → reclaim workflows). */
export function allocationRoutes(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  const tags = ['allocations'];
  const client = deps.temporal.client;

  /** An allocation within the caller's row scope (staff: by host group; owner: the company's; member: their own), else 404. */
  const load = (id: string, scope: Scope) =>
    scope.find<AllocationRow>(deps.em.fork(), AllocationSchema, { id }, 'allocation', { populate: ['host', 'customer', 'customerUser'] });
  const audit = async (user: AuthedUser, action: string, id: string, req: { ip?: string; requestId: string }, detail?: Record<string, unknown>, diff?: { before: Record<string, unknown>; after: Record<string, unknown> }) => {
    const em = deps.em.fork();
    recordAudit(em, { actor: user.username, action, targetType: 'allocation', targetId: id, ip: req.ip, requestId: req.requestId, detail, ...diff });
    await em.flush();
  };
  const meta = (req: { ip?: string; requestId: string }) => ({ ip: req.ip, requestId: req.requestId });
  const leaseState = async (id: string): Promise<LeaseState | null> => {
    try {
      return await client.workflow.getHandle(`lease/${id}`).query(leaseStateQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  };
  const leaseUpdate = async <A>(id: string, run: (h: ReturnType<typeof client.workflow.getHandle>) => Promise<A>): Promise<A> => {
    try {
      return await run(client.workflow.getHandle(`lease/${id}`));
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw conflict('this allocation has no running lease (not active yet, or already over)');
      return rethrowMapped(err, 'lease');
    }
  };

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/allocations',
    summary: 'Allocate a host to a customer for a term (one active allocation per host: a second one is 409)',
    tags,
    permission: 'allocation.create',
    body: AllocationCreate,
    response: Allocation,
    status: 201,
    handler: async ({ body, user, req, scope }) => toDto(await createAllocation(deps, { body, actor: user!.username, meta: meta(req), scope })),
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/allocations',
    summary: 'List allocations within your scope (a customer owner: the company’s; a member: their own)',
    tags,
    permission: 'allocation.read',
    query: PageQuery.extend({ status: z.enum(ALLOCATION_STATUSES).optional(), customer_id: z.string().uuid().optional(), host_id: z.string().uuid().optional() }),
    response: z.object({ items: z.array(Allocation), total: z.number(), page: z.number(), page_size: z.number(), pages: z.number() }),
    handler: async ({ query, scope }) => {
      const em = deps.em.fork();
      const where: Record<string, unknown> = {};
      if (query.status) where.status = query.status;
      if (query.host_id) where.host = query.host_id;
      if (query.customer_id) where.customer = query.customer_id;
      const { rows, total } = await readPage<AllocationRow>(em, AllocationSchema, await scope.where(em, AllocationSchema, where), {
        ...pageOffsets(query),
        orderBy: { createdAt: 'desc', id: 'asc' },
        join: { host: ['id', 'slug', 'name'], customer: ['id', 'code', 'name'], customerUser: ['id', 'username'] },
      });
      return pageResult(rows.map(toDto), total, query);
    },
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/allocations/stats',
    summary: 'Allocations by status, and lease events (reminders sent, ends, reclaims started) per day over the last 14 days',
    tags,
    permission: 'report.read',
    response: z
      .object({
        by_status: z.record(z.string(), z.number()),
        lease_events: z.array(z.object({ day: z.string(), kind: z.string(), count: z.number() })),
        days: z.number(),
      })
      .openapi('AllocationStats'),
    handler: async () => allocationStats(deps.em.fork()),
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/allocations/:id',
    summary: 'One allocation',
    tags,
    permission: 'allocation.read',
    params: IdParams,
    response: Allocation,
    handler: async ({ params, scope }) => toDto(await load(params.id, scope)),
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/allocations/:id/extend',
    summary: 'Extend the lease: remaining reminders move; sent ones are not sent again; a lease in its buffer period becomes active again',
    tags,
    permission: 'allocation.manage',
    params: IdParams,
    body: z.object({ ends_at: iso }),
    response: z.object({ phase: z.string(), ends_at: z.string(), next: z.object({ kind: z.string(), at: z.string() }).nullable() }),
    handler: async ({ params, body, user, req, scope, principal }) => {
      const before = await load(params.id, scope);
      const s = await leaseUpdate(params.id, (h) => h.executeUpdate(extendUpdate, { args: [{ endsAt: new Date(body.ends_at).toISOString(), actor: actorOf(principal!) }] }));
      await audit(user!, 'allocation.extend', params.id, req, { ends_at: s.endsAt }, { before: { ends_at: before.endsAt.toISOString() }, after: { ends_at: s.endsAt } });
      return { phase: s.phase, ends_at: s.endsAt, next: s.next };
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/allocations/:id/return',
    summary: 'Return the host early: straight to the buffer period (default) or to reclaim now',
    tags,
    permission: 'allocation.return',
    params: IdParams,
    body: z.object({ mode: z.enum(['buffer', 'reclaim']).default('buffer') }),
    response: z.object({ phase: z.string(), ends_at: z.string(), next: z.object({ kind: z.string(), at: z.string() }).nullable() }),
    handler: async ({ params, body, user, req, scope, principal }) => {
      await load(params.id, scope);
      const s = await leaseUpdate(params.id, (h) => h.executeUpdate(returnEarlyUpdate, { args: [{ mode: body.mode, actor: actorOf(principal!) }] }));
      await audit(user!, 'allocation.return', params.id, req, { mode: body.mode });
      return { phase: s.phase, ends_at: s.endsAt, next: s.next };
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/allocations/:id/terminate',
    summary: 'Terminate now (admin, with a reason): no buffer period, reclaim starts — through the lease when it runs, directly when it is gone or the allocation failed',
    tags,
    permission: 'allocation.terminate',
    stepUp: true,
    params: IdParams,
    body: z.object({ reason: z.string().min(1).max(1000) }),
    response: z.object({ phase: z.string(), ends_at: z.string() }),
    handler: async ({ params, body, req, scope, principal }) => {
      const a = await load(params.id, scope);
      const s = await terminateAllocation(deps, { allocation: a, actor: actorOf(principal!), reason: body.reason, meta: meta(req) });
      if (s) return { phase: s.phase, ends_at: s.endsAt };
      const now = await load(a.id, scope);
      return { phase: now.status, ends_at: now.endsAt.toISOString() };
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/allocations/:id/reclaim',
    summary: 'Reclaim now: ends a running lease, starts reclaim directly when the lease is gone (terminated/failed), cleans up a failed allocation, or retries a failed reclaim from its failed step',
    tags,
    permission: 'allocation.manage',
    params: IdParams,
    response: Allocation,
    handler: async ({ params, req, scope, principal }) => {
      const a = await load(params.id, scope);
      await reclaimAllocation(deps, { allocation: a, actor: actorOf(principal!), meta: meta(req) });
      return toDto(await load(a.id, scope));
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/allocations/:id/cancel',
    summary: 'Cancel an allocation that has not started yet (future starts_at): nothing ran on the host; the host lock is released',
    tags,
    permission: 'allocation.manage',
    params: IdParams,
    body: z.object({ reason: z.string().max(1000).regex(NO_CONTROL_RE, 'must not contain control characters').optional() }),
    response: Allocation,
    handler: async ({ params, body, req, scope, principal }) => {
      const a = await load(params.id, scope);
      await cancelAllocation(deps, { allocation: a, actor: actorOf(principal!), reason: body.reason, meta: meta(req) });
      return toDto(await load(a.id, scope));
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/allocations/:id/reclaim/force',
    summary: 'Skip the grace period of a running reclaim: stop the customer’s tasks now (admin)',
    tags,
    permission: 'allocation.terminate',
    stepUp: true,
    params: IdParams,
    response: z.object({ forced: z.boolean() }),
    handler: async ({ params, user, req, scope, principal }) => {
      await load(params.id, scope);
      try {
        await client.workflow.getHandle(`reclaim/${params.id}`).executeUpdate(forceUpdate, { args: [{ actor: actorOf(principal!) }] });
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw conflict('no reclaim is running for this allocation');
        rethrowMapped(err, 'reclaim');
      }
      await audit(user!, 'allocation.reclaim.force', params.id, req);
      return { forced: true };
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/allocations/:id/retry',
    summary: 'Retry from the failed step: failed provisioning resumes provisioning, a failed reclaim resumes the reclaim',
    tags,
    permission: 'allocation.manage',
    params: IdParams,
    response: Allocation,
    handler: async ({ params, req, scope, principal }) => {
      const a = await load(params.id, scope);
      await retryAllocation(deps, { allocation: a, actor: actorOf(principal!), meta: meta(req) });
      return toDto(await load(a.id, scope));
    },
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/allocations/:id/progress',
    summary: 'Steps of provisioning and reclaim, the lease phase and its next event, and lease events so far',
    tags,
    permission: 'allocation.read',
    params: IdParams,
    response: Progress,
    handler: async ({ params, scope }) => {
      const a = await load(params.id, scope);
      const em = deps.em.fork();
      const [steps, events, lease] = await Promise.all([
        em.find(AllocationStepSchema, { allocation: a.id }, { orderBy: { phase: 'asc', position: 'asc' } }),
        em.find(LeaseEventSchema, { allocation: a.id }, { orderBy: { firedAt: 'asc' } }),
        leaseState(a.id).catch(() => null),
      ]);
      let reclaimState: StepsProgress | null = null;
      // A finished reclaim still answers its query (Temporal replays the closed run): its result stays visible.
      if (a.status === 'reclaiming' || a.status === 'reclaimed' || a.status === 'reclaim-failed') {
        reclaimState = await client.workflow.getHandle(`reclaim/${a.id}`).query(reclaimProgressQuery).catch(() => null);
      }
      // The lease workflow ends when it hands over to reclaim; its last phase ("reclaiming") is not
      // the allocation's once the reclaim is over: the allocation's final status is.
      const leasePhase = lease && (a.status === 'reclaimed' || a.status === 'reclaim-failed' || a.status === 'cancelled') ? a.status : lease?.phase;
      return {
        allocation_id: a.id,
        status: a.status,
        steps: steps.map((s) => ({
          phase: s.phase,
          step: s.step,
          status: s.status,
          attempts: s.attempts,
          started_at: s.startedAt?.toISOString() ?? null,
          finished_at: s.finishedAt?.toISOString() ?? null,
          error: s.error ?? null,
          detail: s.detail ?? null,
        })),
        lease: lease ? { phase: leasePhase!, ends_at: lease.endsAt, buffer_ends_at: lease.bufferEndsAt, next: lease.next, sent: lease.sent, skipped: lease.skipped } : null,
        lease_events: events.map((e) => ({ kind: e.kind, due_at: e.dueAt.toISOString(), fired_at: e.firedAt.toISOString(), notification: e.notification ?? null })),
        reclaim: reclaimState ? { current: reclaimState.current, result: reclaimState.result } : null,
      };
    },
  });

  const PlanCommand = z.object({
    step: z.string().openapi({ description: 'The workflow step that runs it' }),
    builder: z.string().openapi({ description: 'The command builder, as the audit (remote.exec) names it' }),
    change: z.boolean().openapi({ description: 'Changes the host (read-only lookups are not audited)' }),
    command: z.string().openapi({ description: 'Exactly what will be sent (a run-time value, e.g. the uid before it is known, as a placeholder)' }),
    stdin: z.string().nullable().openapi({ description: 'Its stdin, with secrets and run-time keys as placeholders (<generated password, 20 chars>)' }),
    sha256: z.string().nullable().openapi({ description: 'SHA-256 of command (remote.exec command_sha256); null when a placeholder is in the command' }),
  });
  const AllocationPlan = z
    .object({ allocation_id: z.string(), status: z.string(), os_username: z.string(), host: z.object({ id: z.string(), slug: z.string() }), commands: z.array(PlanCommand), notes: z.array(z.string()) })
    .openapi('AllocationPlan');
  const planRoute = (path: string, summary: string, build: typeof planAllocation, steps: (vnc: boolean) => readonly string[]) =>
    defineRoute(r, registry, {
      method: 'get',
      path,
      summary,
      tags,
      permission: 'allocation.read',
      params: IdParams,
      response: AllocationPlan,
      handler: async ({ params, scope }) => {
        const a = await load(params.id, scope);
        try {
          const input = await allocationPlanInput(deps.em, a);
          const plan = await build(input, steps(Boolean(input.vnc)));
          return { ...plan, status: a.status, host: { id: a.host.id, slug: a.host.slug } };
        } catch (err) {
          // The builders refuse what the activities would refuse too: say so instead of a 500.
          if (err instanceof InvalidInputError) throw conflict(`this allocation cannot run as it stands: ${err.message}`);
          throw err;
        }
      },
    });
  planRoute('/api/v1/allocations/:id/plan', 'The commands provisioning runs on the host (clean-previous … verify-login, then deploy-vnc when the allocation asked for VNC), from the same builders; secrets and run-time keys as placeholders', planAllocation, (vnc) => (vnc ? ALLOCATION_STEPS_WITH_VNC : ALLOCATION_STEPS));
  planRoute('/api/v1/allocations/:id/reclaim-plan', 'The commands reclaim runs on the host, in its step order (stop-vnc first when the allocation has a VNC service), from the same builders; run-time values as placeholders', planReclaim, (vnc) => (vnc ? RECLAIM_STEPS_WITH_VNC : RECLAIM_STEPS));

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/allocations/:id/connection-summary',
    summary: 'How the customer connects: host or public domain and port, account, host key and key fingerprints (no secret)',
    tags,
    permission: 'session.connect',
    params: IdParams,
    response: z.record(z.string(), z.unknown()),
    handler: async ({ params, scope }) => {
      await load(params.id, scope);
      const s = await connectionSummary(deps.em.fork(), params.id);
      return s as unknown as Record<string, unknown>;
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/allocations/:id/credentials/reveal',
    summary: "Reveal the customer account's password, once (the customer user); afterwards it is gone",
    tags,
    permission: 'credential.reveal',
    stepUp: true,
    params: IdParams,
    response: z.object({ host: z.string(), address: z.string(), port: z.number(), username: z.string(), password: z.string(), revealed_at: z.string() }),
    handler: async ({ params, user, req, scope }) => {
      const a = await load(params.id, scope);
      if (a.customerUser.id !== user!.id) throw forbidden('only the customer user of this allocation can reveal its password');
      if (!a.hostAccountId || !['active', 'buffer'].includes(a.status)) throw conflict(`allocation is ${a.status}; there is no password to reveal`);
      const em = deps.em.fork();
      const taken = await em.getConnection().execute<Array<{ secret_ciphertext: string }>>(
        `with old as (select id, secret_ciphertext from host_accounts where id = ? and secret_ciphertext is not null for update)
         update host_accounts h set secret_ciphertext = null, secret_key_id = null, secret_revealed_at = now(), updated_at = now()
           from old where h.id = old.id
           returning old.secret_ciphertext`,
        [a.hostAccountId],
      );
      const ct = taken[0]?.secret_ciphertext;
      if (!ct) throw conflict('the password was already revealed; use your SSH key, or ask an admin to reset it');
      const account = await em.findOneOrFail(HostAccountSchema, { id: a.hostAccountId });
      const password = deps.vault.decrypt(ct, hostAccountSecretContext(account.id, account.secretVersion));
      await audit(user!, 'allocation.reveal', a.id, req);
      return { host: a.host.slug, address: a.host.address, port: a.host.port, username: account.username, password, revealed_at: new Date().toISOString() };
    },
  });

  return r;
}
