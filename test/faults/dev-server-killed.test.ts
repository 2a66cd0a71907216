// Fault injection: the Temporal dev server (a dedicated one, with its state in a SQLite file) is
// killed with SIGKILL in the middle of a batch of 20 account openings and started again on the
// same DB file and port; the worker and the API reconnect by themselves. Real Temporal dev server,
// real PostgreSQL, real sshd. 20/20 end done, no duplicate account, no lost password.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureTemporalCli, startDevServer, type DevServer } from '../../scripts/temporal-cli.js';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { freePort, startSshd, type SshTestHost } from '../helpers/sshd.js';
import { assertCleanOutcome, registerOnlineHost, removeBatchAccounts, settle, submitBatch, waitUntilDone, type BatchRequest } from './batch.js';

describe('fault: Temporal dev server killed and restarted on the same DB file mid-batch', () => {
  let dir: string;
  let cli: string;
  let port: number;
  let server: DevServer | undefined;
  let p: TestPlatform;
  let sshd: SshTestHost;
  let reqs: BatchRequest[] = [];

  const startServer = () => startDevServer({ cli, port, uiPort: null, dbFile: join(dir, 'temporal.db') });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hostflow-fault-temporal-'));
    [cli, port, sshd] = await Promise.all([ensureTemporalCli(), freePort(), startSshd()]);
    server = await startServer();
    p = await startTestPlatform({ db: 'postgres', temporalAddress: server.address });
  });
  afterAll(async () => {
    await removeBatchAccounts(sshd, reqs);
    await p?.close();
    await server?.stop();
    await sshd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('20/20 end done after kill -9 and a restart of the dev server; no duplicate account, no lost password', async () => {
    const t0 = Date.now();
    const hostId = await registerOnlineHost(p, sshd, 'fault-temporal');
    reqs = await submitBatch(p, hostId);
    await waitUntilDone(p, reqs, 2);
    const exited = new Promise((res) => server!.process.once('exit', res));
    server!.process.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();
    server = await startServer();
    console.log(`[faults] dev server back after ${((Date.now() - killedAt) / 1000).toFixed(1)} s`);
    const counts = await settle(p, reqs, 240_000);
    console.log(`[faults] dev server killed: ${JSON.stringify(counts)}; all closed ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`);
    expect(counts).toEqual({ done: 20 });
    await assertCleanOutcome(p, sshd, reqs);
    console.log(`[faults] dev server killed: test ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }, 420_000);
});
