// Second factors: TOTP (RFC 6238 via otpauth; the seed encrypted with the Vault), single-use
// recovery codes and 6-digit email codes (both HMAC-SHA256 under the server key at rest).
import { randomBytes, randomInt } from 'node:crypto';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';
import { EmailCodeSchema, RecoveryCodeSchema, SessionSchema, UserSchema, userTotpContext, type User } from '../../../db/entities/index.js';
import type { AuthDeps } from '../../deps.js';
import { conflict, unauthenticated, validationError } from '../../errors.js';
import { codeHmac } from './tokens.js';
import { sendIdentityMail } from './mail.js';

const PERIOD = 30;
const EMAIL_CODE_MINUTES = 10;
export const RECOVERY_CODE_COUNT = 10;

const totpContext = userTotpContext;
const totpFor = (user: Pick<User, 'username'>, base32: string) =>
  new TOTP({ issuer: 'Hostflow', label: user.username, algorithm: 'SHA1', digits: 6, period: PERIOD, secret: Secret.fromBase32(base32) });

const recoveryHash = (d: AuthDeps, userId: string, code: string) => codeHmac(d.identity.jwtKey, `recovery:${userId}:${code.replace(/[\s-]/g, '').toLowerCase()}`);
const emailHash = (d: AuthDeps, userId: string, code: string) => codeHmac(d.identity.jwtKey, `email:${userId}:${code.trim()}`);

/** Starts (or restarts) TOTP enrolment: a fresh seed, pending until confirmed with a code. */
export async function enrollTotp(d: AuthDeps, userId: string): Promise<{ otpauthUri: string; qrDataUrl: string; secret: string }> {
  const em = d.em.fork();
  const u = await em.findOneOrFail(UserSchema, { id: userId });
  if (u.totpEnabledAt) throw conflict('TOTP is already enabled: DELETE /api/v1/auth/mfa first to enrol a new authenticator');
  const secret = new Secret({ size: 20 }).base32;
  u.totpSecretCiphertext = d.vault.encrypt(secret, totpContext(u.id)).ciphertext;
  u.totpLastStep = null;
  await em.flush();
  const otpauthUri = totpFor(u, secret).toString();
  return { otpauthUri, qrDataUrl: await QRCode.toDataURL(otpauthUri), secret };
}

/** Checks a TOTP code (±1 step) and refuses a step already used. Updates the last step on success. */
async function checkTotp(d: AuthDeps, em: SqlEntityManager, u: User, code: string): Promise<boolean> {
  if (!u.totpSecretCiphertext || !/^\d{6}$/.test(code)) return false;
  const secret = d.vault.decrypt(u.totpSecretCiphertext, totpContext(u.id));
  const now = d.identity.clock().getTime();
  const delta = totpFor(u, secret).validate({ token: code, timestamp: now, window: 1 });
  if (delta === null) return false;
  const step = Math.floor(now / 1000 / PERIOD) + delta;
  if (u.totpLastStep != null && step <= u.totpLastStep) return false;
  const n = await em.nativeUpdate(UserSchema, { id: u.id, $or: [{ totpLastStep: null }, { totpLastStep: { $lt: step } }] }, { totpLastStep: step });
  u.totpLastStep = step;
  return n === 1;
}

function newRecoveryCodes(d: AuthDeps, em: SqlEntityManager, userId: string): string[] {
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => {
    const raw = randomBytes(8).toString('hex');
    return `${raw.slice(0, 4)}-${raw.slice(4, 8)}-${raw.slice(8, 12)}-${raw.slice(12)}`;
  });
  for (const c of codes) em.create(RecoveryCodeSchema, { userId, codeHash: recoveryHash(d, userId, c) });
  return codes;
}

/** Confirms enrolment with a first code: TOTP on, 10 recovery codes (shown once), session MFA-fresh. */
export async function confirmTotp(d: AuthDeps, userId: string, sessionId: string | undefined, code: string): Promise<{ recoveryCodes: string[] }> {
  const em = d.em.fork();
  const u = await em.findOneOrFail(UserSchema, { id: userId });
  if (u.totpEnabledAt) throw conflict('TOTP is already enabled');
  if (!u.totpSecretCiphertext) throw conflict('no TOTP enrolment in progress: POST /api/v1/auth/mfa/totp/enroll first');
  if (!(await checkTotp(d, em, u, code))) throw validationError([{ field: 'code', message: 'wrong or expired code' }]);
  u.totpEnabledAt = d.identity.clock();
  await em.nativeDelete(RecoveryCodeSchema, { userId });
  const recoveryCodes = newRecoveryCodes(d, em, userId);
  await em.flush();
  if (sessionId) await em.nativeUpdate(SessionSchema, { id: sessionId }, { mfaAt: d.identity.clock() });
  return { recoveryCodes };
}

/** Replaces the recovery codes (the old ones stop working). */
export async function regenerateRecoveryCodes(d: AuthDeps, userId: string): Promise<string[]> {
  const em = d.em.fork();
  await em.nativeDelete(RecoveryCodeSchema, { userId });
  const codes = newRecoveryCodes(d, em, userId);
  await em.flush();
  return codes;
}

