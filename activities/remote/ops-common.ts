import { ApplicationFailure } from '@temporalio/common';
import { RemoteError, type ExecResult } from './executor.js';
import { outputSummary } from './output.js';
import * as linux from './linux.js';

/** Shared by the per-OS host operations (activities/linux/, activities/windows/): result checks and login-failure classification. */

/** A refused login (wrong password, disabled account) is `false`; anything else that failed is "could not tell". */
export async function refusedIsFalse(username: string, attempt: () => Promise<unknown>): Promise<boolean> {
  try {
    await attempt();
    return true;
  } catch (err) {
    if (err instanceof RemoteError && err.type === 'AuthenticationFailed' && err.details?.faultSubcode !== 'AccessDenied') return false;
    // WinRM's AccessDenied (HTTP 500) comes only after the password was accepted: the login works.
    if (err instanceof RemoteError && err.details?.faultSubcode === 'AccessDenied') return true;
    if (err instanceof RemoteError && err.type === 'HostKeyMismatch') throw ApplicationFailure.nonRetryable(`login as ${username}: ${err.message}`, 'HostKeyMismatch');
    throw ApplicationFailure.retryable(`could not tell whether ${username} can log in: ${(err as Error).message}`, err instanceof RemoteError ? err.type : 'HostUnreachable');
  }
}

export function check(r: ExecResult, what: string, okCodes: number[] = [0]): ExecResult {
  if (okCodes.includes(r.exitCode)) return r;
  const markers = linux.parseMarkers(r.stdout);
  const missing = markers.filter((m) => m.marker === 'MISSING_GROUP').map((m) => m.value);
  if (missing.length) throw ApplicationFailure.nonRetryable(`${what}: group(s) ${missing.join(', ')} do not exist on the host`, 'MissingGroup');
  if (markers.some((m) => m.marker === 'USER_EXISTS')) throw ApplicationFailure.nonRetryable(`${what}: the user already exists`, 'AccountExistsNotManaged');
  // Never the output itself: it reaches history and the customer-visible error (outputSummary).
  const detail = outputSummary(r);
  if (/sudo:/.test(r.stderr)) throw ApplicationFailure.nonRetryable(`${what}: the platform's login lacks passwordless sudo (${detail})`, 'PermissionDenied');
  // Unknown failures may be transient (package manager lock, NSS hiccup): let Temporal retry.
  throw ApplicationFailure.retryable(`${what} failed (${detail})`, 'RemoteCommandFailed');
}

/**
 * Classifies a failed login check: only a refused login (wrong password, locked account) is the
 * permanent `LoginVerificationFailed`; a host key mismatch stays what it is; an unreachable host,
 * a connect timeout or a command timeout is retryable (the host may come back).
 */
export function loginFailure(username: string, err: unknown): ApplicationFailure {
  const message = `login as ${username} failed: ${(err as Error).message}`;
  if (err instanceof RemoteError) {
    if (err.type === 'AuthenticationFailed') return ApplicationFailure.nonRetryable(message, 'LoginVerificationFailed');
    if (err.type === 'HostKeyMismatch') return ApplicationFailure.nonRetryable(message, 'HostKeyMismatch');
    return ApplicationFailure.retryable(message, err.type);
  }
  return ApplicationFailure.retryable(message, 'HostUnreachable');
}

