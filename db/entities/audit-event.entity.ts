import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { TRIGGER_DDL } from '../audit/chain.js';

export const AUDIT_ACTOR_TYPES = ['user', 'api_key', 'system', 'anonymous'] as const;
export type AuditActorType = (typeof AUDIT_ACTOR_TYPES)[number];

/**
 * Append-only, hash-chained record of who did what to which target (db/audit/). `seq`, `prevHash`
 * and `hash` are assigned by the database trigger `audit_events_chain` under the chain-head row
 * lock, whatever the inserting code passes; `contentHash` is computed by recordAudit. UPDATE and
 * DELETE are refused by a trigger (only the archiver may delete archived rows).
 */
export const AuditEventSchema = defineEntity({
  name: 'AuditEvent',
  tableName: 'audit_events',
  indexes: [{ properties: ['at', 'id'] }],
  // Installed by the audit_chain migration (db/audit/chain.ts); declared so the schema diff knows them.
  triggers: [
    { name: 'audit_events_chain', timing: 'before', events: ['insert'], expression: TRIGGER_DDL.chain },
    { name: 'audit_events_guard', timing: 'before', events: ['update', 'delete'], expression: TRIGGER_DDL.guard },
  ],
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    seq: p.bigint('number').nullable().unique(),
    at: p.datetime().onCreate(() => new Date()).index(),
    /** Display name: the username, or `system:<workflowId>`. */
    actor: p.string().length(100),
    actorType: p.enum(AUDIT_ACTOR_TYPES).default('user'),
    /** User id, API key id, or the workflow id for `system`. */
    actorId: p.string().length(200).nullable().index(),
    action: p.string().length(100).index(),
    targetType: p.string().length(50),
    targetId: p.string().length(200).index(),
    result: p.enum(['success', 'failure'] as const),
    reason: p.string().length(500).nullable(),
    ip: p.string().length(64).nullable(),
    userAgent: p.string().length(255).nullable(),
    requestId: p.string().length(64).nullable(),
    before: p.json<Record<string, unknown>>().nullable(),
    after: p.json<Record<string, unknown>>().nullable(),
    detail: p.json<Record<string, unknown>>().nullable(),
    contentHash: p.string().length(64),
    prevHash: p.string().length(64).nullable(),
    hash: p.string().length(64).nullable(),
  },
});

export type AuditEvent = InferEntity<typeof AuditEventSchema>;

/** The chain head (one row, id 1): last seq and hash, and where the archived part of the chain ends. */
export const AuditChainSchema = defineEntity({
  name: 'AuditChain',
  tableName: 'audit_chain',
  triggers: [{ name: 'audit_chain_guard', timing: 'before', events: ['update', 'delete'], expression: TRIGGER_DDL.chainGuard }],
  properties: {
    id: p.integer().primary().autoincrement(false),
    seq: p.bigint('number'),
    hash: p.string().length(64),
    archivedSeq: p.bigint('number').default(0),
    archivedHash: p.string().length(64),
  },
});
export type AuditChain = InferEntity<typeof AuditChainSchema>;

/** One archive cut: rows firstSeq..lastSeq were written to `file` (gzip JSON lines), then deleted. */
export const AuditArchiveSchema = defineEntity({
  name: 'AuditArchive',
  tableName: 'audit_archives',
  triggers: [{ name: 'audit_archives_guard', timing: 'before', events: ['update', 'delete'], expression: TRIGGER_DDL.archivesGuard }],
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    firstSeq: p.bigint('number'),
    lastSeq: p.bigint('number'),
    /** prev_hash of the first archived row (the head of the previous cut). */
    prevHash: p.string().length(64),
    /** hash of the last archived row: the next live row's prev_hash. */
    headHash: p.string().length(64),
    rows: p.integer(),
    file: p.string().length(500),
    fileSha256: p.string().length(64),
    before: p.datetime(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type AuditArchive = InferEntity<typeof AuditArchiveSchema>;

export const SECURITY_EVENT_KINDS = ['login_failures', 'new_ip_login', 'off_hours_access', 'refresh_token_reuse', 'repeated_forbidden'] as const;
export type SecurityEventKind = (typeof SECURITY_EVENT_KINDS)[number];

/** Raised by the alert rules (db/audit/security-rules.ts); delivered as notifications by the `security-alerts` Schedule. */
export const SecurityEventSchema = defineEntity({
  name: 'SecurityEvent',
  tableName: 'security_events',
  indexes: [
    { properties: ['at', 'id'] },
    { name: 'security_events_undelivered_index', expression: `create index "security_events_undelivered_index" on "security_events" ("at") where "notified_at" is null` },
  ],
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    at: p.datetime().onCreate(() => new Date()).index(),
    kind: p.enum(SECURITY_EVENT_KINDS).index(),
    severity: p.enum(['low', 'medium', 'high'] as const),
    userId: p.uuid().nullable().index(),
    username: p.string().length(64).nullable(),
    ip: p.string().length(64).nullable(),
    /** Same rule, same subject, same window → one row (unique). */
    dedupKey: p.string().length(300).unique(),
    detail: p.json<Record<string, unknown>>().nullable(),
    acknowledgedAt: p.datetime().nullable(),
    /** Handed to the notification center (events security.<kind>); null: still to be delivered. */
    notifiedAt: p.datetime().nullable(),
  },
});
export type SecurityEvent = InferEntity<typeof SecurityEventSchema>;
