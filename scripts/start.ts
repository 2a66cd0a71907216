// `npm start`: the whole platform on embedded defaults, in one process tree — a Temporal dev
// server with its Web UI (unless TEMPORAL_ADDRESS is set), the database with migrations applied,
// one worker and the HTTP API. Ctrl-C stops everything in order; the next start resumes.
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { env } from '../config/env.js';
import { createLogger } from '../config/logger.js';
import { openRuntime } from '../config/runtime.js';
import { ensureFirstAdmin } from '../api/routes/users/service.js';
import { startWorker } from '../worker/main.js';
import { identityFromRuntime, startApi } from '../api/server.js';
import { ensureTemporalCli, startDevServer, type DevServer } from './temporal-cli.js';

const e = env();
const logger = createLogger({ level: e.LOG_LEVEL, name: 'hostflow' });
await mkdir(e.DATA_DIR, { recursive: true });

async function assertPortFree(port: number, what: string) {
  await new Promise<void>((res, rej) => {
    const s = createServer();
    s.once('error', () => rej(new Error(`port ${port} (${what}) is already in use: is another \`npm start\` running? Set the matching *_PORT variable to move it.`)));
    s.listen(port, '127.0.0.1', () => s.close(() => res()));
  });
}

let devServer: DevServer | undefined;
let shuttingDown = false;
try {
  await assertPortFree(e.API_PORT, 'API_PORT');
  if (!e.TEMPORAL_ADDRESS) {
    await assertPortFree(e.TEMPORAL_DEV_PORT, 'TEMPORAL_DEV_PORT');
    await assertPortFree(e.TEMPORAL_UI_PORT, 'TEMPORAL_UI_PORT');
    const cli = await ensureTemporalCli({ cliPath: e.TEMPORAL_CLI_PATH, cacheDir: e.HOSTFLOW_CACHE_DIR, log: (l) => logger.info(l) });
    logger.info('starting Temporal dev server');
    devServer = await startDevServer({
      cli,
      port: e.TEMPORAL_DEV_PORT,
      uiPort: e.TEMPORAL_UI_PORT,
      dbFile: join(e.DATA_DIR, 'temporal.db'),
      namespace: e.TEMPORAL_NAMESPACE,
      detached: true,
      onExit: (code) => {
        if (!shuttingDown) {
          logger.fatal({ code }, 'Temporal dev server exited unexpectedly; stopping');
          process.exit(1);
        }
      },
    });
  }
  const rt = await openRuntime(e, logger);
  // Embedded default, very first start: `admin` with a one-time password (PostgreSQL: `npx hostflow admin create`).
  const firstAdmin = e.DATABASE_URL ? null : await ensureFirstAdmin({ em: rt.db.em, identity: await identityFromRuntime(rt) });
  const { worker, run } = await startWorker(rt);
  const api = await startApi(rt);

  const base = `http://${e.API_HOST === '0.0.0.0' ? 'localhost' : e.API_HOST}:${e.API_PORT}`;
  logger.info(
    {
      api: base,
      docs: `${base}/api/docs`,
      ready: `${base}/readyz`,
      temporalUi: devServer ? `http://localhost:${e.TEMPORAL_UI_PORT}` : '(existing cluster)',
      database: rt.db.kind,
    },
    'Hostflow is up',
  );
  if (firstAdmin) {
    // Straight to the terminal, never through the logger: shown once, must be changed at first login.
    process.stdout.write(
      `\n  First start: user "${firstAdmin.username}" was created with this one-time password (change it at first login):\n\n` +
        `      ${firstAdmin.password}\n\n` +
        `  Log in: curl -s -H 'content-type: application/json' -d '{"username":"admin","password":"<above>"}' ${base}/api/v1/auth/login\n\n`,
    );
  }

  const shutdown = async (signal: string) => {
    if (shuttingDown) {
      logger.warn('second signal: exiting now');
      process.exit(130);
    }
    shuttingDown = true;
    logger.info({ signal }, 'stopping: API, then worker (in-flight activities finish), then Temporal');
    await api.close();
    worker.shutdown();
    await run;
    await rt.close();
    await devServer?.stop();
    logger.info('stopped');
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
} catch (err) {
  logger.fatal((err as Error).message);
  await devServer?.stop();
  process.exit(1);
}
