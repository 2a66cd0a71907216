import { runSummary } from '../../../config/temporal.js';
import express, { Router, type RequestHandler } from 'express';
import { eagerStartOptions } from '../../../config/temporal.js';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { WorkflowFailedError } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import type { AppDeps } from '../../deps.js';
import type { OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { conflict, forbidden, unauthenticated, validationError } from '../../errors.js';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Vault } from '../../../db/vault.js';
import { parse as parseCsv } from 'csv-parse/sync';
import { pageOffsets, pageResult } from '../../pagination.js';
import { readPage } from '../../../db/read.js';
import { HOLDING_ALLOCATION_STATUSES, HostSchema, HostCredentialSchema, HostGroupSchema, type Host as HostRow } from '../../../db/entities/index.js';
import { recordAudit } from '../../../db/audit.js';
import { allocatedHostIds, releaseHostLock } from '../allocations/service.js';
import { credentialContext } from '../../../activities/remote/host-targets.js';
import { HostIdKey } from '../../../workflows/shared/search-attributes.js';
import type { hostPing } from '../../../workflows/host-ping.workflow.js';
import { Host, HostCreate, HostIdParams, HostImport, HostImportPreview, HostImportPreviewBody, HostImportResult, HostKeyRepin, HostListQuery, HostRetired, HostStatusChange, HostUpdate, PingResult } from './schema.js';
import { checkHostImport, retireHost } from './service.js';
import { assertTransition, HostTransitionError } from '../../../db/host-status.js';
import { z } from '../../openapi.js';

export function toHostDto(h: HostRow, hasCredentials: boolean, allocated = false): z.input<typeof Host> {
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
    facts: h.facts ?? null,
    expected_gpu: h.expectedGpu ?? null,
    template_id: h.templateId ?? null,
    owner_tenant: h.ownerTenant ?? null,
    account_policy: h.accountPolicy ? { allow_admin: !!h.accountPolicy.allowAdmin, allow_groups: h.accountPolicy.allowGroups ?? [], privileged_by: h.accountPolicy.privilegedBy ?? 'staff' } : null,
    host_key_fingerprint: h.hostKeyFingerprint ?? null,
    winrm: h.os === 'windows' ? { auth: h.winrmAuth, https: h.winrmHttps, port: h.winrmPort ?? null, allow_unencrypted_basic: h.winrmAllowUnencryptedBasic } : null,
    has_credentials: hasCredentials,
    allocated,
    last_seen_at: h.lastSeenAt?.toISOString() ?? null,
    created_at: h.createdAt.toISOString(),
  };
}

/** Per listed host (root alias `e`): has it a stored credential; does a non-final allocation hold it. */
const HAS_CREDENTIALS_SQL = 'exists (select 1 from "host_credentials" as "hc" where "hc"."host_id" = "e"."id")';
const ALLOCATED_SQL = `exists (select 1 from "allocations" as "ha" where "ha"."host_id" = "e"."id" and "ha"."status" in (${HOLDING_ALLOCATION_STATUSES.map((x) => `'${x}'`).join(', ')}))`;

export const slugify = (name: string) =>
  name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '') || 'host';

/** Stages a host and its encrypted credentials in `em` (flushed by the caller, atomically). */
export function stageHost(em: SqlEntityManager, vault: Vault, body: z.infer<typeof HostCreate>) {
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
    winrmAuth: body.winrm_auth,
    winrmAllowUnencryptedBasic: body.winrm_allow_unencrypted_basic,
    expectedGpu: body.expected_gpu ?? null,
    templateId: body.template_id ?? null,
    accountPolicy: body.account_policy ? { allowAdmin: body.account_policy.allow_admin, allowGroups: body.account_policy.allow_groups, privilegedBy: body.account_policy.privileged_by } : null,
    ownerTenant: body.owner_tenant ?? null,
  });
  const secrets: Array<[kind: 'password' | 'private-key' | 'winrm-password', value: string | undefined]> = [
    [body.os === 'windows' ? 'winrm-password' : 'password', body.password],
    ['private-key', body.private_key],
  ];
  for (const [kind, value] of secrets) {
    if (!value) continue;
    const { ciphertext, keyId } = vault.encrypt(value, credentialContext(host.id, kind));
    em.create(HostCredentialSchema, { host, kind, ciphertext, keyId });
  }
  return host;
}

