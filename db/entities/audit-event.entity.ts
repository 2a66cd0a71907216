import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/** Append-only record of who did what to which target. */
export const AuditEventSchema = defineEntity({
  name: 'AuditEvent',
  tableName: 'audit_events',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    at: p.datetime().onCreate(() => new Date()).index(),
    actor: p.string().length(100),
    action: p.string().length(100).index(),
    targetType: p.string().length(50),
    targetId: p.string().length(100).index(),
    result: p.enum(['success', 'failure'] as const),
    ip: p.string().length(64).nullable(),
    requestId: p.string().length(64).nullable(),
    detail: p.json<Record<string, unknown>>().nullable(),
  },
});

export type AuditEvent = InferEntity<typeof AuditEventSchema>;
