import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/** Hashes of a user's previous passwords (the policy refuses the last N). */
export const PasswordHistorySchema = defineEntity({
  name: 'PasswordHistory',
  tableName: 'password_history',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    userId: p.uuid().index(),
    passwordHash: p.string().length(200),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type PasswordHistory = InferEntity<typeof PasswordHistorySchema>;
