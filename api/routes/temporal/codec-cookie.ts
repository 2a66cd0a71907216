import type { Request, RequestHandler, Response } from 'express';
import type { AuthDeps } from '../../deps.js';
import { unauthenticated } from '../../errors.js';
import { sessionUser } from '../../middleware/auth.js';
import { verifyCodecToken } from '../auth/tokens.js';

/**
 * The Temporal Web UI has no Hostflow login, so it cannot send a Bearer token; with its Data
 * Encoder setting "Include cross-origin credentials" it calls the codec with
 * `credentials: 'include'`, and the browser sends this cookie: an httpOnly, SameSite=Strict
 * cookie scoped to the codec path, holding a codec token (tokens.ts signCodecToken) bound to the
 * console session that asked for it (POST /api/v1/temporal/codec/session).
 *
 * SameSite=Strict: the browser sends it only on requests from the same *site* (host name; ports do
 * not count), so the UI, the console and the codec endpoint must use the same host name. The cookie
 * is accepted only when the request's Origin is one of TEMPORAL_UI_ORIGINS (CORS then answers with
 * that exact origin and Allow-Credentials), on /decode and /encode only, and only while the
 * session lives (every use re-reads the session row: logout, kick-out or idle ends it).
 */
export const CODEC_PATH = '/api/v1/temporal/codec';
export const CODEC_COOKIE = 'hf_codec';

export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0 || part.slice(0, i).trim() !== name) continue;
    const v = part.slice(i + 1).trim();
    try {
      return v ? decodeURIComponent(v) : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

export function setCodecCookie(req: Request, res: Response, token: string, expiresAt: Date): void {
  res.cookie(CODEC_COOKIE, token, { httpOnly: true, sameSite: 'strict', path: CODEC_PATH, secure: req.secure, expires: expiresAt });
}

export function clearCodecCookie(req: Request, res: Response): void {
  res.clearCookie(CODEC_COOKIE, { httpOnly: true, sameSite: 'strict', path: CODEC_PATH, secure: req.secure });
}

const normalise = (o: string) => o.replace(/\/+$/, '');

/**
 * Mounted on CODEC_PATH before `authenticate`: a decode/encode call without an Authorization
 * header but with the codec cookie is authenticated as the cookie's session user — when its Origin
 * is an allowed UI origin; otherwise 401 (a cookie alone is never enough: curl, another site).
 */
export function codecCookieAuth(deps: AuthDeps, origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins.map(normalise));
  return async (req, _res, next) => {
    if (req.method !== 'POST' || (req.path !== '/decode' && req.path !== '/encode') || req.headers.authorization) return next();
    const token = readCookie(req, CODEC_COOKIE);
    if (!token) return next();
    const origin = req.get('origin');
    if (!origin || !allowed.has(normalise(origin))) throw unauthenticated('the codec cookie is accepted only from a Temporal Web UI origin (TEMPORAL_UI_ORIGINS); other callers send a Bearer token');
    const claims = await verifyCodecToken(deps.identity, token);
    if (!claims) throw unauthenticated('invalid or expired codec cookie: open the Temporal UI from the console again');
    req.user = await sessionUser(deps, claims, deps.identity.clock());
    next();
  };
}
