import { Router } from 'express';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { WorkflowFailedError } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import type { AppDeps } from '../../deps.js';
import type { OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { conflict, notFound } from '../../errors.js';
import { pageOffsets, pageResult } from '../../pagination.js';
import { HostSchema, HostCredentialSchema, type Host as HostRow } from '../../../db/entities/index.js';
import { recordAudit } from '../../../db/audit.js';
import { credentialContext } from '../../../activities/remote/host-targets.js';
import { HostIdKey } from '../../../workflows/shared/search-attributes.js';
import type { hostPing } from '../../../workflows/host-ping.workflow.js';
import { Host, HostCreate, HostIdParams, HostListQuery, HostStatusChange, PingResult } from './schema.js';
import { assertTransition, HostTransitionError } from '../../../db/host-status.js';
import { z } from '../../openapi.js';

export function toHostDto(h: HostRow, hasCredentials: boolean): z.input<typeof Host> {
  return {
    id: h.id,
    slug: h.slug,
    name: h.name,
    address: h.address,
    port: h.port,
    os: h.os,
    username: h.username,
    site: h.site ?? null,
    group: h.group ?? null,
    tags: h.tags,
    status: h.status,
    host_key_fingerprint: h.hostKeyFingerprint ?? null,
    has_credentials: hasCredentials,
    last_seen_at: h.lastSeenAt?.toISOString() ?? null,
    created_at: h.createdAt.toISOString(),
  };
}

export const slugify = (name: string) =>
  name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '') || 'host';

export function hostRoutes(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const r = Router();

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/hosts',
    summary: 'Register a host (credentials are write-only and stored encrypted)',
    tags: ['hosts'],
    auth: ['admin', 'operator'],
    body: HostCreate,
    response: Host,
    status: 201,
    handler: async ({ body, user, req }) => {
      const em = deps.em.fork();
      const host = em.create(HostSchema, {
        slug: body.slug ?? slugify(body.name),
        name: body.name,
        address: body.address,
        port: body.port,
        os: body.os,
        username: body.username,
        site: body.site ?? null,
        group: body.group ?? null,
        tags: body.tags,
        winrmPort: body.winrm_port ?? null,
        winrmHttps: body.winrm_https,
      });
      const secrets: Array<[kind: 'password' | 'private-key' | 'winrm-password', value: string | undefined]> = [
        [body.os === 'windows' ? 'winrm-password' : 'password', body.password],
        ['private-key', body.private_key],
      ];
      for (const [kind, value] of secrets) {
        if (!value) continue;
        const { ciphertext, keyId } = deps.vault.encrypt(value, credentialContext(host.id, kind));
        em.create(HostCredentialSchema, { host, kind, ciphertext, keyId });
      }
      recordAudit(em, { actor: user!.username, action: 'host.create', targetType: 'host', targetId: host.id, ip: req.ip, requestId: req.requestId, detail: { slug: host.slug, address: host.address } });
      try {
        await em.flush();
      } catch (err) {
        if (err instanceof UniqueConstraintViolationException) throw conflict(`a host with slug "${host.slug}" already exists`);
        throw err;
      }
      return toHostDto(host, true);
    },
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/hosts',
    summary: 'List hosts',
    tags: ['hosts'],
    auth: 'any',
    query: HostListQuery,
    response: z.object({ items: z.array(Host), total: z.number(), page: z.number(), page_size: z.number(), pages: z.number() }),
    handler: async ({ query }) => {
      const em = deps.em.fork();
      const where: Record<string, unknown> = {};
      if (query.status) where.status = query.status;
      if (query.group) where.group = query.group;
      if (query.tag) where.tags = { $contains: [query.tag] };
      if (query.q) {
        const like = `%${query.q.replace(/[%_\\]/g, '\\$&')}%`;
        where.$or = [{ name: { $ilike: like } }, { slug: { $ilike: like } }, { address: { $ilike: like } }];
      }
      const [rows, total] = await em.findAndCount(HostSchema, where, { ...pageOffsets(query), orderBy: { createdAt: 'desc', id: 'asc' } });
      const withCreds = new Set(
        rows.length
          ? (await em.find(HostCredentialSchema, { host: { $in: rows.map((h) => h.id) } }, { fields: ['host'] })).map((c) => c.host.id)
          : [],
      );
      return pageResult(rows.map((h) => toHostDto(h, withCreds.has(h.id))), total, query);
    },
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/hosts/:id',
    summary: 'Get a host',
    tags: ['hosts'],
    auth: 'any',
    params: HostIdParams,
    response: Host,
    handler: async ({ params }) => {
      const em = deps.em.fork();
      const host = await em.findOne(HostSchema, { id: params.id });
      if (!host) throw notFound('host');
      const creds = await em.count(HostCredentialSchema, { host: host.id });
      return toHostDto(host, creds > 0);
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/hosts/:id/status',
    summary: 'Change a host status by hand (transitions are validated; onboarding does this automatically)',
    tags: ['hosts'],
    auth: ['admin', 'operator'],
    params: HostIdParams,
    body: HostStatusChange,
    response: Host,
    handler: async ({ params, body, user, req }) => {
      const em = deps.em.fork();
      const host = await em.findOne(HostSchema, { id: params.id });
      if (!host) throw notFound('host');
      const from = host.status;
      try {
        assertTransition(from, body.status);
      } catch (err) {
        if (err instanceof HostTransitionError) throw conflict(err.message);
        throw err;
      }
      host.status = body.status;
      recordAudit(em, { actor: user!.username, action: 'host.status', targetType: 'host', targetId: host.id, ip: req.ip, requestId: req.requestId, detail: { from, to: body.status, reason: body.reason ?? null } });
      await em.flush();
      const creds = await em.count(HostCredentialSchema, { host: host.id });
      return toHostDto(host, creds > 0);
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/hosts/:id/ping',
    summary: 'Run the host-ping workflow (SSH login + `true`) and wait for its result',
    tags: ['hosts'],
    auth: ['admin', 'operator'],
    params: HostIdParams,
    response: PingResult,
    handler: async ({ params }) => {
      const host = await deps.em.fork().findOne(HostSchema, { id: params.id }, { fields: ['id', 'slug'] });
      if (!host) throw notFound('host');
      const workflowId = `host-ping/${host.id}/${new Date().toISOString().replace(/[-:.]/g, '')}`;
      const handle = await deps.temporal.client.workflow.start<typeof hostPing>('hostPing', {
        workflowId,
        taskQueue: deps.temporal.taskQueue,
        args: [{ hostId: host.id }],
        typedSearchAttributes: new TypedSearchAttributes([{ key: HostIdKey, value: host.id }]),
        workflowExecutionTimeout: '2 minutes',
      });
      try {
        const result = await handle.result();
        return { workflow_id: workflowId, run_id: handle.firstExecutionRunId, reachable: true, latency_ms: result.latencyMs, error: null };
      } catch (err) {
        if (!(err instanceof WorkflowFailedError)) throw err;
        const cause = (err.cause as { cause?: { type?: string; message?: string } } | undefined)?.cause;
        return {
          workflow_id: workflowId,
          run_id: handle.firstExecutionRunId,
          reachable: false,
          latency_ms: null,
          error: { type: cause?.type ?? 'WorkflowFailed', message: cause?.message ?? err.message },
        };
      }
    },
  });

  return r;
}