async function assertGroupsExist(em: SqlEntityManager, hosts: Array<{ group?: string }>, rowOffset?: number) {
  const names = [...new Set(hosts.map((h) => h.group).filter((g): g is string => Boolean(g)))];
  if (!names.length) return;
  const found = new Set((await em.find(HostGroupSchema, { name: { $in: names } })).map((g) => g.name));
  const errors = hosts.flatMap((h, i) => (h.group && !found.has(h.group) ? [{ field: rowOffset === undefined ? 'group' : `hosts.${i + rowOffset}.group`, message: `host group "${h.group}" does not exist` }] : []));
  if (errors.length) throw validationError(errors);
}

/**
 * The same machine (address + port) registered twice under two names would get two onboardings,
 * two locks and two allocations at once: refused with 40901 naming the existing host, unless the
 * row says `allow_duplicate_address: true` (several test hosts behind one forwarded port, say).
 */
async function assertNewMachines(em: SqlEntityManager, hosts: Array<{ address: string; port: number; allow_duplicate_address?: boolean }>, rowOffset?: number) {
  const key = (h: { address: string; port: number }) => `${h.address.toLowerCase()}:${h.port}`;
  const checked = hosts.map((h, i) => ({ h, i })).filter(({ h }) => !h.allow_duplicate_address);
  if (!checked.length) return;
  const existing = await em.find(HostSchema, { $or: checked.map(({ h }) => ({ address: { $ilike: h.address.replace(/[%_\\]/g, '\\$&') }, port: h.port })) }, { fields: ['id', 'slug', 'address', 'port'] });
  const byKey = new Map(existing.map((e) => [key(e), e]));
  const seen = new Map<string, number>();
  const clashes: string[] = [];
  let first: { id: string; slug: string } | undefined;
  for (const { h, i } of checked) {
    const where = rowOffset === undefined ? '' : `hosts.${i + rowOffset}: `;
    const old = byKey.get(key(h));
    if (old) {
      first ??= old;
      clashes.push(`${where}${h.address}:${h.port} is already registered as host "${old.slug}" (${old.id})`);
    } else if (rowOffset !== undefined && seen.has(key(h))) {
      clashes.push(`${where}${h.address}:${h.port} is also row ${seen.get(key(h))}`);
    } else seen.set(key(h), i + (rowOffset ?? 0));
  }
  if (clashes.length) {
    throw conflict(`${clashes.join('; ')}; set allow_duplicate_address: true to register the same machine again`, first ? { existing_host_id: first.id, existing_host_slug: first.slug } : undefined);
  }
}

