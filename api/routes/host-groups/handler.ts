import { Router } from 'express';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { AppDeps } from '../../deps.js';
import { z, type OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { conflict } from '../../errors.js';
import { PageQuery, pageOffsets, pageResult } from '../../pagination.js';
import { HostGroupSchema, HostSchema, type HostGroup as Row } from '../../../db/entities/index.js';

const HostGroup = z.object({ id: z.string(), name: z.string(), description: z.string().nullable(), hosts: z.number().optional(), created_at: z.string() }).openapi('HostGroup');
const Create = z.object({ name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$/, 'letters, digits, space, ".", "_" or "-"'), description: z.string().max(500).optional() });
const IdParams = z.object({ id: z.string().uuid() });
const toDto = (g: Row, hosts?: number) => ({ id: g.id, name: g.name, description: g.description ?? null, hosts, created_at: g.createdAt.toISOString() });

export function hostGroupRoutes(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  const tags = ['host-groups'];
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/host-groups', summary: 'Create a host group', tags, permission: 'host_group.manage', body: Create, response: HostGroup, status: 201,
    handler: async ({ body }) => {
      const em = deps.em.fork();
      const g = em.create(HostGroupSchema, { name: body.name, description: body.description ?? null });
      try {
        await em.flush();
      } catch (err) {
        if (err instanceof UniqueConstraintViolationException) throw conflict(`host group "${body.name}" already exists`);
        throw err;
      }
      return toDto(g, 0);
    },
  });
  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/host-groups', summary: 'List host groups with their host counts', tags, permission: 'host.read', query: PageQuery,
    response: z.object({ items: z.array(HostGroup), total: z.number(), page: z.number(), page_size: z.number(), pages: z.number() }),
    handler: async ({ query, scope }) => {
      const em = deps.em.fork();
      const [rows, total] = await em.findAndCount(HostGroupSchema, (await scope.where(em, HostGroupSchema)) as never, { ...pageOffsets(query), orderBy: { name: 'asc' } });
      const counts = await Promise.all(rows.map((g) => em.count(HostSchema, { group: g.name })));
      return pageResult(rows.map((g, i) => toDto(g, counts[i])), total, query);
    },
  });
  defineRoute(r, registry, {
    method: 'delete', path: '/api/v1/host-groups/:id', summary: 'Delete an empty host group', tags, permission: 'host_group.manage', params: IdParams, response: z.object({ deleted: z.boolean() }),
    handler: async ({ params, scope }) => {
      const em = deps.em.fork();
      const g = await scope.find(em, HostGroupSchema, { id: params.id }, 'host group');
      const n = await em.count(HostSchema, { group: g.name });
      if (n) throw conflict(`host group "${g.name}" still has ${n} hosts`);
      em.remove(g);
      await em.flush();
      return { deleted: true };
    },
  });
  return r;
}
