// Remote access domain operations: the per-host switch and gateway-sync starts (shared by routes, CLI, tests).
import type { AppDeps } from '../../deps.js';
import { eagerStartOptions, runSummary } from '../../../config/temporal.js';
import { WorkflowFailedError, WorkflowIdConflictPolicy } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { ApiError, conflict, forbidden, notFound } from '../../errors.js';
import { rethrowMapped } from '../../temporal-errors.js';
import { recordAudit } from '../../../db/audit.js';
import { HostSchema, RemoteAccessSchema, VncServiceSchema, vncPasswordContext } from '../../../db/entities/index.js';
import { HostIdKey } from '../../../workflows/shared/search-attributes.js';
import type { hostAccountOperation } from '../../../workflows/host-account.workflow.js';
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
    ...runSummary(`Gateway sync: ${reason}${actor ? ` (by ${actor})` : ''}`),
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

/**
 * VNC auto-deployment, the customer's side: reveal the VNC password once (the allocation's
 * customer user; the stored secret is taken atomically, so a second reveal finds nothing), and
 * reset it (a new password written to the host by `host-account/<accountId>/reset-vnc-password/<ts>`;
 * the customer user reveals the new one once).
 */
export interface VncAllocation {
  id: string;
  status: string;
  hostAccountId?: string | null;
  customerUserId: string;
  hostId: string;
}

export async function revealVncPassword(deps: Pick<AppDeps, 'em' | 'vault'>, input: { allocation: VncAllocation; userId: string; actor: string; ip?: string; requestId?: string }) {
  const a = input.allocation;
  if (a.customerUserId !== input.userId) throw forbidden('only the customer user of this allocation can reveal its VNC password');
  if (!['active', 'buffer'].includes(a.status)) throw conflict(`allocation is ${a.status}; there is no VNC password to reveal`);
  const em = deps.em.fork();
  const row = await em.findOne(VncServiceSchema, { allocationId: a.id });
  if (!row || row.status !== 'running') throw conflict('this allocation has no running VNC service (allocate with "vnc": true)');
  const taken = await em.getConnection().execute<Array<{ password_ciphertext: string; password_version: number }>>(
    `with old as (select allocation_id, password_ciphertext, password_version from vnc_services where allocation_id = ? and password_ciphertext is not null for update)
     update vnc_services v set password_ciphertext = null, password_key_id = null, password_revealed_at = now(), updated_at = now()
       from old where v.allocation_id = old.allocation_id
       returning old.password_ciphertext, old.password_version`,
    [a.id],
  );
  const ct = taken[0];
  recordAudit(em, { actor: input.actor, action: 'allocation.vnc_reveal', targetType: 'allocation', targetId: a.id, ip: input.ip, requestId: input.requestId, result: ct ? 'success' : 'failure', detail: ct ? { version: ct.password_version } : { reason: 'already revealed' } });
  await em.flush();
  if (!ct) throw conflict('the VNC password was already revealed; reset it (POST /allocations/:id/vnc/password/reset) for a new one');
  const entry = await em.findOne(RemoteAccessSchema, { host: a.hostId, protocol: 'vnc', targetPort: row.rfbPort ?? -1 });
  return {
    password: deps.vault.decrypt(ct.password_ciphertext, vncPasswordContext(a.id, ct.password_version)),
    display: row.display!,
    rfb_port: row.rfbPort!,
    gateway: entry ? { domain: entry.publicDomain, port: entry.publicPort } : null,
    revealed_at: new Date().toISOString(),
  };
}

