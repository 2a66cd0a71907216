// Reading the audit trail: filters, keyset pages (cursor on (at, id)) and batched streaming.
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { FilterQuery } from '@mikro-orm/core';
import { AuditEventSchema, type AuditEvent } from '../entities/index.js';
import { readRows } from '../read.js';

export interface AuditFilter {
  /** Matches the actor's display name or id (user id, API key id, workflow id). */
  actor?: string;
  action?: string;
  targetType?: string;
  targetId?: string;
  result?: 'success' | 'failure';
  from?: Date;
  to?: Date;
}

export interface Cursor {
  at: Date;
  id: string;
}

export const encodeCursor = (c: Cursor) => Buffer.from(`${c.at.getTime()}_${c.id}`).toString('base64url');
export function decodeCursor(s: string): Cursor | null {
  const m = /^(\d{1,16})_([0-9a-f-]{36})$/.exec(Buffer.from(s, 'base64url').toString());
  return m ? { at: new Date(Number(m[1])), id: m[2]! } : null;
}

export function auditWhere(f: AuditFilter): FilterQuery<AuditEvent> {
  const w: Record<string, unknown> = {};
  if (f.actor) w.$or = [{ actor: f.actor }, { actorId: f.actor }];
  if (f.action) w.action = f.action.endsWith('*') ? { $like: `${f.action.slice(0, -1).replace(/[%_\\]/g, '\\$&')}%` } : f.action;
  if (f.targetType) w.targetType = f.targetType;
  if (f.targetId) w.targetId = f.targetId;
  if (f.result) w.result = f.result;
  if (f.from || f.to) w.at = { ...(f.from ? { $gte: f.from } : {}), ...(f.to ? { $lt: f.to } : {}) };
  return w as FilterQuery<AuditEvent>;
}

/** Keyset condition: strictly after (asc) / before (desc) the cursor in (at, id) order. */
function keyset(c: Cursor | null | undefined, dir: 'asc' | 'desc'): FilterQuery<AuditEvent> {
  if (!c) return {};
  const op = dir === 'asc' ? '$gt' : '$lt';
  return { $or: [{ at: { [op]: c.at } }, { at: c.at, id: { [op]: c.id } }] } as FilterQuery<AuditEvent>;
}

/** One page, newest first; `nextCursor` is null on the last page. */
export async function listAudit(em: SqlEntityManager, f: AuditFilter, opts: { limit: number; cursor?: Cursor | null }) {
  const rows = await readRows<AuditEvent>(em.fork(), AuditEventSchema, { $and: [auditWhere(f), keyset(opts.cursor, 'desc')] }, {
    orderBy: [{ at: 'desc' }, { id: 'desc' }],
    limit: opts.limit + 1,
  });
  const more = rows.length > opts.limit;
  const items = rows.slice(0, opts.limit);
  const last = items[items.length - 1];
  return { items, nextCursor: more && last ? encodeCursor({ at: last.at, id: last.id }) : null };
}

/**
 * Every matching row in (at, id) order, read in keyset batches on a fresh fork per batch (nothing
 * accumulates in an identity map): memory stays at one batch whatever the total. Works the same on
 * PGlite and PostgreSQL.
 */
export async function* streamAudit(em: SqlEntityManager, f: AuditFilter, batch = 2000): AsyncGenerator<AuditEvent> {
  let cursor: Cursor | null = null;
  const where = auditWhere(f);
  for (;;) {
    const rows: AuditEvent[] = await em.fork().find(AuditEventSchema, { $and: [where, keyset(cursor, 'asc')] } as FilterQuery<AuditEvent>, {
      orderBy: [{ at: 'asc' }, { id: 'asc' }],
      limit: batch,
      disableIdentityMap: true,
    });
    for (const r of rows) yield r;
    if (rows.length < batch) return;
    const last = rows[rows.length - 1]!;
    cursor = { at: last.at, id: last.id };
  }
}

export const AUDIT_CSV_COLUMNS = ['seq', 'at', 'actor', 'actor_type', 'actor_id', 'action', 'target_type', 'target_id', 'result', 'reason', 'ip', 'user_agent', 'request_id', 'before', 'after', 'detail', 'hash'] as const;

export function auditDto(e: AuditEvent) {
  return {
    id: e.id,
    // A bigint column: a number from the entity mapper, a string from plain query-builder rows.
    seq: e.seq === null || e.seq === undefined ? null : Number(e.seq),
    at: e.at.toISOString(),
    actor: e.actor,
    actor_type: e.actorType,
    actor_id: e.actorId ?? null,
    action: e.action,
    target_type: e.targetType,
    target_id: e.targetId,
    result: e.result,
    reason: e.reason ?? null,
    ip: e.ip ?? null,
    user_agent: e.userAgent ?? null,
    request_id: e.requestId ?? null,
    before: e.before ?? null,
    after: e.after ?? null,
    detail: e.detail ?? null,
    prev_hash: e.prevHash ?? null,
    hash: e.hash ?? null,
  };
}

