// API keys for automation: named, shown once, stored as SHA-256, a subset of the owner's roles,
// optional expiry, last use recorded by the authentication middleware, revocable.
import type { SqlEntityManager } from '@mikro-orm/sql';
import { ApiKeySchema, UserSchema, type ApiKey, type Role } from '../../../db/entities/index.js';
import { conflict, notFound, validationError } from '../../errors.js';
import { newApiKey, sha256 } from '../auth/tokens.js';

export interface ApiKeyCreate {
  userId: string;
  name: string;
  /** Defaults to all the owner's roles. */
  roles?: Role[];
  expiresAt?: Date | null;
  now?: Date;
}

export async function createApiKey(em: SqlEntityManager, input: ApiKeyCreate): Promise<{ key: string; row: ApiKey }> {
  const fork = em.fork();
  const owner = await fork.findOne(UserSchema, { id: input.userId, disabledAt: null });
  if (!owner) throw notFound('user');
  const roles = [...new Set(input.roles ?? owner.roles)];
  const extra = roles.filter((r) => !owner.roles.includes(r));
  if (extra.length) throw validationError([{ field: 'roles', message: `not roles of the owner: ${extra.join(', ')}` }]);
  if (input.expiresAt && input.expiresAt <= (input.now ?? new Date())) throw validationError([{ field: 'expires_at', message: 'must be in the future' }]);
  const key = newApiKey();
  const row = fork.create(ApiKeySchema, { userId: owner.id, name: input.name, prefix: key.slice(0, 10), keyHash: sha256(key), roles, expiresAt: input.expiresAt ?? null });
  await fork.flush();
  return { key, row };
}

export async function listApiKeys(em: SqlEntityManager, userId?: string): Promise<ApiKey[]> {
  return em.fork().find(ApiKeySchema, userId ? { userId } : {}, { orderBy: { createdAt: 'desc', id: 'asc' } });
}

/** Revokes a key (the owner's own when ownerId is given). Effective on the next request. */
export async function revokeApiKey(em: SqlEntityManager, input: { id: string; ownerId?: string; now?: Date }): Promise<ApiKey> {
  const fork = em.fork();
  const row = await fork.findOne(ApiKeySchema, { id: input.id, ...(input.ownerId ? { userId: input.ownerId } : {}) });
  if (!row) throw notFound('api key');
  if (row.revokedAt) throw conflict('api key already revoked');
  row.revokedAt = input.now ?? new Date();
  await fork.flush();
  return row;
}

export const apiKeyDto = (k: ApiKey) => ({
  id: k.id,
  user_id: k.userId,
  name: k.name,
  prefix: k.prefix,
  roles: k.roles,
  expires_at: k.expiresAt?.toISOString() ?? null,
  last_used_at: k.lastUsedAt?.toISOString() ?? null,
  last_used_ip: k.lastUsedIp ?? null,
  revoked_at: k.revokedAt?.toISOString() ?? null,
  created_at: k.createdAt.toISOString(),
});
