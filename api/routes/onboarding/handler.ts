import { runSummary } from '../../../config/temporal.js';
import { Router } from 'express';
import { eagerStartOptions } from '../../../config/temporal.js';
import { randomUUID } from 'node:crypto';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import type { AppDeps } from '../../deps.js';
import { z, type OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { conflict, validationError } from '../../errors.js';
import { rethrowMapped } from '../../temporal-errors.js';
import { HostSchema, OnboardingStepSchema, RemoteAccessSchema, ONBOARDING_STEPS, STEP_STATUSES, type Host } from '../../../db/entities/index.js';
import { recordAudit } from '../../../db/audit.js';
import { allocatedHostIds } from '../allocations/service.js';
import { HostIdKey, HostStatusKey } from '../../../workflows/shared/search-attributes.js';
import { confirmFactsUpdate, progressQuery, type OnboardingInput, type hostOnboarding } from '../../../workflows/host-onboarding.workflow.js';
import type { hostOnboardingBatch } from '../../../workflows/host-onboarding-batch.workflow.js';
import { batchView } from './service.js';
import { nginxSnippet } from '../../../activities/remote/remote-access.js';

const RemoteAccessSpec = z
  .object({
    enabled: z.boolean().default(true),
    domain: z.string().regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/, 'must be a DNS name').optional(),
    protocols: z.array(z.enum(['ssh', 'vnc', 'rdp'])).max(3).optional(),
    extra_ports: z.array(z.number().int().min(1).max(65535)).max(20).default([]),
    public_ports: z.record(z.string().regex(/^\d+$/), z.number().int().min(1).max(65535)).optional(),
  })
  .openapi('RemoteAccessSpec');

const OnboardBody = z.object({ remote_access: RemoteAccessSpec.optional() }).openapi('OnboardBody');
const BatchBody = z
  .object({ host_ids: z.array(z.string().uuid()).min(1).max(1000), concurrency: z.number().int().min(1).max(50).default(10), remote_access: RemoteAccessSpec.optional() })
  .openapi('OnboardBatchBody');
const IdParams = z.object({ id: z.string().uuid('must be a host id (uuid)') });
const BatchParams = z.object({ batchId: z.string().uuid() });
const Step = z.object({ step: z.enum(ONBOARDING_STEPS), status: z.enum(STEP_STATUSES), attempts: z.number(), started_at: z.string().nullable(), finished_at: z.string().nullable(), error: z.string().nullable(), detail: z.unknown().nullable() });
const Onboarding = z.object({ host_id: z.string(), host_status: z.string(), workflow_id: z.string(), steps: z.array(Step), live: z.unknown().optional() }).openapi('Onboarding');
const Started = z.object({ workflow_id: z.string(), from_step: z.string().nullable() });
const BatchHost = z.object({
  id: z.string(),
  slug: z.string(),
  name: z.string(),
  host_status: z.string(),
  state: z.enum(['queued', 'running', 'online', 'failed']).openapi({ description: 'queued: not started by the batch yet (it starts hosts in order, `concurrency` at a time)' }),
  current_step: z.string().nullable(),
  steps: z.array(z.object({ step: z.string(), status: z.string(), attempts: z.number(), started_at: z.string().nullable(), finished_at: z.string().nullable(), error: z.string().nullable() })),
  done_steps: z.number(),
  total_steps: z.number(),
  error: z.string().nullable(),
});
const BatchView = z
  .object({
    total: z.number(),
    running: z.number(),
    pending: z.number(),
    online: z.array(z.string()),
    failed: z.array(z.object({ hostId: z.string(), step: z.string().optional(), error: z.string().optional() })),
    done: z.boolean(),
    hosts: z.array(BatchHost).openapi({ description: "Each host of the batch in the batch's order, with its onboarding steps (live: read from the step rows the workflow writes)" }),
  })
  .openapi('OnboardingBatch');
const RemoteAccessView = z.object({
  entries: z.array(z.object({ protocol: z.string(), public_domain: z.string(), public_port: z.number(), target_port: z.number(), enabled: z.boolean() })),
  nginx: z.object({ stream: z.string(), http: z.string() }),
});

type Spec = z.infer<typeof RemoteAccessSpec>;
const toSpec = (s?: Spec) => (s ? { enabled: s.enabled, domain: s.domain, protocols: s.protocols, extraPorts: s.extra_ports, publicPorts: s.public_ports } : null);

