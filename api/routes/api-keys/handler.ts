import { Router } from 'express';
import type { AppDeps, AuthDeps } from '../../deps.js';
import { z, type OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { forbidden } from '../../errors.js';
import { recordAudit } from '../../../db/audit.js';
import { ApiKeyCreate, ApiKeyCreated, ApiKeyDto } from './schema.js';
import { apiKeyDto, createApiKey, listApiKeys, revokeApiKey } from './service.js';

const tags = ['api-keys'];

export function apiKeyRoutes(deps: AppDeps & AuthDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/api-keys', tags, auth: 'any', body: ApiKeyCreate, response: ApiKeyCreated, status: 201,
    summary: 'Create an API key (shown once) with a subset of the owner roles',
    handler: async ({ body, user, req }) => {
      const isAdmin = user!.roles.includes('admin');
      const ownerId = body.user_id ?? user!.id;
      if (ownerId !== user!.id && !isAdmin) throw forbidden('only admins can create keys for someone else');
      // A key made with a key cannot carry more than the key making it.
      const roles = body.roles ?? (ownerId === user!.id && user!.apiKeyId ? user!.roles : undefined);
      if (ownerId === user!.id && user!.apiKeyId && roles?.some((x) => !user!.roles.includes(x))) throw forbidden('a key cannot create a key with more roles than its own');
      const now = deps.identity.clock();
      const { key, row } = await createApiKey(deps.em, { userId: ownerId, name: body.name, roles, expiresAt: body.expires_at ? new Date(body.expires_at) : null, now });
      const em = deps.em.fork();
      recordAudit(em, { actor: user!.username, action: 'api-key.create', targetType: 'api-key', targetId: row.id, ip: req.ip, requestId: req.requestId, detail: { owner: ownerId, name: row.name, roles: row.roles } });
      await em.flush();
      return { ...apiKeyDto(row), key };
    },
  });
  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/api-keys', tags, auth: 'any', query: z.object({ user_id: z.string().uuid().optional() }),
    response: z.object({ items: z.array(ApiKeyDto) }),
    summary: 'My API keys (admins: ?user_id=)',
    handler: async ({ query, user }) => {
      const userId = query.user_id && user!.roles.includes('admin') ? query.user_id : user!.id;
      return { items: (await listApiKeys(deps.em, userId)).map(apiKeyDto) };
    },
  });
  defineRoute(r, registry, {
    method: 'delete', path: '/api/v1/api-keys/:id', tags, auth: 'any', params: z.object({ id: z.string().uuid('must be an api key id (uuid)') }), response: ApiKeyDto,
    summary: 'Revoke an API key (mine; admins: any)',
    handler: async ({ params, user, req }) => {
      const row = await revokeApiKey(deps.em, { id: params.id, ownerId: user!.roles.includes('admin') ? undefined : user!.id, now: deps.identity.clock() });
      const em = deps.em.fork();
      recordAudit(em, { actor: user!.username, action: 'api-key.revoke', targetType: 'api-key', targetId: row.id, ip: req.ip, requestId: req.requestId, detail: { owner: row.userId } });
      await em.flush();
      return apiKeyDto(row);
    },
  });
  return r;
}
