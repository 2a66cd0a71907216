import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const SESSION_RESTRICTIONS = ['password_change', 'mfa_enrollment'] as const;
export type SessionRestriction = (typeof SESSION_RESTRICTIONS)[number];

/**
 * One login (a device). Every request with an access token looks its session up by id, so a
 * logout, a kick-out or an idle timeout takes effect on the very next request.
 */
export const SessionSchema = defineEntity({
  name: 'Session',
  tableName: 'sessions',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    userId: p.uuid().index(),
    userAgent: p.string().length(255).nullable(),
    ip: p.string().length(64).nullable(),
    /** Last successful MFA check in this session (login with a second factor or a step-up). */
    mfaAt: p.datetime().nullable(),
    /** A restricted session may only do what lifts the restriction (change the password, enrol MFA). */
    restricted: p.enum(SESSION_RESTRICTIONS).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    lastSeenAt: p.datetime(),
    revokedAt: p.datetime().nullable(),
    /** logout, kicked, idle, evicted, refresh_reuse, password_changed, disabled */
    revokeReason: p.string().length(32).nullable(),
  },
});
export type Session = InferEntity<typeof SessionSchema>;

/** Refresh tokens of a session (its family): each is used once; presenting a used one revokes the session. */
export const RefreshTokenSchema = defineEntity({
  name: 'RefreshToken',
  tableName: 'refresh_tokens',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    sessionId: p.uuid().index(),
    tokenHash: p.string().length(64).unique(),
    expiresAt: p.datetime(),
    usedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type RefreshToken = InferEntity<typeof RefreshTokenSchema>;