export async function resetVncPassword(deps: Pick<AppDeps, 'em' | 'temporal'>, input: { allocation: VncAllocation; actor: string; ip?: string; requestId?: string }): Promise<{ version: number; workflow_id: string }> {
  const a = input.allocation;
  if (!['active', 'buffer'].includes(a.status)) throw conflict(`allocation is ${a.status}; VNC passwords are reset on active allocations`);
  const em = deps.em.fork();
  const row = await em.findOne(VncServiceSchema, { allocationId: a.id });
  if (!row || row.status !== 'running' || !a.hostAccountId) throw conflict('this allocation has no running VNC service (allocate with "vnc": true)');
  const workflowId = `host-account/${a.hostAccountId}/reset-vnc-password/${new Date().toISOString().replace(/[-:.]/g, '')}`;
  try {
    await deps.temporal.client.workflow.execute<typeof hostAccountOperation>('hostAccountOperation', {
      workflowId,
      taskQueue: deps.temporal.taskQueue,
      ...eagerStartOptions(deps.temporal),
      args: [{ accountId: a.hostAccountId, op: 'reset-vnc-password' }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      typedSearchAttributes: new TypedSearchAttributes([{ key: HostIdKey, value: a.hostId }]),
      workflowExecutionTimeout: '5 minutes',
      ...runSummary(`Reset the VNC password of ${row.osUsername}`, { username: row.osUsername }),
    });
  } catch (err) {
    recordAudit(em, { actor: input.actor, action: 'allocation.vnc_reset', targetType: 'allocation', targetId: a.id, ip: input.ip, requestId: input.requestId, result: 'failure', detail: { workflowId } });
    await em.flush();
    if (err instanceof WorkflowFailedError) {
      const cause = (err.cause as { cause?: { type?: string; message?: string } } | undefined)?.cause;
      throw new ApiError(409, 40901, `resetting the VNC password failed: ${cause?.message ?? err.message}`, undefined, { workflow_id: workflowId, error_type: cause?.type ?? null });
    }
    rethrowMapped(err);
  }
  recordAudit(em, { actor: input.actor, action: 'allocation.vnc_reset', targetType: 'allocation', targetId: a.id, ip: input.ip, requestId: input.requestId, detail: { workflowId } });
  await em.flush();
  const after = await deps.em.fork().findOneOrFail(VncServiceSchema, { allocationId: a.id });
  return { version: after.passwordVersion, workflow_id: workflowId };
}

/**
 * (Re)starts the allocation's VNC server on its host, idempotently: `host-account/<accountId>/restart-vnc`
 * (one at a time per account: a second request while one runs is 40901). A running server is left
 * alone; a dead one (host reboot, crash) starts again. When it had to move to another display, the
 * gateway is re-synced (same public port, new upstream). Audited as `allocation.vnc_restart`.
 */
export async function restartVnc(deps: Pick<AppDeps, 'em' | 'temporal'>, input: { allocation: VncAllocation; actor: string; ip?: string; requestId?: string }) {
  const a = input.allocation;
  if (!['active', 'buffer'].includes(a.status)) throw conflict(`allocation is ${a.status}; VNC servers are restarted on active allocations`);
  const em = deps.em.fork();
  const row = await em.findOne(VncServiceSchema, { allocationId: a.id });
  if (!row || row.status !== 'running' || !a.hostAccountId) throw conflict('this allocation has no running VNC service (allocate with "vnc": true)');
  const workflowId = `host-account/${a.hostAccountId}/restart-vnc`;
  const audit = async (result: 'success' | 'failure', detail: Record<string, unknown>) => {
    recordAudit(em, { actor: input.actor, action: 'allocation.vnc_restart', targetType: 'allocation', targetId: a.id, ip: input.ip, requestId: input.requestId, result, detail: { workflowId, ...detail } });
    await em.flush();
  };
  let out: Awaited<ReturnType<typeof hostAccountOperation>>;
  try {
    out = await deps.temporal.client.workflow.execute<typeof hostAccountOperation>('hostAccountOperation', {
      workflowId,
      taskQueue: deps.temporal.taskQueue,
      ...eagerStartOptions(deps.temporal),
      args: [{ accountId: a.hostAccountId, op: 'restart-vnc' }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      typedSearchAttributes: new TypedSearchAttributes([{ key: HostIdKey, value: a.hostId }]),
      workflowExecutionTimeout: '5 minutes',
    });
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      const cause = (err.cause as { cause?: { type?: string; message?: string } } | undefined)?.cause;
      await audit('failure', { error_type: cause?.type ?? null });
      throw new ApiError(409, 40901, `restarting the VNC server failed: ${cause?.message ?? err.message}`, undefined, { workflow_id: workflowId, error_type: cause?.type ?? null });
    }
    await audit('failure', { reason: 'not started' });
    rethrowMapped(err);
  }
  const d = (out.detail ?? {}) as { state?: 'running' | 'started'; display?: number; port?: number; previousPort?: number | null; passwordRotated?: boolean; version?: number; killedHung?: boolean; staleRemoved?: number };
  const moved = d.previousPort != null && d.port !== d.previousPort;
  await audit('success', { state: d.state, display: d.display, moved, password_rotated: Boolean(d.passwordRotated) });
  const gateway = moved ? await startGatewaySync(deps, `vnc-${a.id}`, 'VNC server moved to another display', input.actor) : null;
  return {
    state: d.state ?? 'started',
    display: d.display!,
    rfb_port: d.port!,
    moved,
    killed_hung: Boolean(d.killedHung),
    stale_removed: d.staleRemoved ?? 0,
    password_rotated: Boolean(d.passwordRotated),
    password_version: d.version ?? row.passwordVersion,
    workflow_id: workflowId,
    gateway_sync: gateway?.workflow_id ?? null,
  };
}

/** The allocation's VNC service as the console shows it (no secret): status, display, whether a password waits to be revealed, the gateway address. */
export async function vncStatus(deps: Pick<AppDeps, 'em'>, a: VncAllocation) {
  const em = deps.em.fork();
  const row = await em.findOne(VncServiceSchema, { allocationId: a.id });
  if (!row) return { status: 'none' as const, display: null, rfb_port: null, password_version: 0, password_available: false, password_revealed_at: null, gateway: null };
  const entry = row.rfbPort ? await em.findOne(RemoteAccessSchema, { host: a.hostId, protocol: 'vnc', targetPort: row.rfbPort }) : null;
  return {
    status: row.status,
    display: row.display ?? null,
    rfb_port: row.rfbPort ?? null,
    password_version: row.passwordVersion,
    password_available: row.passwordCiphertext != null,
    password_revealed_at: row.passwordRevealedAt?.toISOString() ?? null,
    gateway: entry ? { domain: entry.publicDomain, port: entry.publicPort } : null,
  };
}
