import { Router, type Request, type Response } from 'express';
import type { AppDeps, AuthDeps } from '../../deps.js';
import { z, type OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { PageQuery, pageOffsets, pageResult } from '../../pagination.js';
import { RecoveryCodeSchema, SessionSchema, UserSchema } from '../../../db/entities/index.js';
import * as S from './schema.js';
import { changePassword, confirmPasswordReset, liveSessions, login, logout, refresh, requestPasswordReset, revokeSession, sessionDto, type ClientInfo } from './service.js';
import { assertCsrfSafe, clearRefreshCookie, readRefreshCookie, setRefreshCookie, wantsRefreshCookie } from './refresh-cookie.js';
import { validationError } from '../../errors.js';
import { clearCodecCookie } from '../temporal/codec-cookie.js';
import { confirmEmailMfa, confirmTotp, disableMfa, enrollTotp, regenerateRecoveryCodes, sendEmailCode, startEmailMfa, verifyStepUp } from './mfa.js';

const client = (req: Request): ClientInfo => ({ ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });
const tags = ['auth'];
const ALL = ['password_change', 'mfa_enrollment'] as ('password_change' | 'mfa_enrollment')[];
const MFA_ENROL = ['mfa_enrollment'] as ('password_change' | 'mfa_enrollment')[];

/** `X-Hostflow-Refresh: cookie`: the refresh token goes into the httpOnly cookie and not into the body. */
function deliver(req: Request, res: Response, pair: TokenPairOut): TokenPairOut {
  if (!wantsRefreshCookie(req) || !pair.refresh_token) return pair;
  setRefreshCookie(req, res, pair.refresh_token, new Date(pair.refresh_expires_at));
  const { refresh_token: _omitted, ...rest } = pair;
  return rest;
}
type TokenPairOut = Omit<Awaited<ReturnType<typeof login>>, 'refresh_token'> & { refresh_token?: string };

/** Login, tokens, own sessions, passwords and MFA. */
export function authRoutes(deps: AppDeps & AuthDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/auth/login', tags, permission: 'public', body: S.LoginBody, response: S.TokenPair,
    errors: { 401: 'Wrong username or password, or a missing or wrong second factor (40101; 40102 with data.methods when a second factor is needed)', 429: 'Too many failed logins for this account or from this address (42901)' },
    summary: 'Log in: access token (15 min) + refresh token. 40102 when a second factor is needed; 42901 while locked; restricted=password_change when the password must be changed',
    handler: async ({ body, req, res }) => deliver(req, res, await login(deps, body, client(req))),
  });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/auth/refresh', tags, permission: 'public', body: S.RefreshBody, response: S.TokenPair,
    errors: { 401: 'Refresh token invalid, expired or already used, or its session ended (40101)' },
    summary: 'Rotate the refresh token (single use; presenting a used one ends the session). Without refresh_token in the body, the hf_refresh cookie is used (then the X-Hostflow-CSRF header is required)',
    handler: async ({ body, req, res }) => {
      let token = body.refresh_token;
      if (!token) {
        token = readRefreshCookie(req);
        if (!token) throw validationError([{ field: 'refresh_token', message: 'required (in the body, or as the hf_refresh cookie)' }]);
        assertCsrfSafe(req);
      }
      try {
        return deliver(req, res, await refresh(deps, token, client(req)));
      } catch (err) {
        if (!body.refresh_token) clearRefreshCookie(req, res);
        throw err;
      }
    },
  });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/auth/logout', tags, permission: 'authenticated', allowRestricted: ALL, response: S.Ok,
    summary: 'End this session (effective on the next request)',
    handler: async ({ user, req, res }) => {
      await logout(deps, user!, client(req));
      clearRefreshCookie(req, res);
      // The Temporal Web UI's codec cookie dies with the session anyway; clear it from the browser too.
      clearCodecCookie(req, res);
      return { ok: true as const };
    },
  });
  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/auth/me', tags, permission: 'authenticated', allowRestricted: ALL, response: S.Me,
    summary: 'Who am I: roles, MFA state, restriction',
    handler: async ({ user, principal }) => {
      const em = deps.em.fork();
      const u = await em.findOneOrFail(UserSchema, { id: user!.id });
      const left = await em.count(RecoveryCodeSchema, { userId: u.id, usedAt: null });
      return {
        id: u.id,
        username: u.username,
        email: u.email ?? null,
        roles: user!.roles,
        permissions: [...principal!.permissions].sort(),
        customer_id: u.customerId ?? null,
        session_id: user!.sessionId ?? null,
        api_key_id: user!.apiKeyId ?? null,
        mfa: { totp: Boolean(u.totpEnabledAt), email: Boolean(u.mfaEmailEnabledAt), recovery_codes_left: left, verified_at: user!.mfaAt?.toISOString() ?? null },
        restricted: user!.restricted ?? null,
        must_change_password: u.mustChangePassword,
      };
    },
  });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/auth/password/change', tags, permission: 'authenticated', allowRestricted: ALL, body: S.PasswordChangeBody, response: S.Ok,
    summary: 'Change my password (policy checked; my other sessions end)',
    handler: async ({ user, body, req }) => {
      await changePassword(deps, user!, body, client(req));
      return { ok: true as const };
    },
  });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/auth/password/reset', tags, permission: 'public', body: S.PasswordResetBody,
    response: z.object({ message: z.string() }),
    summary: 'Email a single-use reset link (30 min); the same answer whether or not an account has this address',
    handler: async ({ body, req }) => {
      await requestPasswordReset(deps, body.email, client(req));
      return { message: 'if an account has this address, a reset link has been sent to it' };
    },
  });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/auth/password/reset/confirm', tags, permission: 'public', body: S.PasswordResetConfirmBody, response: S.Ok,
    summary: 'Set a new password with a reset or activation token (single use)',
    handler: async ({ body, req }) => {
      await confirmPasswordReset(deps, body, client(req));
      return { ok: true as const };
    },
  });
  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/auth/sessions', tags, permission: 'authenticated', response: z.object({ items: z.array(S.SessionDto) }),
    summary: 'My live sessions',
    handler: async ({ user }) => ({ items: (await liveSessions(deps, deps.em.fork(), { userId: user!.id })).map((s) => sessionDto(s, user!.sessionId)) }),
  });
  defineRoute(r, registry, {
    method: 'delete', path: '/api/v1/auth/sessions/:id', tags, permission: 'authenticated', params: S.IdParams, response: S.Ok,
    summary: 'End one of my sessions',
    handler: async ({ user, params, req }) => {
      await revokeSession(deps, { sessionId: params.id, ownerId: user!.id, actor: user!.username, reason: 'logout' }, client(req));
      return { ok: true as const };
    },
  });

  // MFA
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/auth/mfa/totp/enroll', tags, permission: 'authenticated', allowRestricted: MFA_ENROL,
    response: z.object({ otpauth_uri: z.string(), qr_data_url: z.string(), secret: z.string().openapi({ description: 'Base32 seed for manual entry; shown once' }) }),
    summary: 'Start TOTP enrolment: otpauth:// URI and QR code (PNG data URL)',
    handler: async ({ user }) => {
      const e = await enrollTotp(deps, user!.id);
      return { otpauth_uri: e.otpauthUri, qr_data_url: e.qrDataUrl, secret: e.secret };
    },
  });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/auth/mfa/totp/confirm', tags, permission: 'authenticated', allowRestricted: MFA_ENROL, body: S.CodeBody,
    response: z.object({ recovery_codes: z.array(z.string()).openapi({ description: '10 single-use codes, shown once' }) }),
    summary: 'Confirm TOTP with a first code: TOTP on, recovery codes returned once',
    handler: async ({ user, body }) => ({ recovery_codes: (await confirmTotp(deps, user!.id, user!.sessionId, body.code)).recoveryCodes }),
  });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/auth/mfa/recovery-codes', tags, permission: 'authenticated', stepUp: true,
    response: z.object({ recovery_codes: z.array(z.string()) }),
    summary: 'Replace my recovery codes (the old ones stop working); step-up',
    handler: async ({ user }) => ({ recovery_codes: await regenerateRecoveryCodes(deps, user!.id) }),
  });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/auth/mfa/email/enroll', tags, permission: 'authenticated', allowRestricted: MFA_ENROL, response: S.Ok,
    summary: 'Start email codes as a second factor: a code is sent to my address',
    handler: async ({ user }) => {
      await startEmailMfa(deps, user!.id);
      return { ok: true as const };
    },
  });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/auth/mfa/email/confirm', tags, permission: 'authenticated', allowRestricted: MFA_ENROL, body: S.CodeBody, response: S.Ok,
    summary: 'Confirm email codes with the code received',
    handler: async ({ user, body }) => {
      await confirmEmailMfa(deps, user!.id, user!.sessionId, body.code);
      return { ok: true as const };
    },
  });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/auth/mfa/email/send', tags, permission: 'authenticated', response: S.Ok,
    summary: 'Email me a code (for a step-up with email_code)',
    handler: async ({ user }) => {
      const u = await deps.em.fork().findOneOrFail(UserSchema, { id: user!.id });
      if (u.mfaEmailEnabledAt) await sendEmailCode(deps, u);
      return { ok: true as const };
    },
  });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/auth/mfa/verify', tags, permission: 'authenticated', body: S.VerifyBody, response: z.object({ mfa_at: z.string(), method: z.string() }),
    summary: 'Step up: check a second factor in this session; sensitive routes then pass for a few minutes',
    handler: async ({ user, body }) => {
      const v = await verifyStepUp(deps, user!, body);
      return { mfa_at: v.mfaAt.toISOString(), method: v.method };
    },
  });
  defineRoute(r, registry, {
    method: 'delete', path: '/api/v1/auth/mfa', tags, permission: 'authenticated', stepUp: true, response: S.Ok,
    summary: 'Turn my second factors off (step-up)',
    handler: async ({ user }) => {
      await disableMfa(deps, user!.id);
      return { ok: true as const };
    },
  });
  return r;
}

