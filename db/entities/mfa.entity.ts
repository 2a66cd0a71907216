import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/** Single-use recovery codes (HMAC-SHA256 under the server key; the codes are shown once). */
export const RecoveryCodeSchema = defineEntity({
  name: 'RecoveryCode',
  tableName: 'mfa_recovery_codes',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    userId: p.uuid().index(),
    codeHash: p.string().length(64).unique(),
    usedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type RecoveryCode = InferEntity<typeof RecoveryCodeSchema>;

/** A 6-digit code sent by email as a second factor (HMAC at rest, 10 minutes, single use). */
export const EmailCodeSchema = defineEntity({
  name: 'EmailCode',
  tableName: 'mfa_email_codes',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    userId: p.uuid().index(),
    codeHash: p.string().length(64),
    expiresAt: p.datetime(),
    usedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type EmailCode = InferEntity<typeof EmailCodeSchema>;