/** text/csv → `{ hosts: [...] }` with typed columns; a malformed CSV is a 40001 naming its line. */
const csvToHosts: RequestHandler = (req, _res, next) => {
  if (typeof req.body !== 'string') return next();
  let records: Array<Record<string, string>>;
  try {
    records = parseCsv(req.body, { columns: true, skip_empty_lines: true, trim: true, bom: true });
  } catch (err) {
    throw validationError([{ field: 'body', message: `CSV: ${(err as Error).message}` }]);
  }
  const num = (v?: string) => (v === undefined || v === '' ? undefined : Number(v));
  const str = (v?: string) => (v === undefined || v === '' ? undefined : v);
  req.body = {
    hosts: records.map((c) => ({
      name: str(c.name),
      slug: str(c.slug),
      address: str(c.address),
      port: num(c.port),
      os: str(c.os),
      username: str(c.username),
      password: str(c.password),
      private_key: str(c.private_key)?.replace(/\\n/g, '\n'),
      site: str(c.site),
      group: str(c.group),
      tags: str(c.tags)?.split(';').map((t) => t.trim()).filter(Boolean),
      winrm_port: num(c.winrm_port),
      winrm_https: c.winrm_https ? c.winrm_https === 'true' : undefined,
      winrm_auth: str(c.winrm_auth),
      winrm_allow_unencrypted_basic: c.winrm_allow_unencrypted_basic ? c.winrm_allow_unencrypted_basic === 'true' : undefined,
      expected_gpu: c.expected_gpu_model || c.expected_gpu_count ? { model: str(c.expected_gpu_model), count: num(c.expected_gpu_count) } : undefined,
      template_id: str(c.template_id),
      owner_tenant: str(c.owner_tenant),
      allow_duplicate_address: c.allow_duplicate_address ? c.allow_duplicate_address === 'true' : undefined,
    })),
  };
  next();
};

