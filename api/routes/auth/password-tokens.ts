// Single-use password-setting tokens (reset and activation links). Shared by the auth routes,
// the registration workflow's activation activity and the CLI.
import { createHash, randomBytes } from 'node:crypto';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { PasswordTokenSchema, type PasswordTokenPurpose } from '../../../db/entities/index.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Issues a token; earlier unused tokens of the same purpose for the user stop working. */
export async function issuePasswordToken(
  em: SqlEntityManager,
  input: { userId: string; purpose: PasswordTokenPurpose; ttlMinutes: number; now?: Date },
): Promise<{ token: string; expiresAt: Date }> {
  const now = input.now ?? new Date();
  const token = `pt_${randomBytes(32).toString('base64url')}`;
  const expiresAt = new Date(now.getTime() + input.ttlMinutes * 60_000);
  const fork = em.fork();
  await fork.nativeUpdate(PasswordTokenSchema, { userId: input.userId, purpose: input.purpose, usedAt: null }, { usedAt: now });
  fork.create(PasswordTokenSchema, { userId: input.userId, purpose: input.purpose, tokenHash: sha256(token), expiresAt });
  await fork.flush();
  return { token, expiresAt };
}

/**
 * Consumes a token atomically: returns the user id once, for an unexpired, unused token of that
 * purpose; null otherwise (the caller answers the same way for every null).
 */
export async function consumePasswordToken(
  em: SqlEntityManager,
  token: string,
  purpose: PasswordTokenPurpose,
  now: Date = new Date(),
): Promise<string | null> {
  const rows = await em.getConnection().execute<Array<{ user_id: string }>>(
    `update password_tokens set used_at = ? where token_hash = ? and purpose = ? and used_at is null and expires_at > ? returning user_id`,
    [now, sha256(token), purpose, now],
  );
  return rows[0]?.user_id ?? null;
}
