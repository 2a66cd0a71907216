// Remote access domain operations: the per-host switch and gateway-sync starts (shared by routes, CLI, tests).
import type { AppDeps } from '../../deps.js';
import { eagerStartOptions } from '../../../config/temporal.js';
import { notFound } from '../../errors.js';
import { recordAudit } from '../../../db/audit.js';
import { HostSchema, RemoteAccessSchema } from '../../../db/entities/index.js';
import type { GatewaySyncResult } from '../../../activities/gateway/gateway.activities.js';
import type { gatewaySync } from '../../../workflows/gateway-sync.workflow.js';

/** Starts `gateway-sync/<trigger>/<ms>`; `wait` returns its result (a refused config → its error). */
/** How long `wait: true` holds the answer for the sync's result. */
export const GATEWAY_SYNC_WAIT_MS = 8_000;

export async function startGatewaySync(deps: Pick<AppDeps, 'temporal'>, trigger: string, reason: string, actor?: string, wait = false): Promise<{ workflow_id: string; result?: GatewaySyncResult }> {
  const workflowId = `gateway-sync/${trigger}/${Date.now()}`;
  const handle = await deps.temporal.client.workflow.start<typeof gatewaySync>('gatewaySync', {
    workflowId,
    taskQueue: deps.temporal.taskQueue,
    ...eagerStartOptions(deps.temporal),
    args: [{ reason, ...(actor ? { actor } : {}) }],
  });
  if (!wait) return { workflow_id: workflowId };
  // The wait is bounded: a sync that takes longer (nginx slow to reload, a worker busy or gone)
  // answers without `result`, and the run goes on; follow it by its workflow id.
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), GATEWAY_SYNC_WAIT_MS)));
  try {
    const result = await Promise.race([handle.result(), timedOut]);
    return result ? { workflow_id: workflowId, result } : { workflow_id: workflowId };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Switches a host's remote access on or off (every entry of the host), audited, and starts
 * gateway-sync so the gateway follows. Entries exist only once remote access was configured
 * (onboarding's remote_access); switching a host without entries answers 40401.
 */
export async function setHostRemoteAccess(
  deps: Pick<AppDeps, 'em' | 'temporal'>,
  input: { hostId: string; enabled: boolean; actor: string; ip?: string; requestId?: string; wait?: boolean },
): Promise<{ host_id: string; enabled: boolean; entries: number; workflow_id: string; gateway?: GatewaySyncResult }> {
  const em = deps.em.fork();
  const host = await em.findOne(HostSchema, { id: input.hostId });
  if (!host) throw notFound('host');
  const rows = await em.find(RemoteAccessSchema, { host: host.id });
  if (!rows.length) throw notFound('remote access entries (configure remote access in onboarding first)');
  const before = rows.some((r) => r.enabled);
  await em.nativeUpdate(RemoteAccessSchema, { host: host.id }, { enabled: input.enabled });
  recordAudit(em, { actor: input.actor, action: input.enabled ? 'remote_access.enable' : 'remote_access.disable', targetType: 'host', targetId: host.id, ip: input.ip, requestId: input.requestId, before: { enabled: before }, after: { enabled: input.enabled } });
  await em.flush();
  const started = await startGatewaySync(deps, `host-${host.id}`, input.enabled ? 'remote access enabled' : 'remote access disabled', input.actor, input.wait);
  return { host_id: host.id, enabled: input.enabled, entries: rows.length, workflow_id: started.workflow_id, ...(started.result ? { gateway: started.result } : {}) };
}
