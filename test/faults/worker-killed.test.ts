// Fault injection: the worker process is killed with SIGKILL in the middle of a batch of 20
// account openings; a new worker takes over. Real worker process, real PostgreSQL, real sshd,
// real Temporal dev server. 20/20 end done, no duplicate account, no lost password.
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startTestPlatform, startWorkerFor, type TestPlatform } from '../helpers/platform.js';
import { startSshd, type SshTestHost } from '../helpers/sshd.js';
import { formatKeyring } from '../../db/vault.js';
import { assertCleanOutcome, registerOnlineHost, removeBatchAccounts, settle, submitBatch, waitUntilDone, type BatchRequest } from './batch.js';

describe('fault: worker killed mid-batch (real worker process, PostgreSQL, sshd, Temporal)', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  let child: ChildProcess | undefined;
  let reqs: BatchRequest[] = [];

  beforeAll(async () => {
    [p, sshd] = await Promise.all([startTestPlatform({ db: 'postgres', worker: false }), startSshd()]);
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await removeBatchAccounts(sshd, reqs);
    await p?.close();
    await sshd?.stop();
  });

  it('20/20 end done after SIGKILL and a new worker; no duplicate account, no lost password', async () => {
    const t0 = Date.now();
    const hostId = await registerOnlineHost(p, sshd, 'fault-worker');
    // node itself with tsx's loader (not the tsx launcher), so SIGKILL hits the worker process.
    child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../fixtures/worker-process.ts', import.meta.url))], {
      env: {
        ...process.env,
        HF_DATABASE_URL: p.db.orm.config.get('clientUrl') as string,
        HF_TEMPORAL: inject('temporalAddress'),
        HF_TASK_QUEUE: p.taskQueue,
        HF_KEYS: formatKeyring(p.keyring),
        HF_PAYLOAD_KEYS: formatKeyring(p.payloadKeys),
        HF_BUNDLE: inject('workflowBundlePath'),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child!.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child!.once('exit', (c) => reject(new Error(`worker exited ${c}`)));
    });
    reqs = await submitBatch(p, hostId);
    await waitUntilDone(p, reqs, 2);
    child.kill('SIGKILL');
    await new Promise((res) => child!.once('exit', res));
    const killedAt = Date.now();
    const w = await startWorkerFor(p);
    try {
      const counts = await settle(p, reqs, 240_000);
      console.log(`[faults] worker killed: ${JSON.stringify(counts)}; all closed ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`);
      expect(counts).toEqual({ done: 20 });
      await assertCleanOutcome(p, sshd, reqs);
    } finally {
      await w.stop();
    }
    console.log(`[faults] worker killed: test ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }, 420_000);
});
