import { runSummary } from '../../../config/temporal.js';
import { Router } from 'express';
import { eagerStartOptions } from '../../../config/temporal.js';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import type { AppDeps } from '../../deps.js';
import { z, type OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { conflict, forbidden, validationError } from '../../errors.js';
import { pageOffsets, pageResult } from '../../pagination.js';
import { readPage } from '../../../db/read.js';
import { rethrowMapped } from '../../temporal-errors.js';
import type { AuthedUser } from '../../middleware/auth.js';
import type { Scope } from '../../authz/scope.js';
import type { Principal } from '../../authz/principal.js';
import { assertNotSelf } from '../../authz/duties.js';
import {
  AccountOpeningRequestSchema,
  HostAccountSchema,
  HostSchema,
  type AccountOpeningRequest,
} from '../../../db/entities/index.js';
import { recordAudit } from '../../../db/audit.js';
import { hostAccountSecretContext } from '../../../activities/remote/host-targets.js';
import { accountRequestIssues } from '../../../activities/remote/validation.js';
import { planAccountOpening } from '../../../activities/remote/account-plan.js';
import { InvalidInputError } from '../../../activities/remote/validation.js';
import { accountOpeningStats, assertAccountRequestAllowed, usernameIssuesOnHost } from './service.js';
import { HostIdKey, RequesterKey, LifecycleStatusKey } from '../../../workflows/shared/search-attributes.js';
import {
  approveUpdate,
  rejectUpdate,
  withdrawUpdate,
  stateQuery,
  type accountOpening,
  type AccountOpeningState,
} from '../../../workflows/account-opening.workflow.js';
import {
  AccountOpening,
  AccountOpeningCreate,
  AccountOpeningListQuery,
  AccountOpeningPlanDto,
  ApproveBody,
  BatchApproveBody,
  BatchRejectBody,
  BatchResult,
  IdParams,
  RejectBody,
  RevealResult,
  Stats,
  WaitQuery,
} from './schema.js';


export function toAccountOpeningDto(r: AccountOpeningRequest): z.input<typeof AccountOpening> {
  return {
    id: r.id,
    status: r.status,
    applicant: { id: r.applicant.id, username: r.applicant.username },
    contact_email: r.contactEmail,
    contact_phone: r.contactPhone ?? null,
    username: r.username,
    full_name: r.fullName,
    user_email: r.userEmail ?? null,
    description: r.description ?? null,
    host: { id: r.host.id, slug: r.host.slug, os: r.host.os },
    groups: r.groups,
    is_admin: r.isAdmin,
    approved_by: r.approvedBy?.id ?? null,
    decided_at: r.decidedAt?.toISOString() ?? null,
    approval_notes: r.approvalNotes ?? null,
    reject_reason: r.rejectReason ?? null,
    result_message: r.resultMessage ?? null,
    failure_type: r.failureType ?? null,
    host_account_id: r.hostAccountId ?? null,
    workflow_id: r.workflowId,
    expires_at: r.expiresAt.toISOString(),
    created_at: r.createdAt.toISOString(),
  };
}

export function accountOpeningRoutes(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  const tags = ['account-openings'];
  const expiryMs = deps.settings.accountOpeningExpiryDays * 24 * 3600 * 1000;

  /** A request within the caller's row scope (staff with scope.all: any; others: their own), else 404. */
  const load = (id: string, scope: Scope) =>
    scope.find<AccountOpeningRequest>(deps.em.fork(), AccountOpeningRequestSchema, { id }, 'account opening request', { populate: ['host', 'applicant'] });
  /** The Update's actor: who, and the permissions the API resolved (workflow validators check them). */
const actorOf = (u: Pick<Principal, 'id' | 'username' | 'roles' | 'permissions'>) => ({ id: u.id, username: u.username, roles: u.roles, permissions: [...u.permissions] });
  const audit = async (user: AuthedUser, action: string, id: string, req: { ip?: string; requestId: string }, detail?: Record<string, unknown>, result: 'success' | 'failure' = 'success', diff?: { before: Record<string, unknown>; after: Record<string, unknown> }) => {
    const em = deps.em.fork();
    recordAudit(em, { actor: user.username, action, targetType: 'account-opening', targetId: id, ip: req.ip, requestId: req.requestId, detail, result, ...diff });
    await em.flush();
  };

  const startWorkflow = async (row: AccountOpeningRequest, mode: 'decide' | 'process') => {
    await deps.temporal.client.workflow.start<typeof accountOpening>('accountOpening', {
      workflowId: row.workflowId,
      taskQueue: deps.temporal.taskQueue,
      ...eagerStartOptions(deps.temporal),
      args: [{ requestId: row.id, applicantId: row.applicant.id, mode, decisionTimeoutMs: expiryMs, hostId: row.host.id }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      typedSearchAttributes: new TypedSearchAttributes([
        { key: HostIdKey, value: row.host.id },
        { key: RequesterKey, value: row.applicant.id },
        { key: LifecycleStatusKey, value: mode === 'decide' ? 'pending' : 'provisioning' },
      ]),
      // Memo and summary are payloads (encrypted by the codec); search attributes are ids and statuses.
      ...runSummary(`Account ${row.username} on ${row.host.slug} for ${row.fullName}`, { host: row.host.slug, username: row.username }),
    });
  };

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/account-openings',
    summary: 'Submit an account opening request (waits for an approver)',
    tags,
    permission: 'account_opening.create',
    body: AccountOpeningCreate,
    response: AccountOpening,
    status: 201,
    handler: async ({ body, user, req, scope }) => {
      const em = deps.em.fork();
      // A host outside the caller's scope (another tenant's, another host group's) "does not exist".
      const host = await em.findOne(HostSchema, (await scope.where(em, HostSchema, { id: body.host_id })) as never);
      if (!host) throw validationError([{ field: 'host_id', message: 'host does not exist' }]);
      if (host.status !== 'online') throw validationError([{ field: 'host_id', message: `host ${host.slug} is ${host.status}, not online` }]);
      // The builders' own schemas: what execution would refuse is refused here.
      const errors = accountRequestIssues(host.os, body);
      if (errors.length) throw validationError(errors);
      await assertAccountRequestAllowed(deps, { requester: user!, host, isAdmin: body.is_admin, groups: body.groups });
      const taken = await usernameIssuesOnHost(deps, { host, username: body.username });
      if (taken.length) throw validationError(taken);
      const row = em.create(AccountOpeningRequestSchema, {
        applicant: user!.id,
        contactEmail: body.contact_email,
        contactPhone: body.contact_phone ?? null,
        username: body.username,
        fullName: body.full_name,
        userEmail: body.user_email ?? null,
        description: body.description ?? null,
        host,
        groups: [...new Set(body.groups)],
        isAdmin: body.is_admin,
        workflowId: '',
        expiresAt: new Date(Date.now() + expiryMs),
      });
      row.workflowId = `account-opening/${row.id}`;
      recordAudit(em, { actor: user!.username, action: 'account-opening.submit', targetType: 'account-opening', targetId: row.id, ip: req.ip, requestId: req.requestId, detail: { host: host.slug, username: body.username } });
      try {
        await em.flush();
      } catch (err) {
        if (err instanceof UniqueConstraintViolationException) {
          throw conflict(`an open request for ${body.username} on ${host.slug} already exists`);
        }
        throw err;
      }
      await em.populate(row, ['applicant']);
      try {
        await startWorkflow(row, 'decide');
      } catch (err) {
        // Nothing half-done: without its workflow the request must not exist.
        await deps.em.fork().nativeDelete(AccountOpeningRequestSchema, { id: row.id });
        rethrowMapped(err);
      }
      return toAccountOpeningDto(row);
    },
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/account-openings',
    summary: 'List account opening requests (requesters see their own)',
    tags,
    permission: 'account_opening.read',
    query: AccountOpeningListQuery,
    response: z.object({ items: z.array(AccountOpening), total: z.number(), page: z.number(), page_size: z.number(), pages: z.number() }),
    handler: async ({ query, user, scope }) => {
      const where: Record<string, unknown> = {};
      if (query.status) where.status = query.status;
      if (query.host_id) where.host = query.host_id;
      if (query.username) where.username = query.username;
      if (query.mine === 'true') where.applicant = user!.id;
      const em = deps.em.fork();
      const { rows, total } = await readPage<AccountOpeningRequest>(em, AccountOpeningRequestSchema, await scope.where(em, AccountOpeningRequestSchema, where), {
        ...pageOffsets(query),
        orderBy: { createdAt: 'desc', id: 'asc' },
        join: { host: ['id', 'slug', 'os'], applicant: ['id', 'username'], approvedBy: ['id'] },
      });
      return pageResult(rows.map(toAccountOpeningDto), total, query);
    },
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/account-openings/stats',
    summary: "Counts by status, per host, and submissions per day over the last 30 days, over the caller's row scope (tenant, host groups)",
    tags,
    permission: 'report.read',
    response: Stats,
    handler: async ({ scope }) => accountOpeningStats(deps.em.fork(), scope),
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/account-openings/:id',
    summary: 'Get a request, with the live workflow state when it is running',
    tags,
    permission: 'account_opening.read',
    params: IdParams,
    response: AccountOpening,
    handler: async ({ params, scope }) => {
      const row = await load(params.id, scope);
      let live: unknown;
      try {
        live = await deps.temporal.client.workflow.getHandle(row.workflowId).query(stateQuery);
      } catch {
        live = undefined;
      }
      return { ...toAccountOpeningDto(row), live };
    },
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/account-openings/:id/plan',
    summary: 'The commands approval will run on the host, from the same builders that run them (the password as a placeholder)',
    tags,
    permission: 'account_opening.read',
    params: IdParams,
    response: AccountOpeningPlanDto,
    handler: async ({ params, scope }) => {
      const row = await load(params.id, scope);
      // A row whose JSON default was never read back holds the text '[]' (older rows, fixtures).
      const groups: string[] = typeof row.groups === 'string' ? (JSON.parse(row.groups) as string[]) : (row.groups ?? []);
      let plan: Awaited<ReturnType<typeof planAccountOpening>>;
      try {
        plan = await planAccountOpening(row.host, { id: row.id, username: row.username, fullName: row.fullName, description: row.description, groups, isAdmin: row.isAdmin });
      } catch (err) {
        // The builders refuse what the workflow would refuse too: say so instead of a 500.
        if (err instanceof InvalidInputError) throw conflict(`this request cannot run as it stands: ${err.message}`);
        throw err;
      }
      return { request_id: row.id, status: row.status, ...plan, host: { ...plan.host, slug: row.host.slug } };
    },
  });

  const decide = async (id: string, user: Principal, scope: Scope, kind: 'approve' | 'reject' | 'withdraw', payload: { notes?: string; reason?: string }, req: { ip?: string; requestId: string }) => {
    const row = await load(id, scope);
    if (kind !== 'withdraw') assertNotSelf(user, row.applicant.id, 'account opening request');
    else if (row.applicant.id !== user.id) throw forbidden('only the applicant can withdraw a request');
    // The mirror says it is decided already: answer without asking the workflow (it would refuse too).
    if (row.status !== 'pending') throw conflict(`request is ${row.status}, not pending`);
    const handle = deps.temporal.client.workflow.getHandle(row.workflowId);
    let decided: AccountOpeningState;
    try {
      if (kind === 'approve') decided = await handle.executeUpdate(approveUpdate, { args: [{ actor: actorOf(user), notes: payload.notes }] });
      else if (kind === 'reject') decided = await handle.executeUpdate(rejectUpdate, { args: [{ actor: actorOf(user), reason: payload.reason! }] });
      else decided = await handle.executeUpdate(withdrawUpdate, { args: [{ actor: actorOf(user) }] });
    } catch (err) {
      await audit(user, `account-opening.${kind}`, id, req, { error: (err as Error).message }, 'failure');
      rethrowMapped(err);
    }
    const status = kind === 'approve' ? 'approved' : kind === 'reject' ? 'rejected' : 'withdrawn';
    await audit(user, `account-opening.${kind}`, id, req, kind === 'reject' ? { reason: payload.reason } : payload.notes ? { notes: payload.notes } : undefined, 'success', { before: { status: row.status }, after: { status } });
    // The decision as the workflow recorded it (its Update result), not the row read before it:
    // the DB mirror is written a moment later by an activity.
    return {
      ...toAccountOpeningDto(row),
      status,
      approved_by: decided.decidedBy ?? null,
      decided_at: decided.decidedAt ?? null,
      ...(kind === 'approve' ? { approval_notes: payload.notes?.trim() || null } : {}),
      ...(kind === 'reject' ? { reject_reason: payload.reason!.trim() } : {}),
    } as z.input<typeof AccountOpening>;
  };

  // Batch routes first: `/batch/...` must not be taken for `/:id/...`.
  const batch = async (ids: string[], user: Principal, scope: Scope, kind: 'approve' | 'reject', payload: { notes?: string; reason?: string }, req: { ip?: string; requestId: string }) => {
    const results = [];
    for (const id of [...new Set(ids)]) {
      try {
        const dto = await decide(id, user, scope, kind, payload, req);
        results.push({ id, ok: true, code: 0, message: 'ok', status: dto.status });
      } catch (err) {
        const e = err as { code?: number; message?: string };
        results.push({ id, ok: false, code: typeof e.code === 'number' && e.code >= 40000 ? e.code : 50001, message: e.code && e.code >= 40000 ? (e.message ?? 'error') : 'internal error' });
      }
    }
    return { results, succeeded: results.filter((x) => x.ok).length, failed: results.filter((x) => !x.ok).length };
  };
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/account-openings/batch/approve',
    summary: 'Approve many requests; per-item results',
    tags,
    permission: 'account_opening.approve',
    body: BatchApproveBody,
    response: BatchResult,
    handler: ({ body, principal, req, scope }) => batch(body.ids, principal!, scope, 'approve', body, req),
  });
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/account-openings/batch/reject',
    summary: 'Reject many requests with one reason; per-item results',
    tags,
    permission: 'account_opening.approve',
    body: BatchRejectBody,
    response: BatchResult,
    handler: ({ body, principal, req, scope }) => batch(body.ids, principal!, scope, 'reject', body, req),
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/account-openings/:id/approve',
    summary: 'Approve a pending request (approver, not the applicant); provisioning starts',
    tags,
    permission: 'account_opening.approve',
    params: IdParams,
    body: ApproveBody,
    response: AccountOpening,
    query: WaitQuery,
    handler: async ({ params, body, query, principal, req, scope }) => {
      const decided = await decide(params.id, principal!, scope, 'approve', body, req);
      if (query.wait !== 'true') return decided;
      // ?wait=true: the outcome, not just the decision (bounded; on timeout the answer says `provisioning`).
      const handle = deps.temporal.client.workflow.getHandle(decided.workflow_id);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([handle.result().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, query.wait_seconds * 1000)))]);
      clearTimeout(timer);
      const row = await deps.em.fork().findOneOrFail(AccountOpeningRequestSchema, { id: params.id }, { populate: ['host', 'applicant'] });
      return toAccountOpeningDto(row);
    },
  });
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/account-openings/:id/reject',
    summary: 'Reject a pending request with a reason',
    tags,
    permission: 'account_opening.approve',
    params: IdParams,
    body: RejectBody,
    response: AccountOpening,
    handler: ({ params, body, principal, req, scope }) => decide(params.id, principal!, scope, 'reject', body, req),
  });
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/account-openings/:id/withdraw',
    summary: 'The applicant withdraws a pending request',
    tags,
    permission: 'account_opening.create',
    params: IdParams,
    response: AccountOpening,
    handler: ({ params, principal, req, scope }) => decide(params.id, principal!, scope, 'withdraw', {}, req),
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/account-openings/:id/process',
    summary: 'Re-run provisioning of a failed request (idempotent: same account, no second password)',
    tags,
    permission: 'account_opening.manage',
    params: IdParams,
    response: AccountOpening,
    status: 202,
    handler: async ({ params, user, req, scope }) => {
      const row = await load(params.id, scope);
      if (row.status !== 'failed') throw conflict(`request is ${row.status}; only failed requests can be re-processed`);
      try {
        await startWorkflow(row, 'process');
      } catch (err) {
        rethrowMapped(err);
      }
      // Mirror at once (the workflow sets it too) so a reader never sees the stale `failed`.
      await deps.em.fork().nativeUpdate(AccountOpeningRequestSchema, { id: row.id, status: 'failed' }, { status: 'provisioning' });
      await audit(user!, 'account-opening.process', row.id, req);
      return { ...toAccountOpeningDto(row), status: 'provisioning' as const };
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/account-openings/:id/credentials/reveal',
    summary: 'Reveal the new account password, once; afterwards it is gone (an admin can reset it)',
    tags,
    permission: 'credential.reveal',
    stepUp: true,
    params: IdParams,
    response: RevealResult,
    handler: async ({ params, user, req, scope }) => {
      const row = await load(params.id, scope);
      if (row.applicant.id !== user!.id) throw forbidden('only the applicant can reveal the password');
      if (row.status !== 'done' || !row.hostAccountId) throw conflict(`request is ${row.status}; there is no password to reveal`);
      const em = deps.em.fork();
      // Atomically take the secret: a concurrent second reveal finds nothing.
      const taken = await em.getConnection().execute<Array<{ secret_ciphertext: string }>>(
        `with old as (select id, secret_ciphertext from host_accounts where id = ? and secret_ciphertext is not null for update)
         update host_accounts h set secret_ciphertext = null, secret_key_id = null, secret_revealed_at = now(), updated_at = now()
           from old where h.id = old.id
           returning old.secret_ciphertext`,
        [row.hostAccountId],
      );
      const ct = taken[0]?.secret_ciphertext;
      if (!ct) {
        await audit(user!, 'account-opening.reveal', row.id, req, { reason: 'already revealed' }, 'failure');
        throw conflict('the password was already revealed; ask an admin to reset it');
      }
      const account = await em.findOneOrFail(HostAccountSchema, { id: row.hostAccountId });
      const password = deps.vault.decrypt(ct, hostAccountSecretContext(account.id, account.secretVersion));
      await audit(user!, 'account-opening.reveal', row.id, req);
      return { host: row.host.slug, address: row.host.address, port: row.host.port, username: account.username, password, revealed_at: new Date().toISOString() };
    },
  });

  return r;
}
