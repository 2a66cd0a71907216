import { Router } from 'express';
import { eagerStartOptions, runSummary } from '../../../config/temporal.js';
import { WorkflowFailedError, WorkflowIdConflictPolicy } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import type { AppDeps } from '../../deps.js';
import { z, type OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { ApiError, conflict } from '../../errors.js';
import { PageQuery, pageOffsets, pageResult } from '../../pagination.js';
import { rethrowMapped } from '../../temporal-errors.js';
import type { AuthedUser } from '../../middleware/auth.js';
import type { Scope } from '../../authz/scope.js';
import { pii } from '../../authz/mask.js';
import { HostAccountSchema, HOST_ACCOUNT_STATUSES, type HostAccount } from '../../../db/entities/index.js';
import { recordAudit } from '../../../db/audit.js';
import { HostIdKey } from '../../../workflows/shared/search-attributes.js';
import type { HostAccountOp, hostAccountOperation } from '../../../workflows/host-account.workflow.js';

const CloudUser = z
  .object({
    id: z.string().uuid(),
    host: z.object({ id: z.string(), slug: z.string(), os: z.string() }),
    username: z.string(),
    full_name: z.string().nullable(),
    email: pii(z.string().nullable(), 'email'),
    description: z.string().nullable(),
    origin: z.enum(['platform-created', 'pre-existing']),
    status: z.enum(HOST_ACCOUNT_STATUSES),
    groups: z.array(z.string()),
    is_admin: z.boolean(),
    password_available: z.boolean().openapi({ description: 'A password is stored and not yet revealed' }),
    created_from_request_id: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi('CloudUser');

const ListQuery = PageQuery.extend({
  host_id: z.string().uuid().optional(),
  status: z.enum(HOST_ACCOUNT_STATUSES).optional(),
  username: z.string().max(64).optional(),
});
const IdParams = z.object({ id: z.string().uuid('must be a cloud user id (uuid)') });
const OpResult = z.object({ id: z.string(), op: z.string(), status: z.string(), workflow_id: z.string() });
const BatchBody = z.object({ ids: z.array(z.string().uuid()).min(1).max(100) });
const BatchResult = z.object({
  results: z.array(z.object({ id: z.string(), ok: z.boolean(), code: z.number(), message: z.string(), status: z.string().optional() })),
  succeeded: z.number(),
  failed: z.number(),
});

function toDto(a: HostAccount): z.input<typeof CloudUser> {
  return {
    id: a.id,
    host: { id: a.host.id, slug: a.host.slug, os: a.host.os },
    username: a.username,
    full_name: a.fullName ?? null,
    email: a.email ?? null,
    description: a.description ?? null,
    origin: a.origin,
    status: a.status,
    groups: a.groups,
    is_admin: a.isAdmin,
    password_available: Boolean(a.secretCiphertext),
    created_from_request_id: a.createdFromRequestId ?? null,
    created_at: a.createdAt.toISOString(),
  };
}

/** Managed OS accounts (seed: CloudComputerUser): list, and one workflow per change. */
export function cloudUserRoutes(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  const tags = ['cloud-users'];

  const runOp = async (id: string, op: HostAccountOp, user: AuthedUser, scope: Scope, req: { ip?: string; requestId: string }) => {
    const em = deps.em.fork();
    const account = await scope.find(em, HostAccountSchema, { id }, 'cloud user', { populate: ['host'] });
    if (account.origin !== 'platform-created') throw conflict(`${account.username} was not created by the platform; it is not managed here`);
    if (account.status === 'deleted') throw conflict(`${account.username} is deleted`);
    if (account.status === 'provisioning') throw conflict(`${account.username} is still being provisioned`);
    const workflowId = `host-account/${id}/${op}/${new Date().toISOString().replace(/[-:.]/g, '')}`;
    let status: string;
    try {
      const result = await deps.temporal.client.workflow.execute<typeof hostAccountOperation>('hostAccountOperation', {
        workflowId,
        taskQueue: deps.temporal.taskQueue,
        ...eagerStartOptions(deps.temporal),
        args: [{ accountId: id, op }],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
        typedSearchAttributes: new TypedSearchAttributes([{ key: HostIdKey, value: account.host.id }]),
        workflowExecutionTimeout: '10 minutes',
        ...runSummary(`${op} account ${account.username} on ${account.host.slug}`, { host: account.host.slug, username: account.username }),
      });
      status = result.status;
    } catch (err) {
      recordAudit(em, { actor: user.username, action: `cloud-user.${op}`, targetType: 'cloud-user', targetId: id, ip: req.ip, requestId: req.requestId, result: 'failure', detail: { workflowId } });
      await em.flush();
      if (err instanceof WorkflowFailedError) {
        const cause = (err.cause as { cause?: { type?: string; message?: string } } | undefined)?.cause;
        throw new ApiError(409, 40901, `${op} failed: ${cause?.message ?? err.message}`, undefined, { workflow_id: workflowId, error_type: cause?.type ?? null });
      }
      rethrowMapped(err);
    }
    recordAudit(em, { actor: user.username, action: `cloud-user.${op}`, targetType: 'cloud-user', targetId: id, ip: req.ip, requestId: req.requestId, detail: { workflowId } });
    await em.flush();
    return { id, op, status, workflow_id: workflowId };
  };

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/cloud-users',
    summary: 'List managed OS accounts',
    tags,
    permission: 'cloud_user.read',
    query: ListQuery,
    response: z.object({ items: z.array(CloudUser), total: z.number(), page: z.number(), page_size: z.number(), pages: z.number() }),
    handler: async ({ query, scope }) => {
      const where: Record<string, unknown> = {};
      if (query.host_id) where.host = query.host_id;
      if (query.status) where.status = query.status;
      if (query.username) where.username = query.username;
      const em = deps.em.fork();
      const [rows, total] = await em.findAndCount(HostAccountSchema, (await scope.where(em, HostAccountSchema, where)) as never, { ...pageOffsets(query), orderBy: { createdAt: 'desc', id: 'asc' }, populate: ['host'] });
      return pageResult(rows.map(toDto), total, query);
    },
  });

  // Batch routes first: `/batch/...` must not be taken for `/:id/...`.
  for (const op of ['disable', 'enable', 'delete'] as const) {
    defineRoute(r, registry, {
      method: 'post',
      path: `/api/v1/cloud-users/batch/${op}`,
      summary: `${op} many accounts; per-item results`,
      tags,
      permission: 'cloud_user.manage',
      body: BatchBody,
      response: BatchResult,
      handler: async ({ body, user, req, scope }) => {
        const results = await Promise.all(
          [...new Set(body.ids)].map(async (id) => {
            try {
              const res = await runOp(id, op, user!, scope, req);
              return { id, ok: true, code: 0, message: 'ok', status: res.status };
            } catch (err) {
              const e = err as { code?: number; message?: string };
              const known = typeof e.code === 'number' && e.code >= 40000;
              return { id, ok: false, code: known ? e.code! : 50001, message: known ? (e.message ?? 'error') : 'internal error' };
            }
          }),
        );
        return { results, succeeded: results.filter((x) => x.ok).length, failed: results.filter((x) => !x.ok).length };
      },
    });
  }
  const ops: Array<[HostAccountOp, 'post' | 'delete', string, string]> = [
    ['disable', 'post', '/api/v1/cloud-users/:id/disable', 'Disable the account on its host'],
    ['enable', 'post', '/api/v1/cloud-users/:id/enable', 'Enable the account on its host'],
    ['reset-password', 'post', '/api/v1/cloud-users/:id/reset-password', 'Set a new random password; the owner can reveal it once'],
    ['delete', 'delete', '/api/v1/cloud-users/:id', 'Delete the account from its host (only accounts the platform created)'],
  ];
  for (const [op, method, path, summary] of ops) {
    defineRoute(r, registry, {
      method,
      path,
      summary,
      tags,
      permission: 'cloud_user.manage',
      params: IdParams,
      response: OpResult,
      handler: ({ params, user, req, scope }) => runOp(params.id, op, user!, scope, req),
    });
  }
  return r;
}
