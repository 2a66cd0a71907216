import type { Response } from 'express';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { FilterQuery } from '@mikro-orm/core';
import { LoginEventSchema, SecurityEventSchema, type LoginEvent, type SecurityEvent } from '../../../db/entities/index.js';
import { AUDIT_CSV_COLUMNS, decodeCursor, encodeCursor, exportCsvLine, exportJson, streamAuditRows, type AuditFilter, type Cursor } from '../../../db/audit/query.js';
import { validationError } from '../../errors.js';

export function parseCursor(s: string | undefined): Cursor | null {
  if (!s) return null;
  const c = decodeCursor(s);
  if (!c) throw validationError([{ field: 'cursor', message: 'not a cursor returned by this endpoint' }]);
  return c;
}

/** Waits for the socket to drain when the response buffer is full (backpressure: constant memory). */
const write = (res: Response, s: string) => (res.write(s) ? Promise.resolve() : new Promise<void>((resolve) => res.once('drain', resolve)));

/** Streams the matching rows as CSV or a JSON array, batch by batch from the database. */
export async function streamExport(em: SqlEntityManager, res: Response, f: AuditFilter, format: 'csv' | 'json'): Promise<number> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  res.statusCode = 200;
  res.setHeader('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8');
  res.setHeader('content-disposition', `attachment; filename="audit-${stamp}.${format}"`);
  let n = 0;
  if (format === 'csv') await write(res, AUDIT_CSV_COLUMNS.join(',') + '\n');
  else await write(res, '[');
  let chunk = '';
  for await (const rows of streamAuditRows(em, f)) {
    for (const e of rows) {
      chunk += format === 'csv' ? exportCsvLine(e) : `${n ? ',' : ''}\n${exportJson(e)}`;
      n++;
      if (chunk.length > 64 * 1024) {
        await write(res, chunk);
        chunk = '';
      }
    }
  }
  if (format === 'json') chunk += '\n]\n';
  if (chunk) await write(res, chunk);
  res.end();
  return n;
}

function keysetWhere(c: Cursor | null, atField: 'createdAt' | 'at') {
  return c ? { $or: [{ [atField]: { $lt: c.at } }, { [atField]: c.at, id: { $lt: c.id } }] } : {};
}

export async function listLoginEvents(em: SqlEntityManager, q: { user_id?: string; username?: string; kind?: LoginEvent['kind']; from?: Date; to?: Date; limit: number; cursor?: string }) {
  const c = parseCursor(q.cursor);
  const w: Record<string, unknown> = {};
  if (q.user_id) w.userId = q.user_id;
  if (q.username) w.username = q.username;
  if (q.kind) w.kind = q.kind;
  if (q.from || q.to) w.createdAt = { ...(q.from ? { $gte: q.from } : {}), ...(q.to ? { $lt: q.to } : {}) };
  const rows = await em.fork().find(LoginEventSchema, { $and: [w, keysetWhere(c, 'createdAt')] } as FilterQuery<LoginEvent>, { orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], limit: q.limit + 1 });
  const items = rows.slice(0, q.limit);
  const last = items[items.length - 1];
  return {
    items: items.map((e) => ({ id: e.id, at: e.createdAt.toISOString(), kind: e.kind, user_id: e.userId ?? null, username: e.username ?? null, session_id: e.sessionId ?? null, ip: e.ip ?? null, user_agent: e.userAgent ?? null, reason: e.reason ?? null, security_event: e.securityEvent })),
    next_cursor: rows.length > q.limit && last ? encodeCursor({ at: last.createdAt, id: last.id }) : null,
  };
}

export async function listSecurityEvents(em: SqlEntityManager, q: { kind?: SecurityEvent['kind']; user_id?: string; from?: Date; to?: Date; limit: number; cursor?: string }) {
  const c = parseCursor(q.cursor);
  const w: Record<string, unknown> = {};
  if (q.kind) w.kind = q.kind;
  if (q.user_id) w.userId = q.user_id;
  if (q.from || q.to) w.at = { ...(q.from ? { $gte: q.from } : {}), ...(q.to ? { $lt: q.to } : {}) };
  const rows = await em.fork().find(SecurityEventSchema, { $and: [w, keysetWhere(c, 'at')] } as FilterQuery<SecurityEvent>, { orderBy: [{ at: 'desc' }, { id: 'desc' }], limit: q.limit + 1 });
  const items = rows.slice(0, q.limit);
  const last = items[items.length - 1];
  return {
    items: items.map((e) => ({ id: e.id, at: e.at.toISOString(), kind: e.kind, severity: e.severity, user_id: e.userId ?? null, username: e.username ?? null, ip: e.ip ?? null, detail: e.detail ?? null })),
    next_cursor: rows.length > q.limit && last ? encodeCursor({ at: last.at, id: last.id }) : null,
  };
}
