/** How activities run commands on a managed host, whatever the protocol (SSH for Linux, WinRM for Windows). */
export interface ExecOptions {
  /** Kill the command and fail after this long. */
  timeoutMs?: number;
  /** Called with output chunks as they arrive (activities turn these into heartbeats). */
  onOutput?: (chunk: { stream: 'stdout' | 'stderr'; data: string }) => void;
  /** Data written to the command's stdin, then closed (e.g. `chpasswd` input: secrets never go on a command line). */
  stdin?: string;
  signal?: AbortSignal;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface RemoteExecutor {
  exec(hostId: string, command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Drops pooled connections to a host (after credential or host key changes). */
  evict(hostId: string): void;
  close(): Promise<void>;
}

/**
 * Classified remote failures. `type` is what workflows branch on (err.cause?.type): the
 * non-retryable ones are turned into ApplicationFailure.nonRetryable by the activities.
 */
export type RemoteErrorType =
  | 'HostUnreachable' // network: retry
  | 'ConnectTimeout' // network: retry
  | 'AuthenticationFailed' // wrong credentials: do not retry
  | 'HostKeyMismatch' // possible MITM or reinstalled host: do not retry
  | 'CommandTimeout'
  | 'HostNotFound'
  | 'CredentialMissing'
  | 'InsecureTransport' // Basic over plain HTTP without the host's explicit permission: do not retry
  | 'HostKeyNotPinned'; // a login check before the host key is pinned: do not retry (pin first)

export const NON_RETRYABLE_REMOTE_ERRORS: ReadonlySet<RemoteErrorType> = new Set([
  'InsecureTransport',
  'HostKeyNotPinned',
  'AuthenticationFailed',
  'HostKeyMismatch',
  'HostNotFound',
  'CredentialMissing',
]);

export class RemoteError extends Error {
  override name = 'RemoteError';
  constructor(
    public readonly type: RemoteErrorType,
    message: string,
    public readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
  get retryable(): boolean {
    return !NON_RETRYABLE_REMOTE_ERRORS.has(this.type);
  }
}
