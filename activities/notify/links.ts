// Signed links in messages (unsubscribe, approve / reject). The HMAC key is the center's own
// random key, stored encrypted with the Vault (`notify_secrets`, context `notify-secret:<name>`),
// so the worker that writes links and the API that checks them share it without configuration.
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { NotifySecretSchema } from '../../db/entities/index.js';
import type { Vault } from '../../db/vault.js';

const cache = new WeakMap<Vault, Buffer>();

export async function linkKey(em: SqlEntityManager, vault: Vault): Promise<Buffer> {
  const hit = cache.get(vault);
  if (hit) return hit;
  const name = 'link-signing';
  const ctx = `notify-secret:${name}`;
  const fork = em.fork();
  let row = await fork.findOne(NotifySecretSchema, { name });
  if (!row) {
    const { ciphertext } = vault.encrypt(randomBytes(32).toString('base64'), ctx);
    await fork.getConnection().execute('insert into notify_secrets (name, ciphertext, created_at) values (?, ?, now()) on conflict (name) do nothing', [name, ciphertext]);
    row = await em.fork().findOneOrFail(NotifySecretSchema, { name });
  }
  const key = Buffer.from(vault.decrypt(row.ciphertext, ctx), 'base64');
  cache.set(vault, key);
  return key;
}

const mac = (key: Buffer, data: string) => createHmac('sha256', key).update(data).digest('base64url');

export function signLink(key: Buffer, payload: Record<string, unknown>): string {
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${body}.${mac(key, body)}`;
}

export function verifyLink<T extends Record<string, unknown>>(key: Buffer, token: string): T | null {
  const [body, sig] = token.split('.');
  if (!body || !sig) return null;
  const want = Buffer.from(mac(key, body));
  const got = Buffer.from(sig);
  if (want.length !== got.length || !timingSafeEqual(want, got)) return null;
  try {
    return JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as T;
  } catch {
    return null;
  }
}

export interface UnsubscribePayload extends Record<string, unknown> {
  t: 'unsubscribe';
  r: string;
  e: string;
  c: string;
}

export interface ActionPayload extends Record<string, unknown> {
  t: 'action';
  j: string;
  /** account-opening request id */
  r: string;
  a: 'approve' | 'reject';
  /** The approver the link was sent to: only they can use it. */
  u: string;
  /** Expiry (ms): the request's own expiry. */
  x: number;
}

export const newJti = () => randomUUID().replace(/-/g, '');