/** Emails a 6-digit code (valid 10 minutes; earlier unused ones stop working). */
export async function sendEmailCode(d: AuthDeps, u: User): Promise<boolean> {
  if (!u.email) return false;
  const em = d.em.fork();
  const now = d.identity.clock();
  const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
  await em.nativeUpdate(EmailCodeSchema, { userId: u.id, usedAt: null }, { usedAt: now });
  em.create(EmailCodeSchema, { userId: u.id, codeHash: emailHash(d, u.id, code), expiresAt: new Date(now.getTime() + EMAIL_CODE_MINUTES * 60_000), createdAt: now });
  await em.flush();
  return sendIdentityMail(d.identity, d.logger, {
    to: u.email,
    kind: 'mfa-email-code',
    subject: 'Your Hostflow sign-in code',
    text: `Your Hostflow verification code is ${code}. It is valid for ${EMAIL_CODE_MINUTES} minutes and works once.\nIf you did not try to sign in, change your password.`,
  });
}

async function consumeEmailCode(d: AuthDeps, em: SqlEntityManager, userId: string, code: string): Promise<boolean> {
  if (!/^\d{6}$/.test(code.trim())) return false;
  const now = d.identity.clock();
  const n = await em.nativeUpdate(EmailCodeSchema, { userId, codeHash: emailHash(d, userId, code), usedAt: null, expiresAt: { $gt: now } }, { usedAt: now });
  return n === 1;
}

async function consumeRecoveryCode(d: AuthDeps, em: SqlEntityManager, userId: string, code: string): Promise<boolean> {
  const n = await em.nativeUpdate(RecoveryCodeSchema, { userId, codeHash: recoveryHash(d, userId, code), usedAt: null }, { usedAt: d.identity.clock() });
  return n === 1;
}

export interface SecondFactorInput {
  totp_code?: string;
  recovery_code?: string;
  email_code?: string;
}

export const mfaMethods = (u: User) => [...(u.totpEnabledAt ? ['totp', 'recovery'] : []), ...(u.mfaEmailEnabledAt ? ['email'] : [])];
export const hasSecondFactorInput = (i: SecondFactorInput) => Boolean(i.totp_code || i.recovery_code || i.email_code);

/** Verifies (and consumes) whichever second factor was given, against the methods the user has. */
export async function verifySecondFactor(d: AuthDeps, em: SqlEntityManager, u: User, i: SecondFactorInput): Promise<'totp' | 'recovery' | 'email' | null> {
  if (i.totp_code && u.totpEnabledAt && (await checkTotp(d, em, u, i.totp_code))) return 'totp';
  if (i.recovery_code && u.totpEnabledAt && (await consumeRecoveryCode(d, em, u.id, i.recovery_code))) return 'recovery';
  if (i.email_code && u.mfaEmailEnabledAt && (await consumeEmailCode(d, em, u.id, i.email_code))) return 'email';
  return null;
}

/** Step-up: a second factor in this session; afterwards sensitive routes pass for AUTH_STEP_UP_MINUTES. */
export async function verifyStepUp(d: AuthDeps, principal: { id: string; sessionId?: string }, i: SecondFactorInput): Promise<{ mfaAt: Date; method: string }> {
  if (!principal.sessionId) throw validationError([{ field: 'authorization', message: 'step-up needs a session (log in); API keys cannot step up' }]);
  const em = d.em.fork();
  const u = await em.findOneOrFail(UserSchema, { id: principal.id });
  if (!mfaMethods(u).length) throw conflict('no second factor is enrolled');
  const method = await verifySecondFactor(d, em, u, i);
  if (!method) throw unauthenticated('invalid second-factor code');
  const mfaAt = d.identity.clock();
  await em.nativeUpdate(SessionSchema, { id: principal.sessionId }, { mfaAt });
  return { mfaAt, method };
}

/** Email codes as a second factor: the user proves the address with a code sent to it. */
export async function startEmailMfa(d: AuthDeps, userId: string): Promise<void> {
  const u = await d.em.fork().findOneOrFail(UserSchema, { id: userId });
  if (u.mfaEmailEnabledAt) throw conflict('email codes are already enabled');
  if (!u.email) throw validationError([{ field: 'email', message: 'your account has no email address' }]);
  if (!(await sendEmailCode(d, u))) throw conflict('email could not be sent (is SMTP_URL configured?)');
}

export async function confirmEmailMfa(d: AuthDeps, userId: string, sessionId: string | undefined, code: string): Promise<void> {
  const em = d.em.fork();
  const u = await em.findOneOrFail(UserSchema, { id: userId });
  if (!(await consumeEmailCode(d, em, userId, code))) throw validationError([{ field: 'code', message: 'wrong or expired code' }]);
  u.mfaEmailEnabledAt = d.identity.clock();
  await em.flush();
  if (sessionId) await em.nativeUpdate(SessionSchema, { id: sessionId }, { mfaAt: d.identity.clock() });
}

/** Turns every second factor off and deletes the seed and codes. */
export async function disableMfa(d: AuthDeps, userId: string): Promise<void> {
  const em = d.em.fork();
  const u = await em.findOneOrFail(UserSchema, { id: userId });
  u.totpSecretCiphertext = null;
  u.totpEnabledAt = null;
  u.totpLastStep = null;
  u.mfaEmailEnabledAt = null;
  await em.nativeDelete(RecoveryCodeSchema, { userId });
  await em.nativeDelete(EmailCodeSchema, { userId });
  await em.flush();
}
