/** Retry policies shared by workflows (deterministic constants only). */
export const NON_RETRYABLE_REMOTE = [
  'AuthenticationFailed',
  'HostKeyMismatch',
  'HostNotFound',
  'CredentialMissing',
  'AccountExistsNotManaged',
  'InvalidInput',
  'MissingGroup',
  'LoginVerificationFailed',
];

export const remoteRetry = {
  initialInterval: '2 seconds',
  backoffCoefficient: 2,
  maximumInterval: '1 minute',
  maximumAttempts: 5,
  nonRetryableErrorTypes: NON_RETRYABLE_REMOTE,
};
