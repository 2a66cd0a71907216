import type { RequestHandler } from 'express';
import { ApiKeySchema, SessionSchema, UserSchema, type Role, type SessionRestriction, type User } from '../../db/entities/index.js';
import { sessionEnded, unauthenticated } from '../errors.js';
import type { AuthDeps } from '../deps.js';
import { API_KEY_PREFIX, sha256, verifyAccessToken } from '../routes/auth/tokens.js';

/**
 * Who is calling, as authentication sets it: one shape for a session (JWT access token) and for an
 * API key (roles = the key's roles intersected with the owner's current ones). defineRoute resolves
 * it against the roles table into the `Principal` (api/authz/principal.ts) handlers receive.
 */
export interface AuthedUser {
  id: string;
  username: string;
  roles: Role[];
  customerId: string | null;
  sessionId?: string;
  apiKeyId?: string;
  /** Last MFA verification of this session (never set for API keys). */
  mfaAt?: Date;
  mfaEnrolled: boolean;
  /** A restricted principal may only lift the restriction (see RouteSpec.allowRestricted). */
  restricted?: SessionRestriction;
}

declare module 'express-serve-static-core' {
  interface Request {
    user?: AuthedUser;
    requestId: string;
    /** Step-up window and the clock's now, set by authenticate for defineRoute. */
    authContext?: { stepUpMinutes: number; now: Date };
  }
}

/** Writing last_seen_at on every request would make every read a write; this much staleness is fine. */
const LAST_SEEN_RESOLUTION_MS = 5_000;

export const isMfaEnrolled = (u: Pick<User, 'totpEnabledAt' | 'mfaEmailEnabledAt'>) => Boolean(u.totpEnabledAt || u.mfaEmailEnabledAt);

function restrictionFor(deps: AuthDeps, u: User, sessionRestriction: SessionRestriction | null | undefined): SessionRestriction | undefined {
  if (sessionRestriction === 'password_change') return 'password_change';
  const needsMfa = deps.identity.settings.mfaRequiredRoles.some((r) => u.roles.includes(r as Role));
  if (needsMfa && !isMfaEnrolled(u)) return 'mfa_enrollment';
  return undefined;
}

/**
 * `Authorization: Bearer <token>`: an API key (`hf_…`, looked up by SHA-256) or a JWT access token
 * whose session row is read on every request — so a logout, kick-out or idle timeout takes effect
 * on the next request (a session check rather than a deny list: the row is needed anyway for
 * last-seen, idle timeout and MFA freshness, and it is one primary-key lookup). Sets req.user;
 * routes decide whether a user is required.
 */
export function authenticate(deps: AuthDeps): RequestHandler {
  const { identity } = deps;
  return async (req, _res, next) => {
    const now = identity.clock();
    req.authContext = { stepUpMinutes: identity.settings.stepUpMinutes, now };
    const header = req.headers.authorization;
    if (!header) return next();
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw unauthenticated('Authorization header must be "Bearer <token>"');
    const token = m[1]!;
    const em = deps.em.fork();

    if (token.startsWith(API_KEY_PREFIX)) {
      const key = await em.findOne(ApiKeySchema, { keyHash: sha256(token), revokedAt: null });
      if (!key || (key.expiresAt && key.expiresAt <= now)) throw unauthenticated('invalid, expired or revoked API key');
      const u = await em.findOne(UserSchema, { id: key.userId, disabledAt: null });
      if (!u) throw unauthenticated('invalid, expired or revoked API key');
      if (!key.lastUsedAt || now.getTime() - key.lastUsedAt.getTime() > LAST_SEEN_RESOLUTION_MS || key.lastUsedIp !== (req.ip ?? null)) {
        await em.nativeUpdate(ApiKeySchema, { id: key.id }, { lastUsedAt: now, lastUsedIp: req.ip ?? null });
      }
      req.user = {
        id: u.id,
        username: u.username,
        roles: key.roles.filter((r) => u.roles.includes(r)),
        customerId: u.customerId ?? null,
        apiKeyId: key.id,
        mfaEnrolled: isMfaEnrolled(u),
        restricted: restrictionFor(deps, u, null),
      };
      return next();
    }

    const claims = await verifyAccessToken(identity, token);
    if (!claims) throw unauthenticated('invalid or expired access token');
    const s = await em.findOne(SessionSchema, { id: claims.sessionId, userId: claims.userId });
    if (!s || s.revokedAt) throw sessionEnded(s?.revokeReason);
    if (now.getTime() - s.lastSeenAt.getTime() > identity.settings.idleTimeoutMinutes * 60_000) {
      await em.nativeUpdate(SessionSchema, { id: s.id, revokedAt: null }, { revokedAt: now, revokeReason: 'idle' });
      throw sessionEnded('idle', 'session ended (idle timeout)');
    }
    const u = await em.findOne(UserSchema, { id: s.userId, disabledAt: null });
    if (!u) throw unauthenticated('session ended');
    if (now.getTime() - s.lastSeenAt.getTime() > LAST_SEEN_RESOLUTION_MS) {
      await em.nativeUpdate(SessionSchema, { id: s.id }, { lastSeenAt: now });
    }
    req.user = {
      id: u.id,
      username: u.username,
      roles: u.roles,
      customerId: u.customerId ?? null,
      sessionId: s.id,
      mfaAt: s.mfaAt ?? undefined,
      mfaEnrolled: isMfaEnrolled(u),
      restricted: restrictionFor(deps, u, s.restricted),
    };
    next();
  };
}
