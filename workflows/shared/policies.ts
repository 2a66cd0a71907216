/**
 * Retry policies and activity options shared by workflows (deterministic constants only).
 *
 * Two budgets, because the two kinds of outage differ:
 * - a managed host (SSH/WinRM) that is unreachable: retried for about half an hour with backoff
 *   (5 s growing 1.5× to 2 min); errors retrying cannot fix fail at once (below).
 * - the platform's own database: retried for about ten minutes with backoff (1 s doubling to
 *   30 s), under short timeouts so a task handed to a dead worker is retried within seconds.
 * Changing these options does not change a workflow's command sequence (no patch needed).
 */
export const NON_RETRYABLE_REMOTE = [
  'AuthenticationFailed',
  'HostKeyMismatch',
  'HostNotFound',
  'CredentialMissing',
  'AccountExistsNotManaged',
  'InvalidInput',
  'MissingGroup',
  'LoginVerificationFailed',
  'PermissionDenied',
];

/**
 * Host errors: 22 attempts, 5 s · 1.5ⁿ capped at 2 min ≈ 30 minutes of an unreachable host. The
 * gentle backoff keeps the wait after a host (or the database) comes back short: after a 90 s
 * outage the next attempt is at most ~15 s away.
 */
export const remoteRetry = {
  initialInterval: '5 seconds',
  backoffCoefficient: 1.5,
  maximumInterval: '2 minutes',
  maximumAttempts: 22,
  nonRetryableErrorTypes: NON_RETRYABLE_REMOTE,
};
/** The same policy under the name that says what it is for. */
export const hostRetry = remoteRetry;

/** Database errors: 25 attempts, 1 s · 2ⁿ capped at 30 s ≈ 10 minutes of a database outage. */
export const dbRetry = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '30 seconds',
  maximumAttempts: 25,
  // A row that no longer exists (MikroORM's findOneOrFail) will not appear by retrying.
  nonRetryableErrorTypes: ['InvalidInput', 'NotFound', 'NotFoundError'],
};

/**
 * Options for DB-only bookkeeping activities (status mirrors, step records): a write takes
 * milliseconds, so 10 s start-to-close means a dead worker's task is retried within seconds.
 */
export const dbActivityOptions = {
  startToCloseTimeout: '10 seconds',
  retry: dbRetry,
};

/**
 * The last step of a lifecycle that records its final status: retried until it succeeds (every
 * minute at most), so a workflow never ends with its final status missing from the database.
 */
export const finalStatusOptions = {
  startToCloseTimeout: '10 seconds',
  // No maximumAttempts: unlimited. Only a deleted row stops it (nothing left to record).
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: ['NotFoundError'] },
};

/**
 * Notification sends (a DB record plus one SMTP message, exactly once per event key, so a retry is
 * safe): 15 s start-to-close, so a send handed to a dead worker is retried within seconds.
 */
export const notifyActivityOptions = {
  startToCloseTimeout: '15 seconds',
  retry: dbRetry,
};
