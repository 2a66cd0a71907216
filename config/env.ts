import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65535);

/** Every environment variable the platform reads, in one place. */
export const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** `auto` (default): human-readable coloured lines when stdout is a terminal, JSON otherwise; or force `json` / `pretty`. */
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),
  /** Where embedded state lives: PGlite data, Temporal dev server DB, generated keys. */
  DATA_DIR: z.string().min(1).default('.data'),

  API_HOST: z.string().min(1).default('127.0.0.1'),
  API_PORT: port.default(3000),

  /** PostgreSQL connection string. When unset, embedded PGlite under DATA_DIR is used. */
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),

  /** Address of an existing Temporal frontend. When unset, `npm start` runs an embedded dev server. */
  TEMPORAL_ADDRESS: z.string().regex(/^[^\s:]+:\d+$/, 'must be host:port').optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('hostflow'),
  TEMPORAL_TLS_CERT_PATH: z.string().optional(),
  TEMPORAL_TLS_KEY_PATH: z.string().optional(),
  TEMPORAL_TLS_CA_PATH: z.string().optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().optional(),
  TEMPORAL_API_KEY: z.string().optional(),
  /** Path to a `temporal` CLI binary; otherwise it is built with `go install` into HOSTFLOW_CACHE_DIR. */
  TEMPORAL_CLI_PATH: z.string().optional(),
  TEMPORAL_UI_PORT: port.default(8233),
  /**
   * Origins of the Temporal Web UI allowed to call the codec endpoint (CORS), comma-separated. Default:
   * the embedded dev server's UI (http://localhost:<TEMPORAL_UI_PORT> and http://127.0.0.1:<TEMPORAL_UI_PORT>).
   */
  TEMPORAL_UI_ORIGINS: z.string().regex(/^(https?:\/\/[^\s,]+)(,\s*https?:\/\/[^\s,]+)*$/, 'must be a comma-separated list of http(s) origins').optional(),
  /** The codec endpoint URL the embedded dev server's UI is started with (default: <PUBLIC_BASE_URL>/api/v1/temporal/codec). */
  TEMPORAL_UI_CODEC_ENDPOINT: z.string().regex(/^https?:\/\/[^\s]+$/, 'must be an http:// or https:// URL').optional(),
  TEMPORAL_DEV_PORT: port.default(7233),
  HOSTFLOW_CACHE_DIR: z.string().optional(),

  /**
   * Encryption keys for secrets at rest: `keyId:base64(32 bytes)[,keyId:base64...]`, first = active.
   * When unset, a key is generated once into DATA_DIR/keys.json (mode 0600) for the embedded setup.
   */
  HOSTFLOW_ENCRYPTION_KEYS: z.string().optional(),
  /**
   * Keys of the Temporal payload codec (workflow inputs, results, updates, memos, heartbeats and
   * failure messages are AES-256-GCM ciphertext in Temporal): same format, first = active. Rotate by
   * putting a new key first and keeping the old ones while runs that used them exist. When unset,
   * generated once into DATA_DIR/payload-keys (mode 0600); every API and worker process needs the same keys.
   */
  HOSTFLOW_PAYLOAD_KEYS: z.string().optional(),
  /**
   * HS256 key for access tokens (at least 32 characters). When unset, one is generated once into
   * DATA_DIR/jwt.key (mode 0600) for the embedded setup; set it explicitly when several API processes run.
   */
  HOSTFLOW_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** Base URL of the API as users reach it, for links in emails (password reset, activation). Default http://127.0.0.1:<API_PORT>. */
  PUBLIC_BASE_URL: z.string().regex(/^https?:\/\/[^\s]+$/, 'must be an http:// or https:// URL').optional(),

  // Identity policy. Defaults follow seed 004 (§8.1); seed 003's values are noted where they differ.
  /** Access token lifetime (004: 15 min). */
  AUTH_ACCESS_TOKEN_MINUTES: z.coerce.number().int().min(1).max(24 * 60).default(15),
  /** Refresh token lifetime (004: 7 days); every refresh rotates it. */
  AUTH_REFRESH_TOKEN_DAYS: z.coerce.number().min(1 / 24).max(90).default(7),
  /** A session with no request for this long is logged out (003: 30 min). */
  AUTH_IDLE_TIMEOUT_MINUTES: z.coerce.number().int().min(1).max(7 * 24 * 60).default(30),
  /** Concurrent sessions per user (003: 3; 004: "N devices"). */
  AUTH_MAX_SESSIONS: z.coerce.number().int().min(1).max(100).default(3),
  /** What a login beyond AUTH_MAX_SESSIONS does: end the oldest session, or be refused. */
  AUTH_SESSION_LIMIT_POLICY: z.enum(['evict-oldest', 'refuse']).default('evict-oldest'),
  /** Failed logins before an account is locked (004: 5; 003: 3). */
  AUTH_LOCKOUT_THRESHOLD: z.coerce.number().int().min(1).max(100).default(5),
  /** Failed logins from one source IP (any usernames) before that IP is locked. */
  AUTH_IP_LOCKOUT_THRESHOLD: z.coerce.number().int().min(1).max(1000).default(5),
  /** Lock duration, and the window failures are counted in (004 and 003: 30 min). */
  AUTH_LOCKOUT_MINUTES: z.coerce.number().int().min(1).max(24 * 60).default(30),
  /** Roles (names in the roles table, e.g. admin,customer_owner) whose users must enrol MFA before they can use anything but the enrolment routes (comma list; empty = none). */
  AUTH_MFA_REQUIRED_ROLES: z.string().regex(/^[a-z0-9_.,\s-]*$/, 'must be a comma-separated list of role names').default(''),
  /** How recent an MFA check must be for step-up operations (reveal a secret, force reclaim, terminate, unlock). */
  AUTH_STEP_UP_MINUTES: z.coerce.number().int().min(1).max(60).default(5),
  /** Password policy (004: at least 8 characters with lower, upper, digit and symbol; 003 the same). */
  PASSWORD_MIN_LENGTH: z.coerce.number().int().min(6).max(128).default(8),
  /** Character classes a password needs: any of lower,upper,digit,symbol. */
  PASSWORD_CHARACTER_CLASSES: z.string().regex(/^((lower|upper|digit|symbol)(,(lower|upper|digit|symbol))*)?$/, 'must be a comma list of lower, upper, digit, symbol').default('lower,upper,digit,symbol'),
  /** A new password may not be one of the last N (stored as hashes). 0 disables the check. */
  PASSWORD_HISTORY: z.coerce.number().int().min(0).max(24).default(5),
  /** Days after which a password must be changed at next login (0 = never; 004: "定期更换"). */
  PASSWORD_MAX_AGE_DAYS: z.coerce.number().int().min(0).max(3650).default(0),
  /** argon2id parameters (OWASP: 19 MiB, 2 passes, 1 lane); hashes with other parameters are rehashed at login. */
  ARGON2_MEMORY_KIB: z.coerce.number().int().min(1024).max(1024 * 1024).default(19456),
  ARGON2_TIME_COST: z.coerce.number().int().min(1).max(20).default(2),
  ARGON2_PARALLELISM: z.coerce.number().int().min(1).max(16).default(1),

  /** SMTP server for email notifications, e.g. smtp://user:pass@mail:587. Unset: notifications are recorded as skipped. */
  SMTP_URL: z.string().regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL').optional(),
  SMTP_FROM: z.string().min(3).default('Hostflow <hostflow@localhost>'),
  /** SMTP connections the pooled transport keeps open. */
  SMTP_POOL_SIZE: z.coerce.number().int().min(1).max(50).default(5),
  /** Language of messages to recipients without a preference: en or zh-CN. */
  NOTIFY_DEFAULT_LANGUAGE: z.enum(['en', 'zh-CN']).default('en'),
  /** Messages per recipient and channel per hour; more are suppressed (0: no limit). */
  NOTIFY_RATE_LIMIT_PER_HOUR: z.coerce.number().int().min(0).default(60),
  /** Comma-separated words that suppress a message containing them (sensitive-word filter). */
  NOTIFY_SENSITIVE_WORDS: z.string().default(''),
  /** Delivery attempts per message (with the activity's backoff) before it is recorded failed. */
  NOTIFY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(6),
  /** Slack app signing secret: verifies interactivity callbacks (Approve / Reject buttons). */
  SLACK_SIGNING_SECRET: z.string().min(8).optional(),
  /** Days an account opening request waits for a decision before it expires. */
  ACCOUNT_OPENING_EXPIRY_DAYS: z.coerce.number().positive().max(365).default(7),
  /** Days each waiting step of a registration (verify, department review, changes, role approval) may take; reviewers are reminded at half-time. */
  REGISTRATION_STEP_DAYS: z.coerce.number().positive().max(90).default(7),
  /** Public registration submits (POST /registrations) per source address per REGISTRATION_RATE_WINDOW_MINUTES; more answer 429 with Retry-After (0: no limit). */
  REGISTRATION_RATE_LIMIT: z.coerce.number().int().min(0).max(10_000).default(5),
  REGISTRATION_RATE_WINDOW_MINUTES: z.coerce.number().int().min(1).max(7 * 24 * 60).default(60),
  /** Default buffer between a lease's end and the reclaim of its host (per allocation overridable). */
  LEASE_BUFFER_DAYS: z.coerce.number().min(0).max(90).default(3),
  /** Default time running tasks get, after a notice, before reclaim stops them. */
  RECLAIM_GRACE_MINUTES: z.coerce.number().min(0).max(7 * 24 * 60).default(60),

  /** Public domains of hosts are `<slug>.<REMOTE_ACCESS_BASE_DOMAIN>` unless overridden. */
  REMOTE_ACCESS_BASE_DOMAIN: z.string().regex(/^[a-z0-9.-]+$/, 'must be a DNS domain').default('hosts.hostflow.local'),
  /** Public address of the remote-access gateway (what `<slug>.<base_domain>` resolves to); public ports are unique per gateway. Default: REMOTE_ACCESS_BASE_DOMAIN. */
  REMOTE_ACCESS_GATEWAY_ADDRESS: z.string().regex(/^[A-Za-z0-9.:-]+$/, 'must be a host name or IP address').optional(),
  /** Public ports the gateway hands out, `from-to` inclusive, one per entry. */
  REMOTE_ACCESS_PORT_POOL: z
    .string()
    .regex(/^\d{1,5}-\d{1,5}$/, 'must look like 20000-29999')
    .refine((v) => {
      const [a, b] = v.split('-').map(Number);
      return a! >= 1 && b! <= 65535 && a! <= b!;
    }, 'must be from-to with 1 <= from <= to <= 65535')
    .default('20000-29999'),
  /**
   * The platform-managed nginx of the gateway: the config file `gateway-sync` owns (written
   * atomically, checked with `nginx -t`, then `nginx -s reload`). Unset: no gateway is managed and
   * gateway-sync reports `not-configured`.
   */
  GATEWAY_NGINX_CONF: z.string().min(1).optional(),
  /** nginx binary of the gateway. */
  GATEWAY_NGINX_BIN: z.string().min(1).default('/usr/sbin/nginx'),
  /** nginx prefix (-p) of the gateway: pid file, logs and temp dirs live under it. Default: the directory of GATEWAY_NGINX_CONF. */
  GATEWAY_NGINX_PREFIX: z.string().min(1).optional(),
  /** Address the gateway's listeners bind to. */
  GATEWAY_LISTEN_ADDRESS: z.string().regex(/^[0-9a-fA-F.:[\]]+$/, 'must be an IP address').default('0.0.0.0'),
  /** Interval of the `gateway-sync` drift Schedule (re-renders, re-checks and reloads when the file or the running nginx drifted). */
  GATEWAY_SYNC_INTERVAL: z.string().regex(/^\d+\s*(s|m|h|d)$/, 'must look like 5m, 1h').default('5m'),
  /** Web terminal: a session with no input or output for this long ends (seed 001 §6.1.2: 30 min). */
  TERMINAL_IDLE_TIMEOUT_MINUTES: z.coerce.number().int().min(1).max(24 * 60).default(30),
  /** Web terminal: the longest one session may last. */
  TERMINAL_MAX_DURATION_HOURS: z.coerce.number().min(0.1).max(24 * 30).default(12),
  /** Web terminal / VNC: live sessions per user. */
  TERMINAL_MAX_SESSIONS_PER_USER: z.coerce.number().int().min(1).max(100).default(3),
  /** A session that moves more than this many MiB (both ways) raises a `security.alert.transfer` audit event (seed 001 §7.4). */
  TERMINAL_TRANSFER_ALERT_MIB: z.coerce.number().int().min(1).default(1024),
  /** Web terminal: a dropped socket may resume its session (same row, same recording) within this many seconds; 0 ends it at once. */
  TERMINAL_RECONNECT_GRACE_SECONDS: z.coerce.number().int().min(0).max(3600).default(30),
  /** Terminal recordings of sessions that ended more than this many days ago are deleted or archived by the `recording-retention` Schedule; 0 keeps them all. */
  RECORDING_RETENTION_DAYS: z.coerce.number().int().min(0).max(36500).default(180),
  /** `delete` (the file goes, the session row stays) or `archive` (the encrypted file moves to DATA_DIR/recordings-archive/<yyyy-mm>/, still playable). */
  RECORDING_RETENTION_MODE: z.enum(['delete', 'archive']).default('delete'),
  /** Interval of the `recording-retention` Temporal Schedule. */
  RECORDING_RETENTION_INTERVAL: z.string().regex(/^\d+\s*(s|m|h|d)$/, 'must look like 1d, 12h').default('1d'),
  /** Web terminal: the largest file one SFTP upload or download may move. */
  TERMINAL_SFTP_MAX_MIB: z.coerce.number().int().min(1).max(1024 * 1024).default(100),
  /** Interval of the `host-recheck` Temporal Schedule (re-collects facts, marks unreachable hosts offline). */
  HOST_RECHECK_INTERVAL: z.string().regex(/^\d+\s*(s|m|h|d)$/, 'must look like 15m, 1h, 30s').default('15m'),
  HOST_RECHECK_OFFLINE_AFTER: z.coerce.number().int().min(1).default(3),
  /** How often security events are delivered as notifications (Schedule `security-alerts`). */
  SECURITY_ALERT_INTERVAL: z.string().regex(/^\d+\s*(s|m|h|d)$/, 'must look like 1m, 30s').default('1m'),

  /** Audit rows older than this go to DATA_DIR/audit-archive/ (gzip JSON lines) and leave the table; 0 keeps everything. */
  AUDIT_RETENTION_DAYS: z.coerce.number().int().min(0).max(36500).default(365),
  /** Interval of the `audit-archive` Temporal Schedule. */
  AUDIT_ARCHIVE_INTERVAL: z.string().regex(/^\d+\s*(s|m|h|d)$/, 'must look like 1d, 12h').default('1d'),
  /** Working hours for the off-hours access alert, `HH:MM-HH:MM` (unset: rule off), in SECURITY_WORK_TIMEZONE. */
  SECURITY_WORK_HOURS: z.string().regex(/^\d{2}:\d{2}-\d{2}:\d{2}$/, 'must look like 08:00-20:00').optional(),
  SECURITY_WORK_TIMEZONE: z.string().min(1).default('UTC'),
  /** Alert rules: failed logins of one account / 403 answers to one actor within their window. */
  SECURITY_LOGIN_FAILURE_THRESHOLD: z.coerce.number().int().min(1).default(5),
  SECURITY_FORBIDDEN_THRESHOLD: z.coerce.number().int().min(1).default(5),

  /** Bearer token Prometheus must send to GET /metrics. Unset: /metrics answers loopback clients only. */
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  /**
   * host:port for the Temporal SDK's own Prometheus exporter (Runtime.install telemetry: worker
   * polls, task latencies, temporal_workflow_completed/failed per type, schedule-to-start). Its
   * series are appended to /metrics. Unset: not exported.
   */
  TEMPORAL_SDK_METRICS_ADDRESS: z.string().regex(/^[^\s:]+:\d+$/, 'must be host:port').optional(),
  /**
   * host:port where a standalone worker (`npm run worker`) serves GET /metrics: its activity,
   * remote-command, lease-notice-lag, notification and DB-pool series (and the SDK's, when
   * TEMPORAL_SDK_METRICS_ADDRESS is set), behind METRICS_TOKEN like the API's (unset: loopback
   * scrapers only). Unset: the worker serves no metrics. Ignored by `npm start`, whose API /metrics
   * already carries the in-process worker's series.
   */
  WORKER_METRICS_ADDRESS: z.string().regex(/^[^\s:]+:\d+$/, 'must be host:port').optional(),
  /**
   * OpenTelemetry traces (config/tracing.ts): `otlp` (OTLP/HTTP to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
   * or OTEL_EXPORTER_OTLP_ENDPOINT, read by the exporter itself), `console`, `none`. Unset: otlp
   * when an OTLP endpoint is set, otherwise off.
   */
  OTEL_TRACES_EXPORTER: z.enum(['otlp', 'console', 'none']).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url().optional(),

  SSH_CONNECT_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().positive().default(30_000),
  /**
   * Workflows a worker keeps in memory between tasks (the SDK's default grows with the heap, ~2,300
   * on a 24 GiB machine, which put 10,000 sleeping leases at 1.4 GB RSS). Evicted ones replay their
   * short history when they wake. bench/leases.ts measures it.
   */
  WORKER_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(0).default(500),
}).superRefine((v, ctx) => {
  if (Boolean(v.TEMPORAL_TLS_CERT_PATH) !== Boolean(v.TEMPORAL_TLS_KEY_PATH)) {
    ctx.addIssue({ code: 'custom', path: ['TEMPORAL_TLS_KEY_PATH'], message: 'TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH must be set together' });
  }
});

export type Env = Readonly<z.infer<typeof EnvSchema>>;

export class ConfigError extends Error {
  constructor(public readonly issues: string[]) {
    super(`Invalid configuration:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses an environment (pure: used by tests with their own maps). Empty strings count as unset. */
export function parseEnv(source: Record<string, string | undefined>): Env {
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const result = EnvSchema.safeParse(cleaned);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}${i.path[0] && source[String(i.path[0])] === undefined && i.code === 'invalid_type' ? ' (missing)' : ''}`),
    );
  }
  return Object.freeze(result.data);
}

let cached: Env | undefined;

/** The process environment, parsed once. A bad variable stops the process with a message naming it. */
export function env(): Env {
  if (!cached) {
    try {
      cached = parseEnv(process.env);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`${err.message}\n`);
        process.exit(1);
      }
      throw err;
    }
  }
  return cached;
}

/** Base URL for links in emails: PUBLIC_BASE_URL, else the local API address. */
export const publicBaseUrl = (e: Env): string => (e.PUBLIC_BASE_URL ?? `http://127.0.0.1:${e.API_PORT}`).replace(/\/+$/, '');
