import { Router } from 'express';
import type { AppDeps } from '../../deps.js';
import { z, type OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { HostSchema } from '../../../db/entities/index.js';
import { setHostRemoteAccess, startGatewaySync } from './service.js';

const IdParams = z.object({ id: z.string().uuid('must be a host id (uuid)') });
const SwitchBody = z.object({ enabled: z.boolean(), wait: z.boolean().default(false) }).openapi('RemoteAccessSwitch');
const SyncResult = z.object({ status: z.enum(['applied', 'unchanged', 'not-configured']), entries: z.number(), sha256: z.string().nullable(), nginx: z.enum(['reloaded', 'started', 'none']) });
const Switched = z.object({ host_id: z.string(), enabled: z.boolean(), entries: z.number(), workflow_id: z.string(), gateway: SyncResult.optional() }).openapi('RemoteAccessSwitched');
const SyncBody = z.object({ wait: z.boolean().default(true).openapi({ description: 'Hold the answer until the sync is done (at most 8 s; without `result` when it takes longer)' }) }).openapi('GatewaySyncBody');
const Synced = z.object({ workflow_id: z.string(), result: SyncResult.optional() }).openapi('GatewaySynced');

/** Remote access: the per-host switch and the managed gateway (gateway-sync). */
export function remoteRoutes(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  const tags = ['remote-access'];

  defineRoute(r, registry, {
    method: 'patch',
    path: '/api/v1/hosts/:id/remote-access',
    summary: "Switch a host's remote access on or off; the gateway follows (gateway-sync). `wait: true` returns the sync's result",
    tags,
    permission: 'remote_access.manage',
    params: IdParams,
    body: SwitchBody,
    response: Switched,
    handler: async ({ params, body, user, req, scope }) => {
      await scope.find(deps.em.fork(), HostSchema, { id: params.id }, 'host');
      return setHostRemoteAccess(deps, { hostId: params.id, enabled: body.enabled, actor: user!.username, ip: req.ip, requestId: req.requestId, wait: body.wait });
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/gateway/sync',
    summary: 'Re-render the gateway config from the entries, check it with nginx -t and reload (what the drift schedule does)',
    tags,
    permission: 'remote_access.manage',
    body: SyncBody,
    response: Synced,
    handler: async ({ body, user }) => startGatewaySync(deps, 'manual', 'manual', user!.username, body.wait),
  });
  return r;
}
