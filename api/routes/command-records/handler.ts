import { Router } from 'express';
import type { AppDeps } from '../../deps.js';
import type { OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { paginated } from '../../openapi.js';
import { pageResult } from '../../pagination.js';
import { HostSchema } from '../../../db/entities/index.js';
import { HostIdParams } from '../hosts/schema.js';
import { CommandDetail, CommandListQuery, CommandParams, CommandSummary } from './schema.js';
import { getCommandRecord, listCommandRecords } from './service.js';

/**
 * The command records of a host, like Rundeck's execution output: what each remote command that
 * changed the host printed (secret-redacted, 64 KiB per stream), by workflow run.
 */
export function commandRecordRoutes(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  const tags = ['hosts'];

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/hosts/:id/commands',
    summary: 'Remote commands that changed this host (account operations, key edits, reclaim and template steps), newest first; filter by workflow run; output in the detail',
    tags,
    permission: 'host.command_read',
    params: HostIdParams,
    query: CommandListQuery,
    response: paginated(CommandSummary),
    handler: async ({ params, query, scope }) => {
      const em = deps.em.fork();
      const host = await scope.find(em, HostSchema, { id: params.id }, 'host');
      const { rows, total } = await listCommandRecords(em, { hostId: host.id, query });
      return pageResult(rows, total, query);
    },
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/hosts/:id/commands/:commandId',
    summary: "One command record with its stdout and stderr (secret-redacted; at most 64 KiB per stream: the first 16 KiB and the last ~48 KiB)",
    tags,
    permission: 'host.command_read',
    params: CommandParams,
    response: CommandDetail,
    handler: async ({ params, scope }) => {
      const em = deps.em.fork();
      const host = await scope.find(em, HostSchema, { id: params.id }, 'host');
      return getCommandRecord(em, { hostId: host.id, id: params.commandId });
    },
  });

  return r;
}
