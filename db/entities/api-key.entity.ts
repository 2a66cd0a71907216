import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import type { Role } from './user.entity.js';

/** A named key for automation: shown once, stored as SHA-256, acting with a subset of its owner's roles. */
export const ApiKeySchema = defineEntity({
  name: 'ApiKey',
  tableName: 'api_keys',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    userId: p.uuid().index(),
    name: p.string().length(100),
    /** First characters of the key, for recognising it in lists (not enough to use it). */
    prefix: p.string().length(16),
    keyHash: p.string().length(64).unique(),
    /** Roles the key acts with; at use time intersected with the owner's current roles. */
    roles: p.json<Role[]>(),
    expiresAt: p.datetime().nullable(),
    lastUsedAt: p.datetime().nullable(),
    lastUsedIp: p.string().length(64).nullable(),
    revokedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type ApiKey = InferEntity<typeof ApiKeySchema>;
