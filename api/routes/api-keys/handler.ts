import { Router } from 'express';
import type { AppDeps, AuthDeps } from '../../deps.js';
import { z, type OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { forbidden } from '../../errors.js';
import { can, type RoleCache } from '../../authz/principal.js';
import { assertCanGrant, assertRolesExist } from '../roles/service.js';
import { recordAudit } from '../../../db/audit.js';
import { UserSchema } from '../../../db/entities/index.js';
import { ApiKeyCreate, ApiKeyCreated, ApiKeyDto } from './schema.js';
import { apiKeyDto, createApiKey, listApiKeys, revokeApiKey } from './service.js';

const tags = ['api-keys'];

const ownerRoles = async (deps: Pick<AppDeps, 'em'>, id: string) => (await deps.em.fork().findOne(UserSchema, { id }, { fields: ['roles'] }))?.roles ?? [];

export function apiKeyRoutes(deps: AppDeps & AuthDeps & { roleCache: RoleCache }, registry: OpenAPIRegistry): Router {
  const r = Router();
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/api-keys', tags, permission: 'authenticated', body: ApiKeyCreate, response: ApiKeyCreated, status: 201,
    errors: { 404: 'No user with this user_id (40401)' },
    summary: 'Create an API key (shown once) with a subset of the owner roles',
    handler: async ({ body, user, principal, req }) => {
      const ownerId = body.user_id ?? user!.id;
      if (ownerId !== user!.id && !can(principal!, 'api_key.manage')) throw forbidden('creating keys for someone else needs api_key.manage');
      if (body.roles) await assertRolesExist(deps.em, body.roles);
      // A key made with a key cannot carry more than the key making it.
      const roles = body.roles ?? (ownerId === user!.id && user!.apiKeyId ? user!.roles : undefined);
      if (ownerId === user!.id && user!.apiKeyId && roles?.some((x) => !user!.roles.includes(x))) throw forbidden('a key cannot create a key with more roles than its own');
      // Keys for someone else: the key may act only with permissions the creator holds.
      if (ownerId !== user!.id) await assertCanGrant(deps.roleCache, principal!, roles ?? (await ownerRoles(deps, ownerId)));
      const now = deps.identity.clock();
      const { key, row } = await createApiKey(deps.em, { userId: ownerId, name: body.name, roles, expiresAt: body.expires_at ? new Date(body.expires_at) : null, now });
      const em = deps.em.fork();
      recordAudit(em, { actor: user!.username, action: 'api-key.create', targetType: 'api-key', targetId: row.id, ip: req.ip, requestId: req.requestId, detail: { owner: ownerId, name: row.name, roles: row.roles } });
      await em.flush();
      return { ...apiKeyDto(row), key };
    },
  });
  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/api-keys', tags, permission: 'authenticated', query: z.object({ user_id: z.string().uuid().optional() }),
    response: z.object({ items: z.array(ApiKeyDto) }),
    summary: 'My API keys (holders of api_key.manage: ?user_id=)',
    handler: async ({ query, user, principal }) => {
      const userId = query.user_id && can(principal!, 'api_key.manage') ? query.user_id : user!.id;
      return { items: (await listApiKeys(deps.em, userId)).map(apiKeyDto) };
    },
  });
  defineRoute(r, registry, {
    method: 'delete', path: '/api/v1/api-keys/:id', tags, permission: 'authenticated', params: z.object({ id: z.string().uuid('must be an api key id (uuid)') }), response: ApiKeyDto,
    summary: 'Revoke an API key (mine; holders of api_key.manage: any)',
    handler: async ({ params, user, principal, req }) => {
      const row = await revokeApiKey(deps.em, { id: params.id, ownerId: can(principal!, 'api_key.manage') ? undefined : user!.id, now: deps.identity.clock() });
      const em = deps.em.fork();
      recordAudit(em, { actor: user!.username, action: 'api-key.revoke', targetType: 'api-key', targetId: row.id, ip: req.ip, requestId: req.requestId, detail: { owner: row.userId } });
      await em.flush();
      return apiKeyDto(row);
    },
  });
  return r;
}
