// Host domain operations shared by routes (and usable by the CLI and tests).
import type { AppDeps } from '../../deps.js';
import { conflict, notFound } from '../../errors.js';
import { recordAudit } from '../../../db/audit.js';
import {
  AccountOpeningRequestSchema,
  AllocationSchema,
  HOLDING_ALLOCATION_STATUSES,
  HostAccountSchema,
  HostCredentialSchema,
  HostSchema,
  RemoteAccessSchema,
} from '../../../db/entities/index.js';

export interface RetireResult {
  id: string;
  slug: string;
  /** The row is gone (nothing referred to it); otherwise it stays, offline and without credentials, for the history that refers to it. */
  deleted: boolean;
}

/**
 * Retires a host: refused (40901) while an allocation holds it, its `host-lock/<hostId>` workflow
 * runs, or an account request or a managed account on it is still open. Its credentials are deleted
 * either way; the row is deleted when no record refers to it, else kept as `offline`. Audited.
 */
export async function retireHost(deps: Pick<AppDeps, 'em' | 'temporal'>, input: { hostId: string; actor: string; ip?: string; requestId?: string }): Promise<RetireResult> {
  const em = deps.em.fork();
  const host = await em.findOne(HostSchema, { id: input.hostId });
  if (!host) throw notFound('host');
  const [holding, openRequests, liveAccounts] = await Promise.all([
    em.count(AllocationSchema, { host: host.id, status: { $in: [...HOLDING_ALLOCATION_STATUSES] } }),
    em.count(AccountOpeningRequestSchema, { host: host.id, status: { $in: ['pending', 'approved', 'provisioning'] } }),
    em.count(HostAccountSchema, { host: host.id, status: { $ne: 'deleted' } }),
  ]);
  if (holding) throw conflict(`host ${host.slug} is allocated (${holding} allocation(s) hold it); reclaim or terminate first`);
  if (await lockRunning(deps, host.id)) throw conflict(`host ${host.slug} is locked (host-lock/${host.id} is running)`);
  if (openRequests) throw conflict(`host ${host.slug} has ${openRequests} open account request(s)`);
  if (liveAccounts) throw conflict(`host ${host.slug} still has ${liveAccounts} managed account(s); delete them first`);
  const before = { slug: host.slug, address: host.address, port: host.port, status: host.status };
  const [allocations, requests, accounts] = await Promise.all([
    em.count(AllocationSchema, { host: host.id }),
    em.count(AccountOpeningRequestSchema, { host: host.id }),
    em.count(HostAccountSchema, { host: host.id }),
  ]);
  const deleted = allocations + requests + accounts === 0;
  await em.transactional(async (tx) => {
    await tx.nativeDelete(HostCredentialSchema, { host: host.id });
    // A retired host gives its public ports back to the pool (a deleted row cascades anyway).
    await tx.nativeDelete(RemoteAccessSchema, { host: host.id });
    if (deleted) await tx.nativeDelete(HostSchema, { id: host.id });
    else await tx.nativeUpdate(HostSchema, { id: host.id }, { status: 'offline' });
    recordAudit(tx, { actor: input.actor, action: 'host.retire', targetType: 'host', targetId: host.id, ip: input.ip, requestId: input.requestId, detail: { before, after: deleted ? null : { status: 'offline', credentials: 'deleted' } } });
  });
  return { id: host.id, slug: host.slug, deleted };
}

async function lockRunning(deps: Pick<AppDeps, 'temporal'>, hostId: string): Promise<boolean> {
  try {
    const d = await deps.temporal.client.workflow.getHandle(`host-lock/${hostId}`).describe();
    return d.status.name === 'RUNNING';
  } catch (err) {
    if ((err as Error).name === 'WorkflowNotFoundError') return false;
    throw err;
  }
}
