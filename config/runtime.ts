import { join } from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import type { Env } from './env.js';
import type { Logger } from './logger.js';
import { connectClient, createTemporalClient, loadPayloadKeyring, temporalSettings, type TemporalSettings } from './temporal.js';
import { initORM, type Db } from '../db/orm.js';
import { loadKeyring, Vault, type Keyring } from '../db/vault.js';
import { SshExecutor } from '../activities/ssh/ssh-executor.js';
import { WinRmExecutor } from '../activities/winrm/winrm-executor.js';
import type { Transporter } from 'nodemailer';
import { createMailer } from './mailer.js';
import { installTracing, type Tracing } from './tracing.js';

/** The configured dependencies every process (API, worker, both) is built from. */
export interface Runtime {
  env: Env;
  logger: Logger;
  db: Db;
  vault: Vault;
  /** Keys of the Temporal payload codec (separate from the vault's keys: they protect different things). */
  payloadKeys: Keyring;
  /**
   * `connection` is the client's. When the process also runs the worker (`npm start`), it is the
   * worker's NativeConnection (`workerConnection`, shared) and `eagerStart` is true: starts the API
   * waits on are handed to that worker in the start response (config/temporal.ts eagerStartOptions).
   */
  temporal: { settings: TemporalSettings; connection: Connection | NativeConnection; client: Client; eagerStart: boolean; workerConnection?: NativeConnection };
  ssh: SshExecutor;
  winrm: WinRmExecutor;
  mailer: Transporter | null;
  /** OpenTelemetry (OTEL_TRACES_EXPORTER / OTEL_EXPORTER_OTLP_*): off when unset. */
  tracing: Tracing;
  close(): Promise<void>;
}

export function dbTarget(env: Env) {
  return env.DATABASE_URL ? { databaseUrl: env.DATABASE_URL } : { pgliteDir: join(env.DATA_DIR, 'pglite') };
}

/**
 * `workerConnection`: a NativeConnection (opened by the caller after installing the worker runtime)
 * that the client shares with a worker started in this process; the runtime closes it last.
 */
export async function openRuntime(env: Env, logger: Logger, o: { workerConnection?: NativeConnection } = {}): Promise<Runtime> {
  // Before any client or worker exists, so every span of the process reaches the exporter.
  const tracing = installTracing({ exporter: env.OTEL_TRACES_EXPORTER ?? (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT ? 'otlp' : 'none') });
  const vault = new Vault(await loadKeyring(env.HOSTFLOW_ENCRYPTION_KEYS, join(env.DATA_DIR, 'keys')));
  const payloadKeys = await loadPayloadKeyring(env);
  const db = await initORM(dbTarget(env));
  logger.info({ db: db.kind }, 'database ready, migrations applied');
  const settings = await temporalSettings(env);
  let connection: Connection | NativeConnection;
  try {
    connection = o.workerConnection ?? (await connectClient(settings));
  } catch (err) {
    await db.close();
    throw new Error(`cannot connect to Temporal at ${settings.address}: ${(err as Error).message}`);
  }
  const client = createTemporalClient({ connection, namespace: settings.namespace, payloadKeys });
  const ssh = new SshExecutor({ em: db.em, vault, logger, connectTimeoutMs: env.SSH_CONNECT_TIMEOUT_MS });
  const winrm = new WinRmExecutor({ em: db.em, vault, logger, connectTimeoutMs: env.SSH_CONNECT_TIMEOUT_MS });
  const mailer = createMailer(env.SMTP_URL, { maxConnections: env.SMTP_POOL_SIZE });
  return {
    env,
    logger,
    db,
    vault,
    payloadKeys,
    temporal: { settings, connection, client, eagerStart: Boolean(o.workerConnection), ...(o.workerConnection ? { workerConnection: o.workerConnection } : {}) },
    ssh,
    winrm,
    mailer,
    tracing,
    async close() {
      await ssh.close();
      await winrm.close();
      mailer?.close();
      await connection.close();
      await db.close();
      await tracing.shutdown().catch(() => undefined);
    },
  };
}
