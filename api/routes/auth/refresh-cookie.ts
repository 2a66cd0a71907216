import type { Request, Response } from 'express';
import { ApiError } from '../../errors.js';

/**
 * The console's refresh token: an httpOnly, SameSite=Strict cookie scoped to the refresh path, so
 * page scripts never see it and the browser sends it nowhere else. JSON clients keep the token in
 * the body as before; a client opts in to the cookie with `X-Hostflow-Refresh: cookie` on login
 * and refresh (then the body carries no refresh_token).
 *
 * A cookie-authenticated call needs CSRF protection: a refresh that reads the cookie must carry
 * the `X-Hostflow-CSRF` header (a custom header makes a cross-site request a CORS preflight, which
 * this API never grants) and, when the browser sends an Origin, that Origin must be this host.
 */
export const REFRESH_COOKIE = 'hf_refresh';
export const REFRESH_COOKIE_PATH = '/api/v1/auth/refresh';
export const REFRESH_MODE_HEADER = 'x-hostflow-refresh';
export const CSRF_HEADER = 'x-hostflow-csrf';

export const wantsRefreshCookie = (req: Request) => req.get(REFRESH_MODE_HEADER)?.toLowerCase() === 'cookie';

export function readRefreshCookie(req: Request): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === REFRESH_COOKIE) {
      const v = part.slice(i + 1).trim();
      return v ? decodeURIComponent(v) : undefined;
    }
  }
  return undefined;
}

export function setRefreshCookie(req: Request, res: Response, token: string, expiresAt: Date): void {
  res.cookie(REFRESH_COOKIE, token, { httpOnly: true, sameSite: 'strict', path: REFRESH_COOKIE_PATH, secure: req.secure, expires: expiresAt });
}

export function clearRefreshCookie(req: Request, res: Response): void {
  res.clearCookie(REFRESH_COOKIE, { httpOnly: true, sameSite: 'strict', path: REFRESH_COOKIE_PATH, secure: req.secure });
}

/** Refuses a cookie-authenticated refresh without the CSRF header or from another origin. */
export function assertCsrfSafe(req: Request): void {
  if (!req.get(CSRF_HEADER)) throw new ApiError(403, 40301, `a refresh with the cookie needs the ${CSRF_HEADER} header`);
  const origin = req.get('origin');
  if (origin) {
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host !== req.get('host')) throw new ApiError(403, 40301, 'cross-origin refresh refused');
  }
}