const csvCell = (v: unknown): string => {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  // Quote always when needed; a leading = + - @ is prefixed so spreadsheets do not run it as a formula.
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
};

export function auditCsvLine(e: AuditEvent): string {
  const d = auditDto(e) as Record<string, unknown>;
  return AUDIT_CSV_COLUMNS.map((c) => csvCell(d[c])).join(',') + '\n';
}

/** An export row: the DTO's fields with before/after/detail kept as the database's JSON text. */
export interface AuditExportRow {
  seq: string | number | null;
  at: string;
  actor: string;
  actor_type: string;
  actor_id: string | null;
  action: string;
  target_type: string;
  target_id: string;
  result: string;
  reason: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  before: string | null;
  after: string | null;
  detail: string | null;
  prev_hash: string | null;
  hash: string | null;
  id: string;
}

function filterSql(f: AuditFilter): { sql: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, ...values: unknown[]) => {
    parts.push(sql);
    params.push(...values);
  };
  if (f.actor) add('("actor" = ? or "actor_id" = ?)', f.actor, f.actor);
  if (f.action?.endsWith('*')) add(`"action" like ? escape '\\'`, `${f.action.slice(0, -1).replace(/[%_\\]/g, '\\$&')}%`);
  else if (f.action) add('"action" = ?', f.action);
  if (f.targetType) add('"target_type" = ?', f.targetType);
  if (f.targetId) add('"target_id" = ?', f.targetId);
  if (f.result) add('"result" = ?', f.result);
  if (f.from) add('"at" >= ?', f.from);
  if (f.to) add('"at" < ?', f.to);
  return { sql: parts.join(' and '), params };
}

/**
 * The export's read path: raw keyset batches in (at, id) order, no entity hydration, timestamps
 * formatted and JSON columns returned as text by the database (nothing parsed and re-serialised).
 * One batch in memory at a time, on PGlite and PostgreSQL alike.
 */
export async function* streamAuditRows(em: SqlEntityManager, f: AuditFilter, batch = 5000): AsyncGenerator<AuditExportRow[]> {
  const conn = em.getConnection();
  const where = filterSql(f);
  let cursor: { at: string; id: string } | null = null;
  for (;;) {
    const conds = [where.sql, cursor ? '("at", "id") > (?::timestamptz, ?::uuid)' : ''].filter(Boolean);
    const params = [...where.params, ...(cursor ? [cursor.at, cursor.id] : []), batch];
    const rows = (await conn.execute(
      `select "id", "seq", to_char("at" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "at", "at"::text as "at_raw", "actor", "actor_type", "actor_id", "action", "target_type", "target_id", "result", "reason", "ip", "user_agent", "request_id", "before"::text as "before", "after"::text as "after", "detail"::text as "detail", "prev_hash", "hash"
       from "audit_events" ${conds.length ? `where ${conds.join(' and ')}` : ''} order by "at", "id" limit ?`,
      params,
      'all',
    )) as Array<AuditExportRow & { at_raw: string }>;
    if (rows.length) yield rows;
    if (rows.length < batch) return;
    const last = rows[rows.length - 1]!;
    cursor = { at: last.at_raw, id: last.id };
  }
}

export function exportCsvLine(r: AuditExportRow): string {
  return AUDIT_CSV_COLUMNS.map((c) => csvText(r[c] === null || r[c] === undefined ? '' : String(r[c]))).join(',') + '\n';
}

const csvText = (s: string): string => {
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
};

const js = (s: string | null) => (s === null ? 'null' : JSON.stringify(s));
export function exportJson(r: AuditExportRow): string {
  return `{"id":${js(r.id)},"seq":${r.seq === null ? 'null' : Number(r.seq)},"at":${js(r.at)},"actor":${js(r.actor)},"actor_type":${js(r.actor_type)},"actor_id":${js(r.actor_id)},"action":${js(r.action)},"target_type":${js(r.target_type)},"target_id":${js(r.target_id)},"result":${js(r.result)},"reason":${js(r.reason)},"ip":${js(r.ip)},"user_agent":${js(r.user_agent)},"request_id":${js(r.request_id)},"before":${r.before ?? 'null'},"after":${r.after ?? 'null'},"detail":${r.detail ?? 'null'},"prev_hash":${js(r.prev_hash)},"hash":${js(r.hash)}}`;
}