export function hostRoutes(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  // The CSV body is read and parsed only for an authenticated caller with the route's roles.
  const importRoles = ['admin', 'operator'] as const;
  const authorizeImport: RequestHandler = (req, _res, next) => {
    if (!req.user) throw unauthenticated();
    if (!importRoles.some((role) => req.user!.roles.includes(role))) throw forbidden(`requires role ${importRoles.join(' or ')}`);
    next();
  };
  r.post('/api/v1/hosts/import', authorizeImport, express.text({ type: ['text/csv', 'application/csv'], limit: '5mb' }), csvToHosts);
  r.post('/api/v1/hosts/import/preview', authorizeImport, express.text({ type: ['text/csv', 'application/csv'], limit: '5mb' }), csvToHosts);

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/hosts/import/preview',
    summary: 'Check a host import (JSON or CSV, as POST /hosts/import takes it) row by row without writing anything: per-row, per-field errors',
    tags: ['hosts'],
    permission: 'host.write',
    body: HostImportPreviewBody,
    response: HostImportPreview,
    handler: async ({ body }) => {
      const rows = await checkHostImport(deps.em.fork(), body.hosts, slugify);
      const invalid = rows.filter((r) => r.errors.length).length;
      return { total: rows.length, valid: rows.length - invalid, invalid, rows };
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/hosts',
    summary: 'Register a host (credentials are write-only and stored encrypted)',
    tags: ['hosts'],
    permission: 'host.write',
    body: HostCreate,
    response: Host,
    status: 201,
    handler: async ({ body, user, req }) => {
      const em = deps.em.fork();
      await assertGroupsExist(em, [body]);
      await assertNewMachines(em, [body]);
      const host = stageHost(em, deps.vault, body);
      recordAudit(em, { actor: user!.username, action: 'host.create', targetType: 'host', targetId: host.id, ip: req.ip, requestId: req.requestId, after: { slug: host.slug, address: host.address, port: host.port, os: host.os, status: host.status, ...(host.os === 'windows' ? { winrm_auth: host.winrmAuth, winrm_https: host.winrmHttps, winrm_allow_unencrypted_basic: host.winrmAllowUnencryptedBasic } : {}) } });
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
    method: 'post',
    path: '/api/v1/hosts/import',
    summary: 'Bulk import hosts from JSON ({hosts:[...]}) or CSV (text/csv, header row): all or nothing',
    tags: ['hosts'],
    permission: 'host.write',
    body: HostImport,
    response: HostImportResult,
    status: 201,
    handler: async ({ body, user, req }) => {
      const rows = body.hosts;
      const errors: Array<{ field: string; message: string }> = [];
      const parsed: Array<z.infer<typeof HostCreate>> = [];
      rows.forEach((row, i) => {
        const r = HostCreate.safeParse(row);
        if (r.success) parsed.push(r.data);
        else for (const issue of r.error.issues) errors.push({ field: `hosts.${i}.${issue.path.join('.') || 'row'}`, message: issue.message });
      });
      const slugs = new Map<string, number>();
      parsed.forEach((h, i) => {
        const slug = h.slug ?? slugify(h.name);
        if (slugs.has(slug)) errors.push({ field: `hosts.${i}.slug`, message: `duplicate slug "${slug}" (also row ${slugs.get(slug)})` });
        else slugs.set(slug, i);
      });
      if (errors.length) throw validationError(errors, `${new Set(errors.map((e) => e.field.split('.')[1])).size} of ${rows.length} rows are invalid; nothing was imported`);
      const em = deps.em.fork();
      await assertGroupsExist(em, parsed, 0);
      const taken = await em.find(HostSchema, { slug: { $in: [...slugs.keys()] } }, { fields: ['slug'] });
      if (taken.length) throw validationError(taken.map((t) => ({ field: `hosts.${slugs.get(t.slug)}.slug`, message: `slug "${t.slug}" already exists` })), 'some slugs already exist; nothing was imported');
      await assertNewMachines(em, parsed, 0);
      const hosts = parsed.map((h) => stageHost(em, deps.vault, h));
      recordAudit(em, { actor: user!.username, action: 'host.import', targetType: 'host', targetId: `${hosts.length} hosts`, ip: req.ip, requestId: req.requestId, detail: { slugs: hosts.map((h) => h.slug) } });
      try {
        await em.flush();
      } catch (err) {
        if (err instanceof UniqueConstraintViolationException) throw conflict('a host with one of these slugs was created meanwhile; nothing was imported');
        throw err;
      }
      return { imported: hosts.length, ids: hosts.map((h) => h.id) };
    },
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/hosts',
    summary: 'List hosts',
    tags: ['hosts'],
    permission: 'host.read',
    query: HostListQuery,
    response: z.object({ items: z.array(Host), total: z.number(), page: z.number(), page_size: z.number(), pages: z.number() }),
    handler: async ({ query, scope }) => {
      const em = deps.em.fork();
      const where: Record<string, unknown> = {};
      if (query.status) where.status = query.status;
      if (query.group) where.group = query.group;
      if (query.tag) where.tags = { $contains: [query.tag] };
      if (query.gpu_model) {
        // facts.gpus[*].model contains the substring, case-insensitive (same SQL on PGlite and PostgreSQL;
        // jsonpath like_regex only takes literal patterns, so the array is unnested instead).
        const ids = await em.getConnection().execute<Array<{ id: string }>>(
          `select h.id from hosts h where exists (select 1 from jsonb_array_elements(coalesce(h.facts->'gpus', '[]'::jsonb)) g where g->>'model' ilike ?)`,
          [`%${query.gpu_model.replace(/[%_\\]/g, '\\$&')}%`],
        );
        where.id = { $in: ids.map((r) => r.id) };
      }
      if (query.available !== undefined) {
        const held = [...(await allocatedHostIds(em))];
        if (query.available) {
          if (query.status && query.status !== 'online') return pageResult([], 0, query);
          where.status = 'online';
          if (held.length) where.id = where.id ? { $in: (where.id as { $in: string[] }).$in.filter((id) => !held.includes(id)) } : { $nin: held };
        } else {
          where.$and = [{ $or: [{ status: { $ne: 'online' } }, { id: { $in: held } }] }];
        }
      }
      if (query.q) {
        const like = `%${query.q.replace(/[%_\\]/g, '\\$&')}%`;
        where.$or = [{ name: { $ilike: like } }, { slug: { $ilike: like } }, { address: { $ilike: like } }];
      }
      // One statement: the page, its total, and per row whether it has a credential and is held.
      const { rows, total } = await readPage<HostRow, { __has_credentials: boolean; __allocated: boolean }>(em, HostSchema, await scope.where(em, HostSchema, where), {
        ...pageOffsets(query),
        orderBy: { createdAt: 'desc', id: 'asc' },
        computed: { __has_credentials: HAS_CREDENTIALS_SQL, __allocated: ALLOCATED_SQL },
      });
      return pageResult(rows.map((h) => toHostDto(h, h.__has_credentials, h.__allocated)), total, query);
    },
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/hosts/:id',
    summary: 'Get a host',
    tags: ['hosts'],
    permission: 'host.read',
    params: HostIdParams,
    response: Host,
    handler: async ({ params, scope }) => {
      const em = deps.em.fork();
      const host = await scope.find(em, HostSchema, { id: params.id }, 'host');
      const creds = await em.count(HostCredentialSchema, { host: host.id });
      return toHostDto(host, creds > 0, (await allocatedHostIds(em, [host.id])).has(host.id));
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/hosts/:id/host-key/repin',
    summary: 'Re-pin the host key after a legitimate rekey (admin, audited): the fingerprint, checked out of band, replaces the pinned one; the next connection must present it',
    tags: ['hosts'],
    permission: 'host.key_repin',
    stepUp: true,
    params: HostIdParams,
    body: HostKeyRepin,
    response: Host,
    handler: async ({ params, body, user, req, scope }) => {
      const em = deps.em.fork();
      const host = await scope.find(em, HostSchema, { id: params.id }, 'host');
      const before = host.hostKeyFingerprint ?? null;
      if (before === body.fingerprint) throw conflict(`host_key: ${body.fingerprint} is already the pinned key of ${host.slug}`);
      host.hostKeyFingerprint = body.fingerprint;
      host.hostKeyPinnedAt = new Date();
      recordAudit(em, { actor: user!.username, action: 'host.host-key.repin', targetType: 'host', targetId: host.id, ip: req.ip, requestId: req.requestId, detail: { before, after: body.fingerprint, reason: body.reason } });
      await em.flush();
      const creds = await em.count(HostCredentialSchema, { host: host.id });
      return toHostDto(host, creds > 0, (await allocatedHostIds(em, [host.id])).has(host.id));
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/hosts/:id/lock/release',
    summary: "Release a leftover host lock (host-lock/<hostId>) whose allocation no longer holds the host (admin, audited); 409 names the allocation while it still does",
    tags: ['hosts'],
    permission: 'host.lock_release',
    params: HostIdParams,
    response: z.object({ released: z.boolean(), allocation_id: z.string().nullable() }),
    handler: async ({ params, user, req, scope }) => {
      const host = await scope.find(deps.em.fork(), HostSchema, { id: params.id }, 'host');
      const r = await releaseHostLock(deps, { hostId: host.id, actor: user!.username, meta: { ip: req.ip, requestId: req.requestId } });
      return { released: r.released, allocation_id: r.allocationId };
    },
  });

  defineRoute(r, registry, {
    method: 'patch',
    path: '/api/v1/hosts/:id',
    summary: 'Edit a host (name, site, group, tags, expected GPU, owner, account policy, WinRM auth/transport incl. Basic over HTTP); audited with before/after',
    tags: ['hosts'],
    permission: 'host.write',
    params: HostIdParams,
    body: HostUpdate,
    response: Host,
    handler: async ({ params, body, user, req, scope }) => {
      const em = deps.em.fork();
      const host = await scope.find(em, HostSchema, { id: params.id }, 'host');
      if (body.group) await assertGroupsExist(em, [{ group: body.group }]);
      const fields = {
        name: 'name',
        site: 'site',
        group: 'group',
        tags: 'tags',
        expected_gpu: 'expectedGpu',
        owner_tenant: 'ownerTenant',
        winrm_auth: 'winrmAuth',
        winrm_https: 'winrmHttps',
        winrm_port: 'winrmPort',
        winrm_allow_unencrypted_basic: 'winrmAllowUnencryptedBasic',
      } as const;
      const before: Record<string, unknown> = {};
      const after: Record<string, unknown> = {};
      for (const [api, prop] of Object.entries(fields) as Array<[keyof typeof fields, (typeof fields)[keyof typeof fields]]>) {
        if (body[api] === undefined) continue;
        before[api] = host[prop] ?? null;
        after[api] = body[api];
        (host as unknown as Record<string, unknown>)[prop] = body[api];
      }
      if (body.account_policy !== undefined) {
        before.account_policy = toHostDto(host, false).account_policy;
        after.account_policy = body.account_policy;
        const p = body.account_policy;
        host.accountPolicy = p ? { allowAdmin: p.allow_admin, allowGroups: p.allow_groups, privilegedBy: p.privileged_by } : null;
      }
      recordAudit(em, { actor: user!.username, action: 'host.update', targetType: 'host', targetId: host.id, ip: req.ip, requestId: req.requestId, detail: { before, after } });
      await em.flush();
      return toHostDto(host, (await em.count(HostCredentialSchema, { host: host.id })) > 0, (await allocatedHostIds(em, [host.id])).has(host.id));
    },
  });

  defineRoute(r, registry, {
    method: 'delete',
    path: '/api/v1/hosts/:id',
    summary: 'Retire a host: refused (40901) while allocated, locked, or with open requests/accounts; credentials deleted; audited',
    tags: ['hosts'],
    permission: 'host.delete',
    stepUp: true,
    params: HostIdParams,
    response: HostRetired,
    handler: async ({ params, user, req, scope }) => {
      await scope.find(deps.em.fork(), HostSchema, { id: params.id }, 'host');
      return retireHost(deps, { hostId: params.id, actor: user!.username, ip: req.ip, requestId: req.requestId });
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/hosts/:id/status',
    summary: 'Change a host status by hand (transitions are validated; onboarding does this automatically)',
    tags: ['hosts'],
    permission: 'host.write',
    params: HostIdParams,
    body: HostStatusChange,
    response: Host,
    handler: async ({ params, body, user, req, scope }) => {
      const em = deps.em.fork();
      const host = await scope.find(em, HostSchema, { id: params.id }, 'host');
      const from = host.status;
      try {
        assertTransition(from, body.status);
      } catch (err) {
        if (err instanceof HostTransitionError) throw conflict(err.message);
        throw err;
      }
      host.status = body.status;
      recordAudit(em, { actor: user!.username, action: 'host.status', targetType: 'host', targetId: host.id, ip: req.ip, requestId: req.requestId, before: { status: from }, after: { status: body.status }, detail: { reason: body.reason ?? null } });
      await em.flush();
      const creds = await em.count(HostCredentialSchema, { host: host.id });
      return toHostDto(host, creds > 0, (await allocatedHostIds(em, [host.id])).has(host.id));
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/hosts/:id/ping',
    summary: 'Run the host-ping workflow (SSH login + `true`) and wait for its result',
    tags: ['hosts'],
    permission: 'host.write',
    params: HostIdParams,
    response: PingResult,
    handler: async ({ params, scope }) => {
      const host = await scope.find(deps.em.fork(), HostSchema, { id: params.id }, 'host', { fields: ['id', 'slug'] });
      const workflowId = `host-ping/${host.id}/${new Date().toISOString().replace(/[-:.]/g, '')}`;
      const handle = await deps.temporal.client.workflow.start<typeof hostPing>('hostPing', {
        workflowId,
        taskQueue: deps.temporal.taskQueue,
        ...eagerStartOptions(deps.temporal),
        args: [{ hostId: host.id }],
        typedSearchAttributes: new TypedSearchAttributes([{ key: HostIdKey, value: host.id }]),
        workflowExecutionTimeout: '2 minutes',
        ...runSummary(`Ping ${host.slug}`, { host: host.slug }),
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
