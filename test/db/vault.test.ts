import { describe, expect, it } from 'vitest';
import { Vault, generateKeyring, parseKeyring, formatKeyring, VaultError } from '../../db/vault.js';

describe('vault (AES-256-GCM with key ids)', () => {
  it('round-trips, binds to context, and never contains the plaintext', () => {
    const v = new Vault(generateKeyring('k1'));
    const { ciphertext, keyId } = v.encrypt('hunter2-very-secret', 'host-credential:a:password');
    expect(keyId).toBe('k1');
    expect(ciphertext).not.toContain('hunter2');
    expect(v.decrypt(ciphertext, 'host-credential:a:password')).toBe('hunter2-very-secret');
    expect(() => v.decrypt(ciphertext, 'host-credential:b:password')).toThrow(VaultError);
    const tampered = ciphertext.slice(0, -2) + (ciphertext.endsWith('A') ? 'BB' : 'AA');
    expect(() => v.decrypt(tampered, 'host-credential:a:password')).toThrow(VaultError);
  });

  it('rotates: new active key encrypts, old key still decrypts, reencrypt moves secrets', () => {
    const old = generateKeyring('old');
    const oldVault = new Vault(old);
    const ct = oldVault.encrypt('pw', 'ctx').ciphertext;
    const fresh = generateKeyring('new');
    const ring = parseKeyring(`${formatKeyring(fresh)},${formatKeyring(old)}`);
    const v = new Vault(ring);
    expect(v.activeKeyId).toBe('new');
    const moved = v.reencrypt(ct, 'ctx')!;
    expect(moved.keyId).toBe('new');
    expect(v.decrypt(moved.ciphertext, 'ctx')).toBe('pw');
    expect(v.reencrypt(moved.ciphertext, 'ctx')).toBeNull();
    expect(() => new Vault(fresh).decrypt(ct, 'ctx')).toThrow(/not in the keyring/);
  });

  it('pins the GCM tag to 16 bytes: a truncated tag (which GCM would otherwise accept) is refused', () => {
    const v = new Vault(generateKeyring('k1'));
    const { ciphertext } = v.encrypt('hunter2-very-secret', 'ctx');
    const parts = ciphertext.split('.');
    for (const bytes of [4, 8, 12, 15]) {
      parts[3] = Buffer.from(ciphertext.split('.')[3]!, 'base64url').subarray(0, bytes).toString('base64url');
      expect(() => v.decrypt(parts.join('.'), 'ctx'), `${bytes}-byte tag`).toThrow(VaultError);
    }
    expect(v.decrypt(ciphertext, 'ctx')).toBe('hunter2-very-secret');
  });

  it('rejects malformed key specs naming the problem', () => {
    expect(() => parseKeyring('k1:c2hvcnQ=')).toThrow(/32 bytes/);
    expect(() => parseKeyring('nokey')).toThrow(/keyId:base64key/);
  });
});
