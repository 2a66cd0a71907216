import { Router } from 'express';
import type { AppDeps } from '../../deps.js';
import { z, type OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { conflict, notFound } from '../../errors.js';
import { PageQuery, pageOffsets, pageResult } from '../../pagination.js';
import { EnvTemplateSchema, type EnvTemplate as Row } from '../../../db/entities/index.js';
import { recordAudit } from '../../../db/audit.js';
import { AccountPolicyInput } from '../hosts/schema.js';

const StepSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,79}$/, 'letters, digits, space, ".", "_" or "-"'),
  check: z.string().min(1).max(4000).openapi({ description: 'Exits 0 when the step is already in place' }),
  command: z.string().min(1).max(20000),
  timeout_s: z.number().int().min(1).max(24 * 3600).optional(),
});
const Create = z
  .object({ name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 .+_-]{0,99}$/), description: z.string().max(500).optional(), os: z.enum(['linux', 'windows']).default('linux'), steps: z.array(StepSchema).min(1).max(100), publish: z.boolean().default(true), account_policy: AccountPolicyInput.optional() })
  .refine((t) => new Set(t.steps.map((s) => s.name)).size === t.steps.length, { path: ['steps'], message: 'step names must be unique' })
  .openapi('EnvTemplateCreate');
const EnvTemplate = z.object({ id: z.string(), name: z.string(), version: z.number(), description: z.string().nullable(), os: z.string(), steps: z.array(StepSchema), published_at: z.string().nullable() }).openapi('EnvTemplate');
const toDto = (t: Row) => ({ id: t.id, name: t.name, version: t.version, description: t.description ?? null, os: t.os, steps: t.steps.map((s) => ({ name: s.name, check: s.check, command: s.command, timeout_s: s.timeoutS })), published_at: t.publishedAt?.toISOString() ?? null });

/** Environment templates: versioned, immutable once published (a change is a new version). */
export function envTemplateRoutes(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  const tags = ['env-templates'];
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/env-templates', summary: 'Create the next version of a template', tags, permission: 'template.write', body: Create, response: EnvTemplate, status: 201,
    handler: async ({ body, user, req }) => {
      const em = deps.em.fork();
      const last = await em.findOne(EnvTemplateSchema, { name: body.name }, { orderBy: { version: 'desc' } });
      const t = em.create(EnvTemplateSchema, {
        name: body.name,
        version: (last?.version ?? 0) + 1,
        description: body.description ?? null,
        os: body.os,
        steps: body.steps.map((s) => ({ name: s.name, check: s.check, command: s.command, timeoutS: s.timeout_s })),
        publishedAt: body.publish ? new Date() : null,
        accountPolicy: body.account_policy ? { allowAdmin: body.account_policy.allow_admin, allowGroups: body.account_policy.allow_groups, privilegedBy: body.account_policy.privileged_by } : null,
      });
      recordAudit(em, { actor: user!.username, action: 'env-template.create', targetType: 'env-template', targetId: t.id, ip: req.ip, requestId: req.requestId, detail: { name: t.name, version: t.version, published: !!t.publishedAt, steps: t.steps.map((s) => s.name) } });
      await em.flush();
      return toDto(t);
    },
  });
  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/env-templates', summary: 'List template versions', tags, permission: 'template.read', query: PageQuery.extend({ name: z.string().optional() }),
    response: z.object({ items: z.array(EnvTemplate), total: z.number(), page: z.number(), page_size: z.number(), pages: z.number() }),
    handler: async ({ query }) => {
      const [rows, total] = await deps.em.fork().findAndCount(EnvTemplateSchema, query.name ? { name: query.name } : {}, { ...pageOffsets(query), orderBy: { name: 'asc', version: 'desc' } });
      return pageResult(rows.map(toDto), total, query);
    },
  });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/env-templates/:id/publish', summary: 'Publish a draft version (then it is immutable)', tags, permission: 'template.write', params: z.object({ id: z.string().uuid() }), response: EnvTemplate,
    handler: async ({ params, user, req }) => {
      const em = deps.em.fork();
      const t = await em.findOne(EnvTemplateSchema, { id: params.id });
      if (!t) throw notFound('template');
      if (t.publishedAt) throw conflict(`${t.name} v${t.version} is already published`);
      t.publishedAt = new Date();
      recordAudit(em, { actor: user!.username, action: 'env-template.publish', targetType: 'env-template', targetId: t.id, ip: req.ip, requestId: req.requestId, detail: { name: t.name, version: t.version } });
      await em.flush();
      return toDto(t);
    },
  });
  return r;
}
