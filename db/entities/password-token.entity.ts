import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const PASSWORD_TOKEN_PURPOSES = ['reset', 'activation'] as const;
export type PasswordTokenPurpose = (typeof PASSWORD_TOKEN_PURPOSES)[number];

/**
 * A single-use token that lets its holder set a user's password: a reset link (30 min) or an
 * activation link sent when a registration or invitation is activated. Only the SHA-256 of the
 * token is stored; the token itself exists only in the email that carries it.
 */
export const PasswordTokenSchema = defineEntity({
  name: 'PasswordToken',
  tableName: 'password_tokens',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    userId: p.uuid().index(),
    purpose: p.enum(() => [...PASSWORD_TOKEN_PURPOSES]),
    tokenHash: p.string().length(64).unique(),
    expiresAt: p.datetime(),
    usedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});

export type PasswordToken = InferEntity<typeof PasswordTokenSchema>;
