import { randomUUID } from 'node:crypto';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { AuditEventSchema, type AuditActorType } from '../entities/index.js';
import { contentHash, jsonNormal } from './chain.js';
import { auditScope } from './context.js';

export interface AuditInput {
  /** Display name; defaults to the current request's / activity's actor. */
  actor?: string;
  actorType?: AuditActorType;
  actorId?: string | null;
  action: string;
  targetType: string;
  targetId: string;
  result?: 'success' | 'failure';
  reason?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  requestId?: string | null;
  /** Data changes: the changed fields before and after (see changes()). */
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
  detail?: Record<string, unknown> | null;
  at?: Date;
}

/** Keys whose values never enter the audit trail, at any depth. */
const SECRET_KEY = /pass(word)?|secret|token|private_?key|credential|totp|recovery|otp|cookie|authorization|ciphertext|seed/i;

/** Replaces the values of secret-looking keys with "[redacted]" (defence in depth: callers pass no secrets). */
export function redactSecrets<T>(v: T): T {
  if (Array.isArray(v)) return v.map(redactSecrets) as T;
  if (v && typeof v === 'object' && !(v instanceof Date)) {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, SECRET_KEY.test(k) && x !== null && typeof x !== 'boolean' ? '[redacted]' : redactSecrets(x)])) as T;
  }
  return v;
}

/** The fields of `before`/`after` that differ (only those are recorded), or null when nothing changed. */
export function changes<T extends Record<string, unknown>>(before: Partial<T> | null, after: Partial<T> | null, fields: readonly (keyof T & string)[]): { before: Record<string, unknown> | null; after: Record<string, unknown> | null } {
  if (!before) return { before: null, after: after ? Object.fromEntries(fields.filter((f) => after[f] !== undefined).map((f) => [f, after[f]])) : null };
  if (!after) return { before: Object.fromEntries(fields.filter((f) => before[f] !== undefined).map((f) => [f, before[f]])), after: null };
  const changed = fields.filter((f) => JSON.stringify(before[f] ?? null) !== JSON.stringify(after[f] ?? null));
  if (!changed.length) return { before: null, after: null };
  return { before: Object.fromEntries(changed.map((f) => [f, before[f] ?? null])), after: Object.fromEntries(changed.map((f) => [f, after[f] ?? null])) };
}

const cut = (s: string | null | undefined, n: number) => (s == null ? null : s.replace(/\0/g, '').slice(0, n));

/** The row recordAudit would insert (content hash computed; seq and chain links come from the trigger). */
export function auditRow(e: AuditInput) {
  const ctx = auditScope.getStore()?.actor();
  const row = {
    id: randomUUID(),
    at: e.at ?? new Date(),
    actor: cut(e.actor ?? ctx?.actor ?? 'system', 100)!,
    actorType: e.actorType ?? (e.actor && ctx && e.actor !== ctx.actor ? 'user' : ctx?.actorType) ?? (e.actor ? 'user' : 'system'),
    actorId: cut(e.actorId !== undefined ? e.actorId : e.actor && ctx && e.actor !== ctx.actor ? null : (ctx?.actorId ?? null), 200),
    action: cut(e.action, 100)!,
    targetType: cut(e.targetType, 50)!,
    targetId: cut(e.targetId, 200)!,
    result: e.result ?? 'success',
    reason: cut(e.reason, 500),
    ip: cut(e.ip !== undefined ? e.ip : ctx?.ip, 64),
    userAgent: cut(e.userAgent !== undefined ? e.userAgent : ctx?.userAgent, 255),
    requestId: cut(e.requestId !== undefined ? e.requestId : ctx?.requestId, 64),
    before: jsonNormal(redactSecrets(e.before ?? null)),
    after: jsonNormal(redactSecrets(e.after ?? null)),
    detail: jsonNormal(redactSecrets(e.detail ?? null)),
  } as const;
  return { ...row, contentHash: contentHash(row) };
}

/**
 * Appends an audit event in the given EntityManager's transaction (flushes with it), so a data
 * change and its audit row commit or roll back together. What the caller leaves out (actor id and
 * type, IP, user agent, request id) comes from the current request or activity (auditScope).
 */
export function recordAudit(em: SqlEntityManager, e: AuditInput): void {
  em.create(AuditEventSchema, { ...auditRow(e), seq: null, prevHash: null, hash: null });
}

/** Appends and commits on its own fork (for callers outside a unit of work: middleware, executors). */
export async function appendAudit(em: SqlEntityManager, e: AuditInput): Promise<void> {
  const fork = em.fork();
  recordAudit(fork, e);
  await fork.flush();
}
