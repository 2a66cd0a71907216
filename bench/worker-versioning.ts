/**
 * npm run bench:worker-versioning — does Temporal Worker Versioning (Worker Deployments, build ids)
 * work with the dev server (Temporal CLI v1.5.1) and the TS SDK 1.24 here, and what would it cost
 * the platform's months-long leases? Prints what it observed.
 *
 * Two builds of one small workflow (`probe`: timers, wait for a signal, timers; v2 drops a timer
 * *before* the signal, so v2 code cannot replay a v1 history that got past it) run as deployment versions hostflow-probe:v1 and :v2, PINNED.
 * 1. Start A on v1; make v2 current; start B. Signal both: A finishes on v1, B on v2 (no replay of
 *    A's history by v2 code, so no `patched()` needed for A).
 * 2. Start C on v1 again (ramping back is not the point: C is started while v1 is current), stop the
 *    v1 worker, make v2 current, signal C: a PINNED run waits for a v1 worker (the cost: every build
 *    that still has leases running must keep a worker up for the months they run).
 * 3. The same with AUTO_UPGRADE: the run moves to v2 and replays v1's history on v2 code — the
 *    non-deterministic change fails its workflow task, which is what `patched()` prevents.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { Connection } from '@temporalio/client';
import { createTemporalClient, dataConverter } from '../config/temporal.js';
import { generateKeyring } from '../db/vault.js';
import { NativeConnection, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { ensureTemporalCli, startDevServer } from '../scripts/temporal-cli.js';
import { freePort } from '../test/helpers/sshd.js';
import { installWorkerRuntime } from '../worker/create-worker.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const out = (l: string) => process.stdout.write(`${l}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const source = (build: string, behavior: 'PINNED' | 'AUTO_UPGRADE') => `
import { condition, defineSignal, setHandler, sleep, setWorkflowOptions } from '@temporalio/workflow';
export const go = defineSignal('go');
export async function probe(): Promise<string> {
  let ok = false;
  setHandler(go, () => void (ok = true));
  await sleep(10);
  ${build === 'v1' ? 'await sleep(10);' : ''}
  await condition(() => ok);
  ${build === 'v1' ? 'await sleep(10);' : 'await sleep(20); await sleep(30);'}
  return '${build}';
}
setWorkflowOptions({ versioningBehavior: '${behavior}' }, probe);
`;

async function bundle(build: string, behavior: 'PINNED' | 'AUTO_UPGRADE') {
  const dir = path.join(ROOT, '.data', `wv-${randomUUID().slice(0, 8)}`);
  await mkdir(dir, { recursive: true });
  try {
    await writeFile(path.join(dir, 'probe.ts'), source(build, behavior));
    const noop = () => undefined;
    return (await bundleWorkflowCode({ workflowsPath: path.join(dir, 'probe.ts'), logger: { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop } })).code;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main() {
  installWorkerRuntime('ERROR');
  const cli = await ensureTemporalCli({ log: (l) => process.stderr.write(`${l}\n`) });
  const server = await startDevServer({ cli, port: await freePort(), uiPort: null });
  const connection = await Connection.connect({ address: server.address });
  const payloadKeys = generateKeyring('bench');
  const client = createTemporalClient({ connection, payloadKeys });
  const native = await NativeConnection.connect({ address: server.address });
  try {
    for (const behavior of ['PINNED', 'AUTO_UPGRADE'] as const) {
      const deploymentName = `hostflow-probe-${behavior.toLowerCase()}`;
      const taskQueue = `probe-${behavior.toLowerCase()}`;
      const worker = async (buildId: string) =>
        Worker.create({
          connection: native,
          taskQueue,
          dataConverter: dataConverter(payloadKeys),
          workflowBundle: { code: await bundle(buildId, behavior) },
          workerDeploymentOptions: { version: { deploymentName, buildId }, useWorkerVersioning: true, defaultVersioningBehavior: behavior },
        });
      const setCurrent = async (buildId: string) => {
        const t0 = Date.now();
        for (;;) {
          try {
            await client.workflowService.setWorkerDeploymentCurrentVersion({ namespace: 'default', deploymentName, buildId, identity: 'bench' });
            return Date.now() - t0;
          } catch (err) {
            if (Date.now() - t0 > 30_000) throw err;
            await sleep(200); // the version exists once its worker has polled
          }
        }
      };
      const w1 = await worker('v1');
      const r1 = w1.run();
      out(`[${behavior}] v1 current after ${await setCurrent('v1')} ms`);
      const a = await client.workflow.start('probe', { taskQueue, workflowId: `probe-a-${randomUUID()}` });
      await sleep(1500);
      const w2 = await worker('v2');
      const r2 = w2.run();
      out(`[${behavior}] v2 current after ${await setCurrent('v2')} ms`);
      const b = await client.workflow.start('probe', { taskQueue, workflowId: `probe-b-${randomUUID()}` });
      await sleep(1500);
      await a.signal('go');
      await b.signal('go');
      const ra = await Promise.race([a.result(), sleep(10_000).then(() => 'no result in 10 s')]);
      const rb = await b.result();
      const descA = await a.describe();
      out(`[${behavior}] A (started on v1, signalled after v2 became current): ${String(ra)}; status ${descA.status.name}`);
      out(`[${behavior}] B (started after v2 became current): ${rb}`);
      if (typeof ra === 'string' && ra.startsWith('no result')) {
        const hist = await a.fetchHistory();
        const failed = hist.events?.filter((e) => e.workflowTaskFailedEventAttributes).map((e) => e.workflowTaskFailedEventAttributes?.failure?.message);
        out(`[${behavior}] A's failed workflow tasks: ${JSON.stringify(failed?.slice(0, 1))}`);
        await a.terminate('bench');
      }

      // A PINNED run whose build has no worker any more.
      await setCurrent('v1');
      const c = await client.workflow.start('probe', { taskQueue, workflowId: `probe-c-${randomUUID()}` });
      await sleep(1500);
      w1.shutdown();
      await r1;
      await setCurrent('v2');
      await c.signal('go');
      const rc = await Promise.race([c.result(), sleep(8_000).then(() => 'no result in 8 s')]);
      out(`[${behavior}] C (started on v1, v1 worker stopped, then signalled): ${String(rc)}`);
      if (typeof rc === 'string' && rc.startsWith('no result')) await c.terminate('bench');
      w2.shutdown();
      await r2;
    }
  } finally {
    await native.close();
    await connection.close();
    await server.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
