import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Secrets at rest: AES-256-GCM under a key id, so keys can rotate. The envelope binds the
 * ciphertext to its context (AAD), e.g. `host-credential:<hostId>:password`, so a ciphertext
 * copied onto another row does not decrypt.
 */
export interface Keyring {
  activeKeyId: string;
  keys: ReadonlyMap<string, Buffer>;
}

export class VaultError extends Error {
  override name = 'VaultError';
}

const B64 = 'base64url' as const;

export function parseKeyring(spec: string, name = 'HOSTFLOW_ENCRYPTION_KEYS'): Keyring {
  const keys = new Map<string, Buffer>();
  let activeKeyId: string | undefined;
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const idx = part.indexOf(':');
    if (idx <= 0) throw new VaultError(`${name}: each entry must be keyId:base64key`);
    const id = part.slice(0, idx);
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new VaultError(`${name}: bad key id "${id}"`);
    const key = Buffer.from(part.slice(idx + 1), 'base64');
    if (key.length !== 32) throw new VaultError(`${name}: key "${id}" must be 32 bytes (base64), got ${key.length}`);
    keys.set(id, key);
    activeKeyId ??= id;
  }
  if (!activeKeyId) throw new VaultError(`${name}: no keys`);
  return { activeKeyId, keys };
}

export function formatKeyring(k: Keyring): string {
  const ordered = [k.activeKeyId, ...[...k.keys.keys()].filter((id) => id !== k.activeKeyId)];
  return ordered.map((id) => `${id}:${k.keys.get(id)!.toString('base64')}`).join(',');
}

export function generateKeyring(keyId = `k${Date.now().toString(36)}`): Keyring {
  return { activeKeyId: keyId, keys: new Map([[keyId, randomBytes(32)]]) };
}

/** Loads keys from the env spec, else from `file` (created with a fresh key, mode 0600, when absent). */
export async function loadKeyring(spec: string | undefined, file: string, name?: string): Promise<Keyring> {
  if (spec) return parseKeyring(spec, name);
  try {
    return parseKeyring((await readFile(file, 'utf8')).trim(), name ? `${name} (file ${file})` : undefined);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const ring = generateKeyring();
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, formatKeyring(ring) + '\n', { mode: 0o600, flag: 'wx' });
    return ring;
  }
}

const GCM_TAG_BYTES = 16;

export class Vault {
  constructor(private readonly ring: Keyring) {}

  get activeKeyId(): string {
    return this.ring.activeKeyId;
  }

  encrypt(plaintext: string, context: string): { ciphertext: string; keyId: string } {
    const keyId = this.ring.activeKeyId;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.ring.keys.get(keyId)!, iv, { authTagLength: GCM_TAG_BYTES });
    cipher.setAAD(Buffer.from(context));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return { ciphertext: ['v1', keyId, iv.toString(B64), tag.toString(B64), ct.toString(B64)].join('.'), keyId };
  }

  decrypt(envelope: string, context: string): string {
    const [version, keyId, iv, tag, ct] = envelope.split('.');
    if (version !== 'v1' || !keyId || !iv || !tag || ct === undefined) throw new VaultError('malformed secret envelope');
    const key = this.ring.keys.get(keyId);
    if (!key) throw new VaultError(`secret was encrypted with key "${keyId}", which is not in the keyring`);
    const tagBytes = Buffer.from(tag, B64);
    // The full 16-byte tag, always: GCM otherwise accepts a truncated tag (down to 4 bytes), which
    // makes forging a ciphertext that much easier.
    if (tagBytes.length !== GCM_TAG_BYTES) throw new VaultError('secret failed authentication (wrong key or context)');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, B64), { authTagLength: GCM_TAG_BYTES });
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(tagBytes);
      return Buffer.concat([decipher.update(Buffer.from(ct, B64)), decipher.final()]).toString('utf8');
    } catch {
      throw new VaultError('secret failed authentication (wrong key or context)');
    }
  }

  /** Re-encrypts under the active key when needed (key rotation). Returns null if already current. */
  reencrypt(envelope: string, context: string): { ciphertext: string; keyId: string } | null {
    if (envelope.split('.')[1] === this.ring.activeKeyId) return null;
    return this.encrypt(this.decrypt(envelope, context), context);
  }
}
