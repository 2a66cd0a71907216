// `hostflow runs` and `hostflow doctor` against the real Temporal dev server and PostgreSQL: the
// functions the commands call (cli/runs.service.ts, cli/doctor.ts).
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TypedSearchAttributes } from '@temporalio/common';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { createDatabase } from '../helpers/postgres.js';
import { freePort } from '../global-setup.js';
import { initORM } from '../../db/orm.js';
import { findStuckRuns, resetRun } from '../../cli/runs.service.js';
import { runDoctor } from '../../cli/doctor.js';
import { HostIdKey } from '../../workflows/shared/search-attributes.js';

describe('hostflow runs / doctor', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await startTestPlatform();
  });
  afterAll(async () => {
    await p?.close();
  });

  it('runs stuck names a retrying activity with its last failure; reset --to last-good-step starts a new run from before the failed step', async () => {
    const port = await freePort(); // nothing listens: every attempt fails HostUnreachable (retryable)
    const h = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: `stuck-${randomBytes(2).toString('hex')}`, address: '127.0.0.1', port, username: 'nobody', password: 'not-used-here' } });
    expect(h.status, JSON.stringify(h.body)).toBe(201);
    const hostId = h.body.data.id as string;
    const workflowId = `host-ping/${hostId}/stuck-test`;
    const handle = await p.client.workflow.start('hostPing', { workflowId, taskQueue: p.taskQueue, args: [{ hostId }], typedSearchAttributes: new TypedSearchAttributes([{ key: HostIdKey, value: hostId }]) });
    let hit: Awaited<ReturnType<typeof findStuckRuns>>[number] | undefined;
    const deadline = Date.now() + 20_000;
    while (!hit && Date.now() < deadline) {
      hit = (await findStuckRuns(p.client, p.payloadKeys, { minAttempts: 2, query: `WorkflowId = "${workflowId}"` }))[0];
      if (!hit) await new Promise((r) => setTimeout(r, 150));
    }
    expect(hit, 'the retrying ping is reported').toMatchObject({ workflowId, reason: 'activity-retrying', what: 'pingHost' });
    expect(hit!.attempt).toBeGreaterThanOrEqual(2);
    expect(hit!.lastFailure).toMatch(/HostUnreachable|ECONNREFUSED|connect/i);
    // A healthy threshold reports nothing for the same run.
    expect(await findStuckRuns(p.client, p.payloadKeys, { minAttempts: 50, pendingMs: 3_600_000, query: `WorkflowId = "${workflowId}"` })).toEqual([]);

    await handle.result().catch(() => undefined); // closed (the ping's retries are used up)
    // last-good-step: back to the workflow task that scheduled the failed pingHost, so it runs again.
    const r = await resetRun(p.client, workflowId, { to: 'last-good-step', reason: 'host fixed (test)' });
    expect(r.why).toMatch(/^before pingHost \(event \d+\) was scheduled$/);
    expect(r.runId).not.toBe(r.fromRunId);
    const fresh = await p.client.workflow.getHandle(workflowId, r.runId).describe();
    expect(fresh.runId).toBe(r.runId);
    await p.client.workflow.getHandle(workflowId, r.runId).terminate('test done').catch(() => undefined);
  });

  it('doctor: every check ok or skip on a working setup; an unreachable Temporal fails with a hint and skips what depends on it', async () => {
    const url = await createDatabase(inject('postgresUrl'), `hf_doc_${randomBytes(4).toString('hex')}`);
    await (await initORM({ databaseUrl: url })).close(); // migrations applied, as npm start does
    const dataDir = await mkdtemp(join(tmpdir(), 'hostflow-doctor-'));
    const base = { PATH: process.env.PATH, DATA_DIR: dataDir, DATABASE_URL: url, TEMPORAL_ADDRESS: inject('temporalAddress'), HOSTFLOW_PAYLOAD_KEYS: inject('payloadKeys') };
    const ok = await runDoctor(base);
    const by = Object.fromEntries(ok.map((c) => [c.name, c]));
    for (const name of ['config', 'database', 'vault keys', 'temporal', 'namespace', 'search attributes', 'payload keys']) expect(by[name]?.status, `${name}: ${by[name]?.detail}`).toBe('ok');
    expect(by.smtp).toMatchObject({ status: 'skip' });
    expect(by['nginx gateway']).toMatchObject({ status: 'skip' });

    const down = await runDoctor({ ...base, TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` });
    const t = down.find((c) => c.name === 'temporal')!;
    expect(t.status).toBe('fail');
    expect(t.hint).toMatch(/TEMPORAL_ADDRESS/);
    expect(down.find((c) => c.name === 'namespace')).toMatchObject({ status: 'skip' });

    const bad = await runDoctor({ ...base, API_PORT: 'not-a-port' });
    expect(bad[0]).toMatchObject({ name: 'config', status: 'fail' });
    expect(bad[0]!.detail).toContain('API_PORT');
  });
});
