// Fault injection: the platform's PostgreSQL (a dedicated cluster, never the suite's shared one)
// stops abruptly for 90 s in the middle of a batch of 20 account openings, then starts again on
// the same data. Real PostgreSQL, real sshd, real Temporal dev server, real API and worker.
// Every request must end done or failed (never stuck in provisioning), /process must work for the
// failed ones, and there is no duplicate account and no lost password.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { startSshd, type SshTestHost } from '../helpers/sshd.js';
import { assertCleanOutcome, registerOnlineHost, removeBatchAccounts, settle, submitBatch, waitUntilDone, type BatchRequest } from './batch.js';

const OUTAGE_MS = 90_000;

describe('fault: PostgreSQL down 90 s mid-batch (dedicated PostgreSQL, real sshd, real Temporal)', () => {
  let pg: TestPostgres;
  let p: TestPlatform;
  let sshd: SshTestHost;
  let reqs: BatchRequest[] = [];

  beforeAll(async () => {
    if (process.env.TEST_DATABASE_URL) throw new Error('this test stops its PostgreSQL: it needs a cluster of its own (unset TEST_DATABASE_URL)');
    [pg, sshd] = await Promise.all([startPostgres(), startSshd()]);
    p = await startTestPlatform({ databaseUrl: pg.url });
  });
  afterAll(async () => {
    await removeBatchAccounts(sshd, reqs);
    await p?.close();
    await pg?.stop();
    await sshd?.stop();
  });

  it('20/20 end done or failed, failed ones recover with /process; no duplicate account, no lost password', async () => {
    const t0 = Date.now();
    const hostId = await registerOnlineHost(p, sshd, 'fault-db');
    reqs = await submitBatch(p, hostId);
    await waitUntilDone(p, reqs, 2);
    await pg.pause();
    const downAt = Date.now();
    // While the database is down the API answers without a stack and /readyz says so.
    const during = await p.api('GET', `/api/v1/account-openings/${reqs[0]!.id}`);
    expect(during.status).toBe(500);
    expect(during.body.code).toBe(50001);
    expect(JSON.stringify(during.body)).not.toMatch(/at .*\.ts:\d+/);
    await new Promise((r) => setTimeout(r, OUTAGE_MS - (Date.now() - downAt)));
    await pg.resume();
    const counts = await settle(p, reqs, 360_000);
    console.log(`[faults] PostgreSQL down ${OUTAGE_MS / 1000} s: ${JSON.stringify(counts)}; all closed ${((Date.now() - downAt - OUTAGE_MS) / 1000).toFixed(1)} s after it returned`);
    expect((counts.done ?? 0) + (counts.failed ?? 0), `statuses after every workflow closed: ${JSON.stringify(counts)}`).toBe(20);
    const r = await assertCleanOutcome(p, sshd, reqs);
    console.log(`[faults] PostgreSQL down: ${r.failedThenProcessed} failed and came back with /process; test ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }, 600_000);
});
