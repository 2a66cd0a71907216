import { createServer, type Server } from 'node:http';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { PgliteConnection } from '@mikro-orm/pglite';
import { METRICS_CONTENT_TYPE, metricsText, registerDbPoolGauges, scrapeRefusal } from '../config/metrics.js';
import type { Logger } from '../config/logger.js';

export interface WorkerMetricsOptions {
  /** host:port to listen on (WORKER_METRICS_ADDRESS); port 0 picks a free one. */
  address: string;
  /** Bearer token scrapers must send (METRICS_TOKEN); unset: loopback scrapers only. */
  token?: string;
  /** The Temporal SDK's Prometheus exporter (TEMPORAL_SDK_METRICS_ADDRESS), appended to the body. */
  sdkAddress?: string;
  /** The worker's database, for the pool series. */
  em: SqlEntityManager;
  logger: Logger;
}

/**
 * GET /metrics of a standalone worker process (`npm run worker`): the same prom-client registry
 * the API serves under `npm start` — activity duration and failures per type and host OS, remote
 * commands, lease notice lag, notifications, DB pool — since a worker in its own process has no
 * API to be scraped through. Same access rule as the API's /metrics (config/metrics.ts
 * scrapeRefusal). Anything but GET /metrics is 404.
 */
export async function startWorkerMetricsServer(o: WorkerMetricsOptions): Promise<{ url: string; close(): Promise<void> }> {
  const conn = () => o.em.getConnection();
  registerDbPoolGauges(() => conn().getNativeClient(), () => (conn() instanceof PgliteConnection ? 'pglite' : 'postgresql'));
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 40401, message: 'not found: this worker serves GET /metrics only' }));
      return;
    }
    const refused = scrapeRefusal(req.headers.authorization, req.socket.remoteAddress, o.token);
    if (refused) {
      res.writeHead(refused.status, { 'content-type': 'application/json' }).end(JSON.stringify(refused.body));
      return;
    }
    metricsText(o.sdkAddress).then(
      (body) => res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE }).end(body),
      (err: unknown) => {
        o.logger.warn({ err }, 'worker metrics: exposition failed');
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 50001, message: 'metrics exposition failed' }));
      },
    );
  });
  const sep = o.address.lastIndexOf(':');
  const host = o.address.slice(0, sep);
  const port = Number(o.address.slice(sep + 1));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as { address: string; port: number };
  const url = `http://${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}/metrics`;
  o.logger.info({ url, token: o.token ? 'required' : 'none (loopback scrapers only)' }, 'worker metrics served');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
