// `npm run keys:rotate`: re-encrypts every stored secret under the active key (the first one in
// HOSTFLOW_ENCRYPTION_KEYS). Rotate by putting a new key first and keeping the old one after it,
// run this, then drop the old key. Idempotent; prints counts, never secrets.
import { join } from 'node:path';
import { env } from '../config/env.js';
import { dbTarget } from '../config/runtime.js';
import { initORM } from '../db/orm.js';
import { loadKeyring, Vault } from '../db/vault.js';
import { rotateSecrets } from '../db/rotate-secrets.js';

const e = env();
const vault = new Vault(await loadKeyring(e.HOSTFLOW_ENCRYPTION_KEYS, join(e.DATA_DIR, 'keys')));
const db = await initORM(dbTarget(e));
try {
  const r = await rotateSecrets(db.em, vault);
  console.log(`active key ${vault.activeKeyId}: re-encrypted ${r.hostCredentials} host credentials, ${r.hostAccounts} account passwords and ${r.totpSeeds} TOTP seeds (${r.unchanged} already current)`);
} finally {
  await db.close();
}
