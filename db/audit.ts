import type { SqlEntityManager } from '@mikro-orm/sql';
import { AuditEventSchema } from './entities/index.js';

export interface AuditInput {
  actor: string;
  action: string;
  targetType: string;
  targetId: string;
  result?: 'success' | 'failure';
  ip?: string | null;
  requestId?: string | null;
  detail?: Record<string, unknown> | null;
}

/** Appends an audit event in the given EntityManager's transaction (flushes with it). */
export function recordAudit(em: SqlEntityManager, e: AuditInput): void {
  em.create(AuditEventSchema, {
    actor: e.actor,
    action: e.action,
    targetType: e.targetType,
    targetId: e.targetId,
    result: e.result ?? 'success',
    ip: e.ip ?? null,
    requestId: e.requestId ?? null,
    detail: e.detail ?? null,
  });
}
