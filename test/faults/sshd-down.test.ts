// Fault injection: the managed host's sshd goes down for 30 s in the middle of a batch of 20
// account openings (listener and every session killed: connections refused). Real sshd, real
// Temporal dev server, real API. With the host retry budget (~30 min with backoff) and a login
// check that treats "unreachable" as retryable, all 20 end done without anyone's help.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startSshd, type SshTestHost } from '../helpers/sshd.js';
import { assertCleanOutcome, registerOnlineHost, removeBatchAccounts, settle, submitBatch, waitUntilDone, type BatchRequest } from './batch.js';

const OUTAGE_MS = 30_000;

describe('fault: sshd down 30 s mid-batch (real sshd, real Temporal)', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  let reqs: BatchRequest[] = [];

  beforeAll(async () => {
    [p, sshd] = await Promise.all([startTestPlatform({ db: 'postgres' }), startSshd()]);
  });
  afterAll(async () => {
    await removeBatchAccounts(sshd, reqs);
    await p?.close();
    await sshd?.stop();
  });

  it('20/20 end done after the host comes back; no duplicate account, no lost password', async () => {
    const t0 = Date.now();
    const hostId = await registerOnlineHost(p, sshd, 'fault-sshd');
    reqs = await submitBatch(p, hostId);
    await waitUntilDone(p, reqs, 2);
    await sshd.pause();
    const downAt = Date.now();
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    await sshd.resume();
    const counts = await settle(p, reqs, 240_000);
    console.log(`[faults] sshd down ${OUTAGE_MS / 1000} s: ${JSON.stringify(counts)}; all closed ${((Date.now() - downAt - OUTAGE_MS) / 1000).toFixed(1)} s after sshd returned; test ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    expect(counts).toEqual({ done: 20 });
    await assertCleanOutcome(p, sshd, reqs);
  }, 420_000);
});
