import { z } from '../../openapi.js';

const code = z.string().max(64);
export const SecondFactor = {
  totp_code: z.string().regex(/^\d{6}$/, 'must be 6 digits').optional(),
  recovery_code: code.optional(),
  email_code: z.string().regex(/^\d{6}$/, 'must be 6 digits').optional(),
};

export const LoginBody = z
  .object({ username: z.string().min(1).max(64), password: z.string().min(1).max(256), ...SecondFactor })
  .openapi('LoginRequest');

export const TokenPair = z
  .object({
    access_token: z.string(),
    token_type: z.literal('Bearer'),
    expires_in: z.number().int().openapi({ description: 'Seconds until the access token expires' }),
    refresh_token: z.string().optional().openapi({ description: 'Single use: each refresh returns a new one; reusing an old one ends the session. Absent when the request asked for the cookie (X-Hostflow-Refresh: cookie)' }),
    refresh_expires_at: z.string(),
    session_id: z.string().uuid(),
    restricted: z.enum(['password_change']).nullable().openapi({ description: 'password_change: this session may only change the password' }),
  })
  .openapi('TokenPair');

export const RefreshBody = z.object({ refresh_token: z.string().min(1).max(200).optional().openapi({ description: 'Omit to use the hf_refresh cookie' }) }).openapi('RefreshRequest');
export const PasswordChangeBody = z.object({ current_password: z.string().min(1).max(256), new_password: z.string().min(1).max(256) }).openapi('PasswordChange');
export const PasswordResetBody = z.object({ email: z.string().email().max(255) }).openapi('PasswordResetRequest');
export const PasswordResetConfirmBody = z.object({ token: z.string().min(1).max(200), new_password: z.string().min(1).max(256) }).openapi('PasswordResetConfirm');
export const CodeBody = z.object({ code: z.string().regex(/^\d{6}$/, 'must be 6 digits') });
export const VerifyBody = z.object(SecondFactor).openapi('MfaVerify');

export const Me = z
  .object({
    id: z.string().uuid(),
    username: z.string(),
    email: z.string().nullable(),
    roles: z.array(z.string()).openapi({ description: 'Role names (for an API key: its subset of the owner roles)' }),
    permissions: z.array(z.string()).openapi({ description: 'Effective permissions of those roles (GET /api/v1/permissions)' }),
    customer_id: z.string().nullable(),
    session_id: z.string().nullable(),
    api_key_id: z.string().nullable(),
    mfa: z.object({ totp: z.boolean(), email: z.boolean(), recovery_codes_left: z.number().int(), verified_at: z.string().nullable() }),
    restricted: z.enum(['password_change', 'mfa_enrollment']).nullable(),
    must_change_password: z.boolean(),
  })
  .openapi('Me');

export const SessionDto = z
  .object({
    id: z.string().uuid(),
    user_id: z.string().uuid(),
    username: z.string().optional(),
    user_agent: z.string().nullable(),
    ip: z.string().nullable(),
    created_at: z.string(),
    last_seen_at: z.string(),
    mfa_at: z.string().nullable(),
    restricted: z.string().nullable(),
    current: z.boolean(),
  })
  .openapi('Session');

export const IdParams = z.object({ id: z.string().uuid('must be a session id (uuid)') });
export const Ok = z.object({ ok: z.literal(true) });
