// Host domain operations shared by routes (and usable by the CLI and tests).
import type { AppDeps } from '../../deps.js';
import { conflict, notFound } from '../../errors.js';
import { recordAudit } from '../../../db/audit.js';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { z } from '../../openapi.js';
import { HostCreate } from './schema.js';
import {
  AccountOpeningRequestSchema,
  AllocationSchema,
  HOLDING_ALLOCATION_STATUSES,
  HostAccountSchema,
  HostCredentialSchema,
  HostGroupSchema,
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

export interface ImportRowCheck {
  /** 0-based row index (the CSV's first data line is row 0). */
  row: number;
  name: string | null;
  slug: string | null;
  address: string | null;
  port: number | null;
  os: string | null;
  group: string | null;
  /** What POST /hosts/import would refuse in this row, by field (`hosts.<row>.<field>`); empty: the row imports. */
  errors: Array<{ field: string; message: string }>;
}

/**
 * Checks import rows the way POST /api/v1/hosts/import does, row by row, without writing: the
 * HostCreate schema, slugs repeated in the file or already taken, host groups that do not exist,
 * and the same machine (address + port) already registered or repeated in the file unless the row
 * sets allow_duplicate_address. Secrets are read for validation only and never echoed.
 */
export async function checkHostImport(em: SqlEntityManager, rows: unknown[], slugOf: (name: string) => string): Promise<ImportRowCheck[]> {
  const out: ImportRowCheck[] = [];
  const parsed: Array<{ i: number; h: z.infer<typeof HostCreate> }> = [];
  const s = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);
  rows.forEach((raw, i) => {
    const o = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
    const check: ImportRowCheck = { row: i, name: s(o.name), slug: s(o.slug), address: s(o.address), port: typeof o.port === 'number' ? o.port : null, os: s(o.os), group: s(o.group), errors: [] };
    const r = HostCreate.safeParse(raw);
    if (r.success) {
      parsed.push({ i, h: r.data });
      Object.assign(check, { slug: r.data.slug ?? slugOf(r.data.name), port: r.data.port, os: r.data.os });
    } else for (const issue of r.error.issues) check.errors.push({ field: `hosts.${i}.${issue.path.join('.') || 'row'}`, message: issue.message });
    out.push(check);
  });
  const err = (i: number, field: string, message: string) => out[i]!.errors.push({ field: `hosts.${i}.${field}`, message });
  const slugRow = new Map<string, number>();
  for (const { i, h } of parsed) {
    const slug = h.slug ?? slugOf(h.name);
    if (slugRow.has(slug)) err(i, 'slug', `duplicate slug "${slug}" (also row ${slugRow.get(slug)})`);
    else slugRow.set(slug, i);
  }
  if (!parsed.length) return out;
  const groups = [...new Set(parsed.map(({ h }) => h.group).filter((g): g is string => Boolean(g)))];
  const found = new Set(groups.length ? (await em.find(HostGroupSchema, { name: { $in: groups } })).map((g) => g.name) : []);
  for (const { i, h } of parsed) if (h.group && !found.has(h.group)) err(i, 'group', `host group "${h.group}" does not exist`);
  const taken = await em.find(HostSchema, { slug: { $in: [...slugRow.keys()] } }, { fields: ['id', 'slug'] });
  for (const t of taken) err(slugRow.get(t.slug)!, 'slug', `slug "${t.slug}" already exists`);
  const key = (h: { address: string; port: number }) => `${h.address.toLowerCase()}:${h.port}`;
  const checked = parsed.filter(({ h }) => !h.allow_duplicate_address);
  const existing = checked.length
    ? await em.find(HostSchema, { $or: checked.map(({ h }) => ({ address: { $ilike: h.address.replace(/[%_\\]/g, '\\$&') }, port: h.port })) }, { fields: ['id', 'slug', 'address', 'port'] })
    : [];
  const byKey = new Map(existing.map((e) => [key(e), e]));
  const seen = new Map<string, number>();
  for (const { i, h } of checked) {
    const old = byKey.get(key(h));
    if (old) err(i, 'address', `${h.address}:${h.port} is already registered as host "${old.slug}"; set allow_duplicate_address to register it again`);
    else if (seen.has(key(h))) err(i, 'address', `${h.address}:${h.port} is also row ${seen.get(key(h))}`);
    else seen.set(key(h), i);
  }
  return out;
}