/** Admin: online users and kick-out. */
export function sessionRoutes(deps: AppDeps & AuthDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/sessions', tags: ['sessions'], permission: 'session.manage', query: PageQuery.extend({ user_id: z.string().uuid().optional() }),
    response: z.object({ items: z.array(S.SessionDto), total: z.number(), page: z.number(), page_size: z.number(), pages: z.number() }),
    summary: 'Online users: live sessions (not ended, seen within the idle timeout)',
    handler: async ({ query, user }) => {
      const em = deps.em.fork();
      const cutoff = new Date(deps.identity.clock().getTime() - deps.identity.settings.idleTimeoutMinutes * 60_000);
      const where = { revokedAt: null, lastSeenAt: { $gte: cutoff }, ...(query.user_id ? { userId: query.user_id } : {}) };
      const [rows, total] = await em.findAndCount(SessionSchema, where, { ...pageOffsets(query), orderBy: { lastSeenAt: 'desc', id: 'asc' } });
      const users = new Map((await em.find(UserSchema, { id: { $in: [...new Set(rows.map((s) => s.userId))] } })).map((u) => [u.id, u.username]));
      return pageResult(rows.map((s) => sessionDto(s, user!.sessionId, users.get(s.userId) ?? '')), total, query);
    },
  });
  defineRoute(r, registry, {
    method: 'delete', path: '/api/v1/sessions/:id', tags: ['sessions'], permission: 'session.manage', params: S.IdParams, response: S.Ok,
    summary: "Kick out: end a user's session (effective on their next request)",
    handler: async ({ params, user, req }) => {
      await revokeSession(deps, { sessionId: params.id, actor: user!.username, reason: 'kicked' }, client(req));
      return { ok: true as const };
    },
  });
  return r;
}
