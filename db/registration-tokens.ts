// Single-use links of a registration (email verification, resubmission after "return for
// changes"). Issued inside the activity that emails them; consumed by the API. Only the SHA-256
// is stored, and tokens never pass through a workflow.
import { createHash, randomBytes } from 'node:crypto';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { RegistrationTokenSchema } from './entities/index.js';

export type RegistrationTokenPurpose = 'verify' | 'resubmit';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export async function issueRegistrationToken(
  em: SqlEntityManager,
  input: { registrationId: string; purpose: RegistrationTokenPurpose; ttlMs: number; now?: Date },
): Promise<{ token: string; expiresAt: Date }> {
  const now = input.now ?? new Date();
  const token = `rt_${randomBytes(32).toString('base64url')}`;
  const expiresAt = new Date(now.getTime() + input.ttlMs);
  const fork = em.fork();
  fork.create(RegistrationTokenSchema, { registrationId: input.registrationId, purpose: input.purpose, tokenHash: sha256(token), expiresAt });
  await fork.flush();
  return { token, expiresAt };
}

/**
 * Consumes a token atomically and returns its registration id once (null for unknown, used or
 * expired tokens). The other unused tokens of that registration and purpose stop working too.
 * With `registrationId`, a token of another registration does not match.
 */
export async function consumeRegistrationToken(
  em: SqlEntityManager,
  token: string,
  purpose: RegistrationTokenPurpose,
  registrationId?: string,
  now: Date = new Date(),
): Promise<string | null> {
  const conn = em.getConnection();
  const rows = await conn.execute<Array<{ registration_id: string }>>(
    `update registration_tokens set used_at = ? where token_hash = ? and purpose = ? and used_at is null and expires_at > ?${registrationId ? ' and registration_id = ?' : ''} returning registration_id`,
    [now, sha256(token), purpose, now, ...(registrationId ? [registrationId] : [])],
  );
  const id = rows[0]?.registration_id ?? null;
  if (id) await conn.execute(`update registration_tokens set used_at = ? where registration_id = ? and purpose = ? and used_at is null`, [now, id, purpose]);
  return id;
}
