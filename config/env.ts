import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65535);

/** Every environment variable the platform reads, in one place. */
export const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
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
  TEMPORAL_DEV_PORT: port.default(7233),
  HOSTFLOW_CACHE_DIR: z.string().optional(),

  /**
   * Encryption keys for secrets at rest: `keyId:base64(32 bytes)[,keyId:base64...]`, first = active.
   * When unset, a key is generated once into DATA_DIR/keys.json (mode 0600) for the embedded setup.
   */
  HOSTFLOW_ENCRYPTION_KEYS: z.string().optional(),
  /** Token for the seeded admin user; when unset one is generated into DATA_DIR/admin.token (0600). */
  HOSTFLOW_ADMIN_TOKEN: z.string().min(24, 'must be at least 24 characters').optional(),

  /** SMTP server for email notifications, e.g. smtp://user:pass@mail:587. Unset: notifications are recorded as skipped. */
  SMTP_URL: z.string().regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL').optional(),
  SMTP_FROM: z.string().min(3).default('Hostflow <hostflow@localhost>'),
  /** Days an account opening request waits for a decision before it expires. */
  ACCOUNT_OPENING_EXPIRY_DAYS: z.coerce.number().positive().max(365).default(7),
  /** Base URL of the web front end: links in emails (verify, resubmit, set password) point here. */
  PUBLIC_BASE_URL: z.string().url().default('http://127.0.0.1:3000'),
  /** Days each waiting step of a registration (verify, department review, changes, role approval) may take; reviewers are reminded at half-time. */
  REGISTRATION_STEP_DAYS: z.coerce.number().positive().max(90).default(7),
  /** Default buffer between a lease's end and the reclaim of its host (per allocation overridable). */
  LEASE_BUFFER_DAYS: z.coerce.number().min(0).max(90).default(3),
  /** Default time running tasks get, after a notice, before reclaim stops them. */
  RECLAIM_GRACE_MINUTES: z.coerce.number().min(0).max(7 * 24 * 60).default(60),

  /** Public domains of hosts are `<slug>.<REMOTE_ACCESS_BASE_DOMAIN>` unless overridden. */
  REMOTE_ACCESS_BASE_DOMAIN: z.string().regex(/^[a-z0-9.-]+$/, 'must be a DNS domain').default('hosts.hostflow.local'),
  /** Interval of the `host-recheck` Temporal Schedule (re-collects facts, marks unreachable hosts offline). */
  HOST_RECHECK_INTERVAL: z.string().regex(/^\d+\s*(s|m|h|d)$/, 'must look like 15m, 1h, 30s').default('15m'),
  HOST_RECHECK_OFFLINE_AFTER: z.coerce.number().int().min(1).default(3),

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
