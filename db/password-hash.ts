import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { hash as argonHash, verify as argonVerify, parseOptions } from '@node-rs/argon2';
import { DEFAULT_AUTH_SETTINGS, type Argon2Params } from '../config/auth.js';

const scrypt = (password: string, salt: Buffer, keylen: number, opts: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scryptCb(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))));

/** argon2id (the enum is a `const enum` in the binding's types, unusable under isolatedModules). */
const ARGON2ID = 2;
const SCRYPT_MAXMEM = 64 * 1024 * 1024;

async function verifyScrypt(password: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, hash] = stored.split('$');
  if (alg !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const key = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT_MAXMEM });
  return timingSafeEqual(key, expected);
}

/**
 * Login password hashes: argon2id (PHC string) with the configured parameters. Hashes made with
 * other parameters, and the earlier scrypt hashes (`scrypt$N$r$p$salt$hash`), still verify and
 * report `needsRehash`, so the login that proves the password rewrites the hash.
 */
export class PasswordHasher {
  private dummy: Promise<string> | undefined;
  constructor(readonly params: Argon2Params = DEFAULT_AUTH_SETTINGS.argon2) {}

  hash(password: string): Promise<string> {
    return argonHash(password, { algorithm: ARGON2ID as never, memoryCost: this.params.memoryCost, timeCost: this.params.timeCost, parallelism: this.params.parallelism });
  }

  async verify(password: string, stored: string): Promise<boolean> {
    if (stored.startsWith('scrypt$')) return verifyScrypt(password, stored);
    if (!stored.startsWith('$argon2')) return false;
    try {
      return await argonVerify(stored, password);
    } catch {
      return false;
    }
  }

  needsRehash(stored: string): boolean {
    if (!stored.startsWith('$argon2id$')) return true;
    try {
      const o = parseOptions(stored);
      return o.memoryCost !== this.params.memoryCost || o.timeCost !== this.params.timeCost || o.parallelism !== this.params.parallelism;
    } catch {
      return true;
    }
  }

  /**
   * Verifies against a hash of a random password made with the current parameters: a login for a
   * missing user (or one without a password) does the same argon2 work as a wrong password.
   */
  async verifyDummy(password: string): Promise<false> {
    this.dummy ??= this.hash(randomBytes(16).toString('base64url'));
    await this.verify(password, await this.dummy);
    return false;
  }
}

/** The earlier scrypt format, only to test the migration path. */
export async function hashPasswordScrypt(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, 32, { N: 2 ** 15, r: 8, p: 1, maxmem: SCRYPT_MAXMEM });
  return ['scrypt', 2 ** 15, 8, 1, salt.toString('base64'), key.toString('base64')].join('$');
}
