import { join } from 'node:path';
import { createActivities } from '../activities/index.js';
import { env, publicBaseUrl } from '../config/env.js';
import { createLogger } from '../config/logger.js';
import { connectWorker, ensureSearchAttributes } from '../config/temporal.js';
import { openRuntime, type Runtime } from '../config/runtime.js';
import { notifySettingsFromEnv } from '../config/mailer.js';
import { createWorker, installWorkerRuntime } from './create-worker.js';
import { ensureSchedules } from './schedules.js';
import { startWorkerMetricsServer } from './metrics-server.js';
import { gatewayPortsFromEnv } from '../db/port-pool.js';
import { gatewayConfigFromEnv } from '../activities/gateway/gateway.activities.js';
import type { Worker } from '@temporalio/worker';

/** Starts one worker on the runtime's task queue. `run` resolves when it has shut down. */
export async function startWorker(rt: Runtime): Promise<{ worker: Worker; run: Promise<void> }> {
  await ensureSearchAttributes(rt.temporal.connection, rt.temporal.settings.namespace);
  installWorkerRuntime('WARN', { prometheusAddress: rt.env.TEMPORAL_SDK_METRICS_ADDRESS, logger: rt.logger });
  // Before the Worker exists: a Worker holds its connection, and a failure here must not leave one behind.
  await ensureSchedules(rt.temporal.client, { taskQueue: rt.temporal.settings.taskQueue, recheckInterval: rt.env.HOST_RECHECK_INTERVAL, offlineAfter: rt.env.HOST_RECHECK_OFFLINE_AFTER, auditArchiveInterval: rt.env.AUDIT_ARCHIVE_INTERVAL, auditRetentionDays: rt.env.AUDIT_RETENTION_DAYS, gatewaySyncInterval: rt.env.GATEWAY_NGINX_CONF ? rt.env.GATEWAY_SYNC_INTERVAL : undefined, securityAlertInterval: rt.env.SECURITY_ALERT_INTERVAL, recordingRetention: rt.env.RECORDING_RETENTION_DAYS > 0 ? { interval: rt.env.RECORDING_RETENTION_INTERVAL, retentionDays: rt.env.RECORDING_RETENTION_DAYS, mode: rt.env.RECORDING_RETENTION_MODE } : undefined, log: rt.logger });
  const shared = rt.temporal.workerConnection;
  const connection = shared ?? (await connectWorker(rt.temporal.settings));
  const worker = await createWorker({
    connection,
    namespace: rt.temporal.settings.namespace,
    taskQueue: rt.temporal.settings.taskQueue,
    activities: createActivities({ em: rt.db.em, vault: rt.vault, logger: rt.logger, ssh: rt.ssh, winrm: rt.winrm, mailer: rt.mailer, mailFrom: rt.env.SMTP_FROM, baseDomain: rt.env.REMOTE_ACCESS_BASE_DOMAIN, gatewayPorts: gatewayPortsFromEnv(rt.env), gatewayConfig: gatewayConfigFromEnv(rt.env), publicBaseUrl: publicBaseUrl(rt.env), auditArchiveDir: join(rt.env.DATA_DIR, 'audit-archive'), recordingArchiveDir: join(rt.env.DATA_DIR, 'recordings-archive'), notifySettings: notifySettingsFromEnv(rt.env) }),
    payloadKeys: rt.payloadKeys,
    shutdownGraceTime: rt.env.SHUTDOWN_GRACE_MS,
    maxCachedWorkflows: rt.env.WORKER_MAX_CACHED_WORKFLOWS,
  });
  // A connection shared with the runtime's client stays open for it; rt.close() closes it.
  const run = worker.run().finally(() => (shared ? undefined : connection.close()));
  rt.logger.info({ taskQueue: rt.temporal.settings.taskQueue }, 'worker running');
  return { worker, run };
}

// Standalone worker process (scale out by running more). Needs PostgreSQL: embedded PGlite can
// only be opened by one process, which `npm start` runs with the API and worker together.
if (import.meta.url === `file://${process.argv[1]}`) {
  const e = env();
  const logger = createLogger({ level: e.LOG_LEVEL, name: 'worker' });
  if (!e.DATABASE_URL) {
    logger.fatal('a standalone worker needs DATABASE_URL (PGlite is single-process: use `npm start` for the embedded setup)');
    process.exit(1);
  }
  const rt = await openRuntime(e, logger);
  // Its own /metrics (WORKER_METRICS_ADDRESS): no API in this process to be scraped through. Before
  // the worker, so an address that cannot be bound stops the process before it takes tasks.
  const metrics = e.WORKER_METRICS_ADDRESS ? await startWorkerMetricsServer({ address: e.WORKER_METRICS_ADDRESS, token: e.METRICS_TOKEN, sdkAddress: e.TEMPORAL_SDK_METRICS_ADDRESS, em: rt.db.em, logger }) : null;
  const { worker, run } = await startWorker(rt);
  const stop = () => {
    logger.info('shutting down worker: in-flight activities get SHUTDOWN_GRACE_MS to finish');
    worker.shutdown();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await run;
  await metrics?.close();
  await rt.close();
}
