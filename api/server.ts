import type { Server } from 'node:http';
import { createApp } from './app.js';
import { securityRulesFromEnv } from '../db/audit/security-rules.js';
import { join } from 'node:path';
import { env, publicBaseUrl } from '../config/env.js';
import { authSettingsFromEnv, loadJwtKey } from '../config/auth.js';
import { PasswordHasher } from '../db/password-hash.js';
import type { AppDeps, IdentityDeps } from './deps.js';
import { createLogger } from '../config/logger.js';
import { openRuntime, type Runtime } from '../config/runtime.js';
import { temporalUiOrigins } from '../config/temporal.js';
import { registerHostStatusGauge } from '../config/metrics.js';

/** Listens with the runtime's dependencies; `close` stops accepting and drains open requests. */
/** Identity deps from the configuration: settings, the JWT key (env or DATA_DIR/jwt.key), mail. */
export async function identityFromRuntime(rt: Pick<Runtime, 'env' | 'mailer'>): Promise<IdentityDeps> {
  const settings = authSettingsFromEnv(rt.env);
  return {
    settings,
    jwtKey: await loadJwtKey(rt.env.HOSTFLOW_JWT_SECRET, join(rt.env.DATA_DIR, 'jwt.key')),
    hasher: new PasswordHasher(settings.argon2),
    clock: () => new Date(),
    mailer: rt.mailer,
    mailFrom: rt.env.SMTP_FROM,
    publicBaseUrl: publicBaseUrl(rt.env),
  };
}

export async function startApi(rt: Runtime, opts: { console?: AppDeps['console'] } = {}): Promise<{ server: Server; close: () => Promise<void> }> {
  registerHostStatusGauge(() => rt.db.em.fork().getConnection().execute<Array<{ status: string; n: number }>>('select status, count(*)::int as n from hosts group by status'));
  const app = createApp({
    console: opts.console,
    identity: await identityFromRuntime(rt),
    em: rt.db.em,
    vault: rt.vault,
    logger: rt.logger,
    temporal: { client: rt.temporal.client, taskQueue: rt.temporal.settings.taskQueue, eagerStart: rt.temporal.eagerStart },
    securityRules: securityRulesFromEnv(rt.env),
    slackSigningSecret: rt.env.SLACK_SIGNING_SECRET,
    terminal: {
      idleTimeoutMs: rt.env.TERMINAL_IDLE_TIMEOUT_MINUTES * 60_000,
      maxDurationMs: rt.env.TERMINAL_MAX_DURATION_HOURS * 3600_000,
      maxPerUser: rt.env.TERMINAL_MAX_SESSIONS_PER_USER,
      transferAlertBytes: rt.env.TERMINAL_TRANSFER_ALERT_MIB * 1024 * 1024,
      reconnectGraceMs: rt.env.TERMINAL_RECONNECT_GRACE_SECONDS * 1000,
      sftpMaxBytes: rt.env.TERMINAL_SFTP_MAX_MIB * 1024 * 1024,
      recordingDir: join(rt.env.DATA_DIR, 'recordings'),
    },
    codec: { corsOrigins: temporalUiOrigins(rt.env) },
    metrics: { token: rt.env.METRICS_TOKEN, sdkAddress: rt.env.TEMPORAL_SDK_METRICS_ADDRESS },
    settings: { accountOpeningExpiryDays: rt.env.ACCOUNT_OPENING_EXPIRY_DAYS, leaseBufferDays: rt.env.LEASE_BUFFER_DAYS, reclaimGraceMinutes: rt.env.RECLAIM_GRACE_MINUTES, registrationStepDays: rt.env.REGISTRATION_STEP_DAYS },
    checks: {
      db: () => rt.db.ping(),
      temporal: async () => {
        await rt.temporal.connection.workflowService.getSystemInfo({});
      },
    },
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(rt.env.API_PORT, rt.env.API_HOST, (err?: Error) => (err ? reject(err) : resolve(s)));
    s.once('error', reject);
  });
  server.keepAliveTimeout = 65_000;
  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

// Standalone API process: needs PostgreSQL (PGlite is single-process; `npm start` runs everything together).
if (import.meta.url === `file://${process.argv[1]}`) {
  const e = env();
  const logger = createLogger({ level: e.LOG_LEVEL, name: 'api' });
  if (!e.DATABASE_URL) {
    logger.fatal('a standalone API process needs DATABASE_URL (PGlite is single-process: use `npm start` for the embedded setup)');
    process.exit(1);
  }
  const rt = await openRuntime(e, logger);
  const api = await startApi(rt);
  logger.info({ url: `http://${e.API_HOST}:${e.API_PORT}` }, 'API listening');
  const stop = async () => {
    await api.close();
    await rt.close();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
