// Identity settings in one typed object, built from the environment (or given directly by tests
// and the CLI), and the access-token signing key.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Env } from './env.js';

export type PasswordClass = 'lower' | 'upper' | 'digit' | 'symbol';

export interface PasswordPolicy {
  minLength: number;
  classes: PasswordClass[];
  history: number;
  maxAgeDays: number;
}

export interface Argon2Params {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export interface AuthSettings {
  accessTokenMinutes: number;
  refreshTokenDays: number;
  idleTimeoutMinutes: number;
  maxSessions: number;
  sessionLimitPolicy: 'evict-oldest' | 'refuse';
  lockoutThreshold: number;
  ipLockoutThreshold: number;
  lockoutMinutes: number;
  mfaRequiredRoles: string[];
  stepUpMinutes: number;
  /** Public registration submits per source address and window (0: no limit). */
  registrationRateLimit: { max: number; windowMinutes: number };
  password: PasswordPolicy;
  argon2: Argon2Params;
}

export const DEFAULT_AUTH_SETTINGS: AuthSettings = Object.freeze({
  accessTokenMinutes: 15,
  refreshTokenDays: 7,
  idleTimeoutMinutes: 30,
  maxSessions: 3,
  sessionLimitPolicy: 'evict-oldest',
  lockoutThreshold: 5,
  ipLockoutThreshold: 5,
  lockoutMinutes: 30,
  mfaRequiredRoles: [],
  stepUpMinutes: 5,
  registrationRateLimit: { max: 5, windowMinutes: 60 },
  password: { minLength: 8, classes: ['lower', 'upper', 'digit', 'symbol'], history: 5, maxAgeDays: 0 },
  argon2: { memoryCost: 19456, timeCost: 2, parallelism: 1 },
}) as AuthSettings;

const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);

export function authSettingsFromEnv(e: Env): AuthSettings {
  return {
    accessTokenMinutes: e.AUTH_ACCESS_TOKEN_MINUTES,
    refreshTokenDays: e.AUTH_REFRESH_TOKEN_DAYS,
    idleTimeoutMinutes: e.AUTH_IDLE_TIMEOUT_MINUTES,
    maxSessions: e.AUTH_MAX_SESSIONS,
    sessionLimitPolicy: e.AUTH_SESSION_LIMIT_POLICY,
    lockoutThreshold: e.AUTH_LOCKOUT_THRESHOLD,
    ipLockoutThreshold: e.AUTH_IP_LOCKOUT_THRESHOLD,
    lockoutMinutes: e.AUTH_LOCKOUT_MINUTES,
    mfaRequiredRoles: list(e.AUTH_MFA_REQUIRED_ROLES),
    stepUpMinutes: e.AUTH_STEP_UP_MINUTES,
    registrationRateLimit: { max: e.REGISTRATION_RATE_LIMIT, windowMinutes: e.REGISTRATION_RATE_WINDOW_MINUTES },
    password: {
      minLength: e.PASSWORD_MIN_LENGTH,
      classes: list(e.PASSWORD_CHARACTER_CLASSES) as PasswordClass[],
      history: e.PASSWORD_HISTORY,
      maxAgeDays: e.PASSWORD_MAX_AGE_DAYS,
    },
    argon2: { memoryCost: e.ARGON2_MEMORY_KIB, timeCost: e.ARGON2_TIME_COST, parallelism: e.ARGON2_PARALLELISM },
  };
}

/**
 * The HS256 access-token key: HOSTFLOW_JWT_SECRET, else read from `file`, which is created with a
 * fresh random key (mode 0600) when absent — the same pattern as the encryption keys.
 */
export async function loadJwtKey(secret: string | undefined, file: string): Promise<Uint8Array> {
  if (secret) return new TextEncoder().encode(secret);
  try {
    return Buffer.from((await readFile(file, 'utf8')).trim(), 'base64url');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const key = randomBytes(32);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, key.toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
    return key;
  }
}
