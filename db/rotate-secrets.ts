import type { SqlEntityManager } from '@mikro-orm/sql';
import { HostAccountSchema, HostCredentialSchema, UserSchema, userTotpContext } from './entities/index.js';
import type { Vault } from './vault.js';
import { credentialContext, hostAccountSecretContext } from '../activities/remote/host-targets.js';

/** Re-encrypts every secret not yet under the vault's active key, in one transaction. */
export async function rotateSecrets(em: SqlEntityManager, vault: Vault): Promise<{ hostCredentials: number; hostAccounts: number; totpSeeds: number; unchanged: number }> {
  return em.fork().transactional(async (tx) => {
    let hostCredentials = 0;
    let hostAccounts = 0;
    let unchanged = 0;
    for (const c of await tx.find(HostCredentialSchema, {}, { populate: ['host'] })) {
      const next = vault.reencrypt(c.ciphertext, credentialContext(c.host.id, c.kind));
      if (!next) unchanged++;
      else {
        c.ciphertext = next.ciphertext;
        c.keyId = next.keyId;
        hostCredentials++;
      }
    }
    for (const a of await tx.find(HostAccountSchema, { secretCiphertext: { $ne: null } })) {
      const next = vault.reencrypt(a.secretCiphertext!, hostAccountSecretContext(a.id, a.secretVersion));
      if (!next) unchanged++;
      else {
        a.secretCiphertext = next.ciphertext;
        a.secretKeyId = next.keyId;
        hostAccounts++;
      }
    }
    // A password change in flight: its pending secret is bound to the next version.
    for (const a of await tx.find(HostAccountSchema, { pendingSecretCiphertext: { $ne: null } })) {
      const next = vault.reencrypt(a.pendingSecretCiphertext!, hostAccountSecretContext(a.id, a.secretVersion + 1));
      if (!next) unchanged++;
      else {
        a.pendingSecretCiphertext = next.ciphertext;
        a.pendingSecretKeyId = next.keyId;
        hostAccounts++;
      }
    }
    let totpSeeds = 0;
    for (const u of await tx.find(UserSchema, { totpSecretCiphertext: { $ne: null } })) {
      const next = vault.reencrypt(u.totpSecretCiphertext!, userTotpContext(u.id));
      if (!next) unchanged++;
      else {
        u.totpSecretCiphertext = next.ciphertext;
        totpSeeds++;
      }
    }
    return { hostCredentials, hostAccounts, totpSeeds, unchanged };
  });
}
