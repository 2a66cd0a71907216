// `npm start`: the whole platform on embedded defaults, in one process tree — a Temporal dev
// server with its Web UI (unless TEMPORAL_ADDRESS is set), the database with migrations applied,
// one worker and the HTTP API. Ctrl-C stops everything in order; the next start resumes.
//
// Run as `node --import tsx scripts/start.ts` (package.json), not through the `tsx` binary: its
// signal relay SIGKILLs the child ~30 ms after Ctrl-C, so nothing would drain.
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { env, publicBaseUrl } from '../config/env.js';
import { CODEC_PATH } from '../api/routes/temporal/handler.js';
import { createLogger, wantsPretty } from '../config/logger.js';
import { openRuntime, type Runtime } from '../config/runtime.js';
import { ensureFirstAdmin } from '../api/routes/users/service.js';
import { startWorker } from '../worker/main.js';
import { installWorkerRuntime } from '../worker/create-worker.js';
import { connectWorker, devUiUrl, temporalSettings } from '../config/temporal.js';
import { identityFromRuntime, startApi } from '../api/server.js';
import { ensureTemporalCli } from './temporal-cli.js';
import { ensureWebBuilt, WEB_DIST } from './build-web.js';
import { stopLeftoverDevServer, superviseDevServer, type SupervisedDevServer } from './dev-server-supervisor.js';

const e = env();
const logger = createLogger({ level: e.LOG_LEVEL, name: 'hostflow', pretty: wantsPretty(e.LOG_FORMAT) });
await mkdir(e.DATA_DIR, { recursive: true });
const pidfile = resolve(e.DATA_DIR, 'temporal-dev.pid');

async function assertPortFree(port: number, what: string) {
  await new Promise<void>((res, rej) => {
    const s = createServer();
    s.once('error', () => rej(new Error(`port ${port} (${what}) is already in use: is another \`npm start\` running? Set the matching *_PORT variable to move it.`)));
    s.listen(port, '127.0.0.1', () => s.close(() => res()));
  });
}

async function portFreeWithin(port: number, what: string, ms: number) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await assertPortFree(port, what);
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

let devServer: SupervisedDevServer | undefined;
let rt: Runtime | undefined;
let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
let api: Awaited<ReturnType<typeof startApi>> | undefined;
let shuttingDown: Promise<never> | undefined;
let firstSignalAt = 0;

/** Stops in order: API (drains requests), worker (in-flight activities get SHUTDOWN_GRACE_MS), DB, Temporal. */
function shutdown(reason: string, exitCode: number): Promise<never> {
  shuttingDown ??= (async () => {
    logger.info({ reason }, 'stopping: API, then worker (in-flight activities finish), then Temporal');
    await startup.catch(() => undefined);
    try {
      await api?.close();
      if (worker) {
        worker.worker.shutdown();
        await worker.run.catch((err: Error) => logger.error({ err: err.message }, 'worker stopped with an error'));
      }
      await rt?.close();
    } finally {
      await devServer?.stop();
    }
    logger.info('stopped');
    process.exit(exitCode);
  })();
  return shuttingDown;
}