/** Host onboarding: start one or many, watch the steps, confirm facts, retry from the failed step. */
export function onboardingRoutes(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  /**
   * Onboarding re-applies the environment template and rewrites remote access: never under a
   * tenant. A host held by an allocation (an `offline` rented host included) is refused.
   */
  const refuseAllocated = async (hosts: Array<{ id: string; slug: string }>) => {
    const held = await allocatedHostIds(deps.em, hosts.map((h) => h.id));
    const rented = hosts.filter((h) => held.has(h.id));
    if (rented.length) throw conflict(`host_id: ${rented.map((h) => h.slug).join(', ')} ${rented.length > 1 ? 'are' : 'is'} allocated to a customer; reclaim the allocation before onboarding again`);
  };
  const tags = ['onboarding'];
  const start = async (host: Host, input: OnboardingInput) => {
    const workflowId = `host-onboarding/${host.id}`;
    try {
      await deps.temporal.client.workflow.start<typeof hostOnboarding>('hostOnboarding', {
        workflowId,
        taskQueue: deps.temporal.taskQueue,
        ...eagerStartOptions(deps.temporal),
        args: [input],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
        typedSearchAttributes: new TypedSearchAttributes([
          { key: HostIdKey, value: host.id },
          { key: HostStatusKey, value: 'onboarding' },
        ]),
        ...runSummary(`Onboard host ${host.slug}`, { slug: host.slug }),
      });
    } catch (err) {
      rethrowMapped(err, `onboarding of ${host.slug}`);
    }
    return workflowId;
  };

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/hosts/onboard',
    summary: 'Onboard many hosts: a parent workflow runs one child per host, `concurrency` at a time',
    tags,
    permission: 'host.write',
    body: BatchBody,
    response: z.object({ batch_id: z.string(), workflow_id: z.string(), hosts: z.number() }),
    status: 202,
    handler: async ({ body, user, req, scope }) => {
      const em = deps.em.fork();
      const ids = [...new Set(body.host_ids)];
      const hosts = await em.find(HostSchema, (await scope.where(em, HostSchema, { id: { $in: ids } })) as never);
      const missing = ids.filter((id) => !hosts.some((h) => h.id === id));
      if (missing.length) throw validationError(missing.map((id) => ({ field: `host_ids.${body.host_ids.indexOf(id)}`, message: 'host does not exist' })));
      const wrong = hosts.filter((h) => !['pending', 'failed', 'offline'].includes(h.status));
      if (wrong.length) throw conflict(`hosts not in pending/failed/offline: ${wrong.map((h) => `${h.slug} (${h.status})`).join(', ')}`);
      await refuseAllocated(hosts);
      const batchId = randomUUID();
      const workflowId = `host-onboarding-batch/${batchId}`;
      await deps.temporal.client.workflow.start<typeof hostOnboardingBatch>('hostOnboardingBatch', {
        workflowId,
        taskQueue: deps.temporal.taskQueue,
        ...eagerStartOptions(deps.temporal),
        args: [{ concurrency: body.concurrency, hosts: hosts.map((h) => ({ hostId: h.id, slug: h.slug, templateId: h.templateId ?? null, remoteAccess: toSpec(body.remote_access) })) }],
        ...runSummary(`Onboard ${hosts.length} hosts: ${hosts.slice(0, 5).map((h) => h.slug).join(', ')}${hosts.length > 5 ? ', …' : ''}`),
      });
      recordAudit(em, { actor: user!.username, action: 'host.onboard-batch', targetType: 'batch', targetId: batchId, ip: req.ip, requestId: req.requestId, detail: { hosts: ids.length } });
      await em.flush();
      return { batch_id: batchId, workflow_id: workflowId, hosts: hosts.length };
    },
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/hosts/onboard/:batchId',
    summary: 'Per-host progress of a batch onboarding (404 unless every host of the batch is in your row scope)',
    tags,
    permission: 'onboarding.read',
    params: BatchParams,
    response: BatchView,
    handler: ({ params, scope }) => batchView({ em: deps.em, client: deps.temporal.client }, scope, params.batchId),
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/hosts/:id/onboarding',
    summary: 'Start onboarding one host',
    tags,
    permission: 'host.write',
    params: IdParams,
    body: OnboardBody,
    response: Started,
    status: 202,
    handler: async ({ params, body, user, req, scope }) => {
      const em = deps.em.fork();
      const host = await scope.find(em, HostSchema, { id: params.id }, 'host');
      if (!['pending', 'offline'].includes(host.status)) throw conflict(`host is ${host.status}; onboarding starts from pending or offline (use /onboarding/retry after a failure)`);
      await refuseAllocated([host]);
      await em.nativeDelete(OnboardingStepSchema, { host: host.id });
      const workflowId = await start(host, { hostId: host.id, templateId: host.templateId ?? null, remoteAccess: toSpec(body.remote_access) });
      recordAudit(em, { actor: user!.username, action: 'host.onboard', targetType: 'host', targetId: host.id, ip: req.ip, requestId: req.requestId });
      await em.flush();
      return { workflow_id: workflowId, from_step: null };
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/hosts/:id/onboarding/retry',
    summary: 'Resume a failed onboarding from the step that failed (earlier steps are not run again)',
    tags,
    permission: 'host.write',
    params: IdParams,
    body: OnboardBody,
    response: Started,
    status: 202,
    handler: async ({ params, body, user, req, scope }) => {
      const em = deps.em.fork();
      const host = await scope.find(em, HostSchema, { id: params.id }, 'host');
      const failed = await em.findOne(OnboardingStepSchema, { host: host.id, status: 'failed' });
      if (host.status !== 'failed' || !failed) throw conflict(`host is ${host.status}; only a failed onboarding can be retried`);
      await refuseAllocated([host]);
      const previous = await em.find(RemoteAccessSchema, { host: host.id });
      const spec = body.remote_access
        ? toSpec(body.remote_access)
        : previous.length
          ? { enabled: true, protocols: previous.filter((p) => ['ssh', 'vnc', 'rdp'].includes(p.protocol)).map((p) => p.protocol as 'ssh'), extraPorts: previous.filter((p) => !['ssh', 'vnc', 'rdp'].includes(p.protocol)).map((p) => p.targetPort) }
          : null;
      const workflowId = await start(host, { hostId: host.id, fromStep: failed.step, templateId: host.templateId ?? null, remoteAccess: spec });
      recordAudit(em, { actor: user!.username, action: 'host.onboard-retry', targetType: 'host', targetId: host.id, ip: req.ip, requestId: req.requestId, detail: { fromStep: failed.step } });
      await em.flush();
      return { workflow_id: workflowId, from_step: failed.step };
    },
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/hosts/:id/onboarding',
    summary: 'Onboarding steps with status, timestamps and errors (plus the live workflow state while it runs)',
    tags,
    permission: 'onboarding.read',
    params: IdParams,
    response: Onboarding,
    handler: async ({ params, scope }) => {
      const em = deps.em.fork();
      const host = await scope.find(em, HostSchema, { id: params.id }, 'host');
      const rows = await em.find(OnboardingStepSchema, { host: host.id });
      const order = (s: string) => ONBOARDING_STEPS.indexOf(s as never);
      rows.sort((a, b) => order(a.step) - order(b.step));
      const workflowId = `host-onboarding/${host.id}`;
      let live: unknown;
      try {
        live = await deps.temporal.client.workflow.getHandle(workflowId).query(progressQuery);
      } catch {
        live = undefined;
      }
      return {
        host_id: host.id,
        host_status: host.status,
        workflow_id: workflowId,
        live,
        steps: rows.map((s) => ({ step: s.step, status: s.status, attempts: s.attempts, started_at: s.startedAt?.toISOString() ?? null, finished_at: s.finishedAt?.toISOString() ?? null, error: s.error ?? null, detail: s.detail ?? null })),
      };
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/hosts/:id/onboarding/confirm-facts',
    summary: 'Accept or reject collected facts that differ from the expected GPU model/count',
    tags,
    permission: 'host.write',
    params: IdParams,
    body: z.object({ accept: z.boolean(), note: z.string().max(500).optional() }),
    response: z.object({ accepted: z.boolean() }),
    handler: async ({ params, body, user, req, scope }) => {
      await scope.find(deps.em.fork(), HostSchema, { id: params.id }, 'host', { fields: ['id'] });
      try {
        await deps.temporal.client.workflow.getHandle(`host-onboarding/${params.id}`).executeUpdate(confirmFactsUpdate, { args: [{ accept: body.accept, actor: user!.username, note: body.note }] });
      } catch (err) {
        rethrowMapped(err, 'onboarding');
      }
      const em = deps.em.fork();
      recordAudit(em, { actor: user!.username, action: 'host.confirm-facts', targetType: 'host', targetId: params.id, ip: req.ip, requestId: req.requestId, detail: { accept: body.accept } });
      await em.flush();
      return { accepted: body.accept };
    },
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/hosts/:id/remote-access',
    summary: 'Remote-access entries of a host and the generated nginx snippet',
    tags,
    permission: 'remote_access.read',
    params: IdParams,
    response: RemoteAccessView,
    handler: async ({ params, scope }) => {
      const em = deps.em.fork();
      const host = await scope.find(em, HostSchema, { id: params.id }, 'host');
      const rows = await em.find(RemoteAccessSchema, { host: host.id }, { orderBy: { publicPort: 'asc' } });
      return {
        entries: rows.map((e) => ({ protocol: e.protocol, public_domain: e.publicDomain, public_port: e.publicPort, target_port: e.targetPort, enabled: e.enabled })),
        nginx: nginxSnippet(host, rows.filter((e) => e.enabled)),
      };
    },
  });
  return r;
}
