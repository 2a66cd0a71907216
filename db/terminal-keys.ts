import ssh2 from 'ssh2';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Vault } from './vault.js';
import { TerminalKeySchema } from './entities/index.js';

/**
 * The allocation's platform-managed web-terminal key: created once (the private half encrypted
 * under context `terminal-key:<allocationId>`), returned as its OpenSSH public line. Idempotent:
 * a retry of the inject-keys step finds the same key.
 */
export async function ensureTerminalKey(em: SqlEntityManager, vault: Vault, allocationId: string): Promise<string> {
  const e = em.fork();
  const existing = await e.findOne(TerminalKeySchema, { allocationId });
  if (existing) return existing.publicKey;
  const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: `hostflow-terminal-${allocationId}` });
  const enc = vault.encrypt(pair.private, `terminal-key:${allocationId}`);
  e.create(TerminalKeySchema, { allocationId, publicKey: pair.public.trim(), privateKeyCiphertext: enc.ciphertext, keyId: enc.keyId });
  try {
    await e.flush();
  } catch {
    // A concurrent retry created it first: use that one.
    return (await em.fork().findOneOrFail(TerminalKeySchema, { allocationId })).publicKey;
  }
  return pair.public.trim();
}