const onSignal = (signal: NodeJS.Signals) => {
  // A terminal's Ctrl-C reaches the whole foreground group, and npm relays it once more: a repeat
  // within a second is the same keypress. A later one means "now".
  const now = Date.now();
  if (!firstSignalAt) {
    firstSignalAt = now;
    if (!devServer && !rt) {
      logger.info({ signal }, 'stopped before anything was running');
      process.exit(130);
    }
    void shutdown(signal, 0);
    return;
  }
  if (now - firstSignalAt < 1000) return;
  logger.warn('second signal: exiting now without draining');
  devServer?.current().process.kill('SIGTERM');
  process.exit(130);
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const startup = (async () => {
  // The console builds (first start, or sources changed) while Temporal and the database come up.
  // A failed build leaves the API running without the console, and says so.
  const webBuilt = ensureWebBuilt((l) => logger.info(l)).catch((err: Error) => {
    logger.error({ err: err.message }, 'console build failed: serving the API only (run `npm run build:web` to see why)');
    return false;
  });
  // A leftover dev server we just stopped may hold its ports for a moment while it exits: wait
  // (bounded) for them; a port held by anything else is still refused after that.
  const stoppedLeftover = !e.TEMPORAL_ADDRESS && (await stopLeftoverDevServer(pidfile, (m) => logger.warn(m)));
  await assertPortFree(e.API_PORT, 'API_PORT');
  if (!e.TEMPORAL_ADDRESS) {
    await portFreeWithin(e.TEMPORAL_DEV_PORT, 'TEMPORAL_DEV_PORT', stoppedLeftover ? 10_000 : 0);
    await portFreeWithin(e.TEMPORAL_UI_PORT, 'TEMPORAL_UI_PORT', stoppedLeftover ? 10_000 : 0);
    const cli = await ensureTemporalCli({ cliPath: e.TEMPORAL_CLI_PATH, cacheDir: e.HOSTFLOW_CACHE_DIR, log: (l) => logger.info(l) });
    logger.info('starting Temporal dev server');
    devServer = await superviseDevServer({
      start: {
        cli,
        port: e.TEMPORAL_DEV_PORT,
        uiPort: e.TEMPORAL_UI_PORT,
        dbFile: resolve(e.DATA_DIR, 'temporal.db'),
        // A file, not a pipe: the server must outlive a killed `npm start` (the next one stops it).
        logFile: resolve(e.DATA_DIR, 'temporal-dev.log'),
        namespace: e.TEMPORAL_NAMESPACE,
        // The UI decodes payloads through the API (permission temporal.decode); without it, ciphertext.
        uiCodecEndpoint: e.TEMPORAL_UI_CODEC_ENDPOINT ?? `${publicBaseUrl(e)}${CODEC_PATH}`,
      },
      pidfile,
      log: logger,
      onGiveUp: (err) => {
        logger.fatal(err.message);
        void shutdown('Temporal dev server keeps dying', 1);
      },
    });
  }
  // The API's Temporal client shares the worker's NativeConnection: workflows the API starts and
  // waits on (host ping, user lookup, …) start eagerly on this worker (config/temporal.ts).
  installWorkerRuntime('WARN', { prometheusAddress: e.TEMPORAL_SDK_METRICS_ADDRESS, logger });
  const temporal = await temporalSettings(e);
  const workerConnection = await connectWorker(temporal).catch((err: Error) => {
    throw new Error(`cannot connect to Temporal at ${temporal.address}: ${err.message}`);
  });
  rt = await openRuntime(e, logger, { workerConnection });
  // Embedded default, very first start: `admin` with a one-time password (PostgreSQL: `npx hostflow admin create`).
  const firstAdmin = e.DATABASE_URL ? null : await ensureFirstAdmin({ em: rt.db.em, identity: await identityFromRuntime(rt) });
  worker = await startWorker(rt);
  worker.run.catch((err: Error) => {
    if (shuttingDown) return;
    logger.fatal({ err: err.message }, 'worker stopped unexpectedly; stopping');
    void shutdown('worker failed', 1);
  });
  // One host name for the console, the codec endpoint and the UI: the codec cookie is SameSite=Strict.
  const temporalUi = devServer ? devUiUrl(e) : null;
  api = await startApi(rt, {
    console: (await webBuilt) ? { distDir: WEB_DIST, ...(temporalUi ? { temporalUi: { url: temporalUi, namespace: e.TEMPORAL_NAMESPACE } } : {}) } : undefined,
  });

  // The console where the codec cookie is set must share the UI's host name (publicBaseUrl's).
  const base = e.PUBLIC_BASE_URL || e.API_HOST === '0.0.0.0' ? publicBaseUrl(e) : `http://${e.API_HOST}:${e.API_PORT}`;
  logger.info(
    {
      console: `${base}/`,
      api: base,
      docs: `${base}/api/docs`,
      ready: `${base}/readyz`,
      metrics: `${base}/metrics${e.METRICS_TOKEN ? ' (Bearer METRICS_TOKEN)' : ' (loopback only)'}`,
      traces: rt.tracing.exporter === 'none' ? 'off (set OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_TRACES_EXPORTER=console)' : rt.tracing.exporter,
      temporalUi: temporalUi ? `${temporalUi} (to decode: open it from the console; Data Encoder: "Include cross-origin credentials" on)` : '(existing cluster)',
      database: rt.db.kind,
    },
    'Hostflow is up',
  );
  if (firstAdmin) {
    // Straight to the terminal, never through the logger: shown once, must be changed at first login.
    process.stdout.write(
      `\n  First start: user "${firstAdmin.username}" was created with this one-time password (change it at first login):\n\n` +
        `      ${firstAdmin.password}\n\n` +
        `  Open the console at ${base}/ and sign in as "admin" with it, or from a shell:\n` +
        `  curl -s -H 'content-type: application/json' -d '{"username":"admin","password":"<above>"}' ${base}/api/v1/auth/login\n\n`,
    );
  }
})();

try {
  await startup;
} catch (err) {
  logger.fatal((err as Error).message);
  await shutdown('startup failed', 1);
}
