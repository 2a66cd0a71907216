/** API errors → the envelope `{ code, message, data, errors?, request_id? }` with a matching HTTP status. */
export interface FieldError {
  field: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    public readonly status: number,
    public readonly code: number,
    message: string,
    public readonly errors?: FieldError[],
    public readonly data?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const validationError = (errors: FieldError[], message?: string) =>
  new ApiError(400, 40001, message ?? `validation failed: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`, errors);
export const unauthenticated = (message = 'authentication required') => new ApiError(401, 40101, message);
/** The session behind a token has ended; data.reason says why (logout, kicked, idle, refresh_reuse, password_change…) so a console can tell the user. */
export const sessionEnded = (reason: string | null | undefined, message = 'session ended') =>
  new ApiError(401, 40101, message, undefined, reason ? { reason } : undefined);
export const forbidden = (message = 'forbidden') => new ApiError(403, 40301, message);
export const notFound = (what: string) => new ApiError(404, 40401, `${what} not found`);
export const conflict = (message: string, data?: unknown) => new ApiError(409, 40901, message, undefined, data);
export const internal = () => new ApiError(500, 50001, 'internal error');
export const unavailable = (message: string) => new ApiError(503, 50301, message);
/** Login needs a second factor (the data lists the methods the account has). */
export const secondFactorRequired = (methods: string[]) =>
  new ApiError(401, 40102, 'a second factor is required: repeat the login with totp_code, recovery_code or email_code', undefined, { mfa_required: true, methods });
/** A sensitive operation needs a recent MFA check. */
export const stepUpRequired = (minutes: number) =>
  new ApiError(401, 40103, `this operation needs an MFA check within the last ${minutes} minutes: POST /api/v1/auth/mfa/verify {totp_code | recovery_code | email_code} with a session token, then retry`);
/** The session may only lift its restriction (change the password, enrol MFA). */
export const restrictedSession = (what: 'password_change' | 'mfa_enrollment') =>
  new ApiError(403, 40302, what === 'password_change'
    ? 'password change required: POST /api/v1/auth/password/change first'
    : 'MFA enrolment required by policy: POST /api/v1/auth/mfa/totp/enroll first');
/** Too many failed logins for this account or from this address. */
export const loginLocked = (retryAfterSeconds: number) =>
  new ApiError(429, 42901, 'too many failed logins for this account or from this address; try again later', undefined, { retry_after_seconds: retryAfterSeconds });
