// Access tokens (JWT, HS256 via jose), refresh tokens and API keys: formats and hashes.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import type { IdentityDeps } from '../../deps.js';

const ISSUER = 'hostflow';
const AUDIENCE = 'hostflow-api';

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
/** HMAC under the server key, for short codes (recovery, email) that plain SHA-256 would not protect. */
export const codeHmac = (key: Uint8Array, s: string) => createHmac('sha256', key).update(s).digest('hex');

export const API_KEY_PREFIX = 'hf_';
export const newApiKey = () => `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
export const newRefreshToken = () => `rt_${randomBytes(32).toString('base64url')}`;

export async function signAccessToken(d: Pick<IdentityDeps, 'jwtKey' | 'clock' | 'settings'>, claims: { userId: string; sessionId: string }): Promise<{ token: string; expiresIn: number }> {
  const now = Math.floor(d.clock().getTime() / 1000);
  const expiresIn = d.settings.accessTokenMinutes * 60;
  const token = await new SignJWT({ sid: claims.sessionId, typ: 'access' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(claims.userId)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + expiresIn)
    .sign(d.jwtKey);
  return { token, expiresIn };
}

/** The verified claims, or null for anything invalid, expired or not an access token. */
export async function verifyAccessToken(d: Pick<IdentityDeps, 'jwtKey' | 'clock'>, token: string): Promise<{ userId: string; sessionId: string } | null> {
  try {
    const { payload } = await jwtVerify(token, d.jwtKey, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'], currentDate: d.clock() });
    if (payload.typ !== 'access' || typeof payload.sub !== 'string' || typeof payload.sid !== 'string') return null;
    return { userId: payload.sub, sessionId: payload.sid };
  } catch {
    return null;
  }
}

/**
 * The Temporal Web UI's codec cookie (api/routes/temporal/codec-cookie.ts): a JWT of its own type
 * and audience, so it is never accepted as an access token (and an access token never as it). It
 * names the login session it was issued for; every use re-reads that session, so it dies with it.
 */
const CODEC_AUDIENCE = 'hostflow-temporal-codec';
export const CODEC_TOKEN_MINUTES = 60;

export async function signCodecToken(d: Pick<IdentityDeps, 'jwtKey' | 'clock'>, claims: { userId: string; sessionId: string }): Promise<{ token: string; expiresAt: Date }> {
  const now = Math.floor(d.clock().getTime() / 1000);
  const exp = now + CODEC_TOKEN_MINUTES * 60;
  const token = await new SignJWT({ sid: claims.sessionId, typ: 'codec' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(claims.userId)
    .setIssuer(ISSUER)
    .setAudience(CODEC_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(d.jwtKey);
  return { token, expiresAt: new Date(exp * 1000) };
}

export async function verifyCodecToken(d: Pick<IdentityDeps, 'jwtKey' | 'clock'>, token: string): Promise<{ userId: string; sessionId: string } | null> {
  try {
    const { payload } = await jwtVerify(token, d.jwtKey, { issuer: ISSUER, audience: CODEC_AUDIENCE, algorithms: ['HS256'], currentDate: d.clock() });
    if (payload.typ !== 'codec' || typeof payload.sub !== 'string' || typeof payload.sid !== 'string') return null;
    return { userId: payload.sub, sessionId: payload.sid };
  } catch {
    return null;
  }
}
