// Starts the real servers the suite talks to, once per `npm test`: a Temporal dev server (the CLI
// built from its Go module), a PostgreSQL server, and the workflow bundle. Nothing is mocked.
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import type { TestProject } from 'vitest/node';
import { ensureTemporalCli, startDevServer } from '../scripts/temporal-cli.js';
import { bundleWorkflows } from '../worker/create-worker.js';
import { startPostgres } from './helpers/postgres.js';
import { ensureTemporalTestServerResolved } from './helpers/time-skipping.js';
import { formatKeyring, generateKeyring } from '../db/vault.js';
import { formatRouteTimings, readRouteTimings, routeTimings } from './helpers/route-timings.js';
import { mkdir } from 'node:fs/promises';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    postgresUrl: string;
    workflowBundlePath: string;
    /** The payload codec keyring every test client and worker uses (test/helpers/temporal.ts). */
    payloadKeys: string;
    /** Where each test file leaves its request histogram (test/setup/route-timings.ts). */
    routeTimingsDir: string;
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export default async function setup(project: TestProject) {
  const dir = await mkdtemp(join(tmpdir(), 'hostflow-test-'));
  const log = (l: string) => process.stderr.write(`[global-setup] ${l}\n`);
  const [cli, pg] = await Promise.all([ensureTemporalCli({ log }), startPostgres(), ensureTemporalTestServerResolved()]).then(
    ([c, p]) => [c, p] as const,
  );
  const temporal = await startDevServer({ cli, port: await freePort(), uiPort: null });
  const bundle = await bundleWorkflows();
  const bundlePath = join(dir, 'workflow-bundle.js');
  await writeFile(bundlePath, bundle.code);
  project.provide('temporalAddress', temporal.address);
  project.provide('postgresUrl', pg.url);
  project.provide('workflowBundlePath', bundlePath);
  // One payload keyring for the run: every client and worker of every test file encrypts with it.
  project.provide('payloadKeys', formatKeyring(generateKeyring('test1')));
  const timingsDir = join(dir, 'route-timings');
  await mkdir(timingsDir);
  project.provide('routeTimingsDir', timingsDir);
  return async () => {
    // The slowest routes of this run by p99, from the platform's own histograms (issue 17).
    const rows = routeTimings(await readRouteTimings(timingsDir));
    if (rows.length > 0) process.stderr.write(`[route-timings] ${formatRouteTimings(rows)}\n`);
    await temporal.stop();
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
