import type { RequestHandler } from 'express';
import { ApiKeySchema, SessionSchema, type Role, type SessionRestriction, type User } from '../../db/entities/index.js';
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

/** Epoch milliseconds as float8: the same JS number from PostgreSQL and PGlite (their raw timestamp types differ). */
const ms = (col: string) => `(extract(epoch from ${col}) * 1000)::float8`;
const USER_COLUMNS = `"u"."id" as "user_id", "u"."username", "u"."roles" as "user_roles", "u"."customer_id", ("u"."totp_enabled_at" is not null or "u"."mfa_email_enabled_at" is not null) as "mfa_enrolled"`;
/**
 * A session and its (enabled) user in one primary-key lookup. The user is left-joined so that an
 * idle session of a disabled user is still ended as idle, as before.
 */
export const SESSION_AUTH_SQL = `select "s"."id", ${ms('"s"."last_seen_at"')} as "last_seen_ms", ${ms('"s"."mfa_at"')} as "mfa_ms", "s"."restricted", ("s"."revoked_at" is not null) as "revoked", "s"."revoke_reason", ${USER_COLUMNS} from "sessions" as "s" left join "users" as "u" on "u"."id" = "s"."user_id" and "u"."disabled_at" is null where "s"."id" = ? and "s"."user_id" = ?`;
/** An unrevoked API key by its hash and its enabled owner, in one lookup on the unique hash index. */
export const API_KEY_AUTH_SQL = `select "k"."id", "k"."roles" as "key_roles", ${ms('"k"."expires_at"')} as "expires_ms", ${ms('"k"."last_used_at"')} as "last_used_ms", "k"."last_used_ip", ${USER_COLUMNS} from "api_keys" as "k" join "users" as "u" on "u"."id" = "k"."user_id" and "u"."disabled_at" is null where "k"."key_hash" = ? and "k"."revoked_at" is null`;

interface UserColumns {
  user_id: string | null;
  username: string;
  user_roles: Role[];
  customer_id: string | null;
  mfa_enrolled: boolean;
}
interface SessionAuthRow extends UserColumns {
  id: string;
  last_seen_ms: number;
  mfa_ms: number | null;
  restricted: SessionRestriction | null;
  revoked: boolean;
  revoke_reason: string | null;
}
interface ApiKeyAuthRow extends UserColumns {
  id: string;
  key_roles: Role[];
  expires_ms: number | null;
  last_used_ms: number | null;
  last_used_ip: string | null;
}

function restrictionOf(deps: AuthDeps, roles: Role[], mfaEnrolled: boolean, sessionRestriction: SessionRestriction | null | undefined): SessionRestriction | undefined {
  if (sessionRestriction === 'password_change') return 'password_change';
  const needsMfa = deps.identity.settings.mfaRequiredRoles.some((r) => roles.includes(r as Role));
  if (needsMfa && !mfaEnrolled) return 'mfa_enrollment';
  return undefined;
}

/**
 * `Authorization: Bearer <token>`: an API key (`hf_…`, looked up by SHA-256) or a JWT access token
 * whose session row is read on every request — so a logout, kick-out or idle timeout takes effect
 * on the next request, in this API process or any other (a session check rather than a deny list
 * or a cache: the row is needed anyway for last-seen, idle timeout and MFA freshness). Either is one
 * indexed lookup joined with the user (SESSION_AUTH_SQL / API_KEY_AUTH_SQL), read as plain rows.
 * Sets req.user; routes decide whether a user is required.
 */
export function authenticate(deps: AuthDeps): RequestHandler {
  const { identity } = deps;
  const stepUpMinutes = identity.settings.stepUpMinutes;
  return async (req, _res, next) => {
    const now = identity.clock();
    req.authContext = { stepUpMinutes, now };
    const header = req.headers.authorization;
    if (!header) return next();
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw unauthenticated('Authorization header must be "Bearer <token>"');
    const token = m[1]!;
    const conn = deps.em.getConnection();
    const nowMs = now.getTime();

    if (token.startsWith(API_KEY_PREFIX)) {
      const [key] = await conn.execute<ApiKeyAuthRow[]>(API_KEY_AUTH_SQL, [sha256(token)]);
      if (!key || (key.expires_ms !== null && key.expires_ms <= nowMs)) throw unauthenticated('invalid, expired or revoked API key');
      if (key.last_used_ms === null || nowMs - key.last_used_ms > LAST_SEEN_RESOLUTION_MS || key.last_used_ip !== (req.ip ?? null)) {
        await deps.em.fork().nativeUpdate(ApiKeySchema, { id: key.id }, { lastUsedAt: now, lastUsedIp: req.ip ?? null });
      }
      req.user = {
        id: key.user_id!,
        username: key.username,
        roles: key.key_roles.filter((r) => key.user_roles.includes(r)),
        customerId: key.customer_id ?? null,
        apiKeyId: key.id,
        mfaEnrolled: key.mfa_enrolled,
        restricted: restrictionOf(deps, key.user_roles, key.mfa_enrolled, null),
      };
      return next();
    }

    const claims = await verifyAccessToken(identity, token);
    if (!claims) throw unauthenticated('invalid or expired access token');
    req.user = await sessionUser(deps, claims, now);
    next();
  };
}

/**
 * The user of a login session, as a JWT's claims name it: the session row is read (revoked → 401,
 * idle → ended now), last-seen refreshed. Shared by the Bearer access token and the Temporal Web
 * UI's codec cookie, so both die with the session.
 */
export async function sessionUser(deps: AuthDeps, claims: { userId: string; sessionId: string }, now: Date): Promise<AuthedUser> {
  const { identity } = deps;
  const conn = deps.em.getConnection();
  const nowMs = now.getTime();
  const [s] = await conn.execute<SessionAuthRow[]>(SESSION_AUTH_SQL, [claims.sessionId, claims.userId]);
  if (!s || s.revoked) throw sessionEnded(s?.revoke_reason);
  if (nowMs - s.last_seen_ms > identity.settings.idleTimeoutMinutes * 60_000) {
    await deps.em.fork().nativeUpdate(SessionSchema, { id: s.id, revokedAt: null }, { revokedAt: now, revokeReason: 'idle' });
    throw sessionEnded('idle', 'session ended (idle timeout)');
  }
  if (!s.user_id) throw unauthenticated('session ended');
  if (nowMs - s.last_seen_ms > LAST_SEEN_RESOLUTION_MS) {
    await deps.em.fork().nativeUpdate(SessionSchema, { id: s.id }, { lastSeenAt: now });
  }
  return {
    id: s.user_id,
    username: s.username,
    roles: s.user_roles,
    customerId: s.customer_id ?? null,
    sessionId: s.id,
    mfaAt: s.mfa_ms === null ? undefined : new Date(s.mfa_ms),
    mfaEnrolled: s.mfa_enrolled,
    restricted: restrictionOf(deps, s.user_roles, s.mfa_enrolled, s.restricted),
  };
}
