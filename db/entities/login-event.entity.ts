import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const LOGIN_EVENT_KINDS = [
  'login_success',
  'login_failure',
  'login_locked',
  'mfa_required',
  'mfa_failure',
  'mfa_success',
  'refresh_reuse',
  'logout',
  'session_revoked',
  'password_changed',
  'password_reset_requested',
  'password_reset',
  'unlock',
] as const;
export type LoginEventKind = (typeof LOGIN_EVENT_KINDS)[number];

/** Login history and security events (read by the audit trail). Never holds a secret. */
export const LoginEventSchema = defineEntity({
  name: 'LoginEvent',
  tableName: 'login_events',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    kind: p.enum(LOGIN_EVENT_KINDS).index(),
    /** The account, when the username exists. */
    userId: p.uuid().nullable().index(),
    /** The username as typed (truncated), also for unknown ones. */
    username: p.string().length(64).nullable(),
    sessionId: p.uuid().nullable(),
    ip: p.string().length(64).nullable(),
    userAgent: p.string().length(255).nullable(),
    /** e.g. bad_credentials, account_locked, ip_locked, bad_mfa_code, disabled. */
    reason: p.string().length(64).nullable(),
    securityEvent: p.boolean().default(false),
    createdAt: p.datetime().onCreate(() => new Date()).index(),
  },
});
export type LoginEvent = InferEntity<typeof LoginEventSchema>;

/**
 * Failed-login counters, one row per (scope, subject): scope `account` keyed by the lowercased
 * username (existing or not, so a lock reveals nothing), scope `ip` keyed by the source address.
 */
export const LoginLockSchema = defineEntity({
  name: 'LoginLock',
  tableName: 'login_locks',
  uniques: [{ properties: ['scope', 'subject'] }],
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    scope: p.enum(['account', 'ip'] as const),
    subject: p.string().length(64),
    failures: p.integer().default(0),
    windowStartedAt: p.datetime(),
    lockedUntil: p.datetime().nullable(),
  },
});
export type LoginLock = InferEntity<typeof LoginLockSchema>;
