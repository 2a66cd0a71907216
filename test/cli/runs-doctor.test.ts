// `hostflow runs` and `hostflow doctor` against the real Temporal dev server, PostgreSQL and nginx:
// the functions the commands call (cli/runs.service.ts, cli/doctor.ts).
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { TypedSearchAttributes } from '@temporalio/common';
import { Connection } from '@temporalio/client';
import { NativeConnection, bundleWorkflowCode, type Worker } from '@temporalio/worker';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { createDatabase } from '../helpers/postgres.js';
import { freePort } from '../global-setup.js';
import { initORM } from '../../db/orm.js';
import { findStuckRuns, resetRun } from '../../cli/runs.service.js';
import { runDoctor } from '../../cli/doctor.js';
import { HostIdKey } from '../../workflows/shared/search-attributes.js';
import { FAILURE_CONVERTER_PATH, ensureSearchAttributes } from '../../config/temporal.js';
import { AUDIT_ARCHIVE_SCHEDULE_ID, HOST_RECHECK_SCHEDULE_ID, SECURITY_ALERTS_SCHEDULE_ID, STATUS_RECONCILER_SCHEDULE_ID, ensureSchedules } from '../../worker/schedules.js';
import { createWorker } from '../../worker/create-worker.js';
import type { Activities } from '../../activities/index.js';
import { renderGatewayConfig } from '../../activities/gateway/nginx-config.js';
import { testClient } from '../helpers/temporal.js';
import { until } from '../helpers/until.js';

const FIXTURE_WORKFLOWS = fileURLToPath(new URL('../fixtures/workflows/index.ts', import.meta.url));
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, log() {}, error: console.error };

describe('hostflow runs / doctor', () => {
  let p: TestPlatform;
  let doctorBase: Promise<Record<string, string | undefined>> | undefined;
  /** The environment of a working setup: a migrated database of its own, the suite's Temporal. */
  const base = (): Promise<Record<string, string | undefined>> =>
    (doctorBase ??= (async () => {
      const url = await createDatabase(inject('postgresUrl'), `hf_doc_${randomBytes(4).toString('hex')}`);
      await (await initORM({ databaseUrl: url })).close(); // migrations applied, as npm start does
      const dataDir = await mkdtemp(join(tmpdir(), 'hostflow-doctor-'));
      return { PATH: process.env.PATH, DATA_DIR: dataDir, DATABASE_URL: url, TEMPORAL_ADDRESS: inject('temporalAddress'), HOSTFLOW_PAYLOAD_KEYS: inject('payloadKeys') };
    })());
  const checksByName = async (env: Record<string, string | undefined>) => Object.fromEntries((await runDoctor(env)).map((c) => [c.name, c]));
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
    const env = await base();
    const ok = await runDoctor(env);
    const by = Object.fromEntries(ok.map((c) => [c.name, c]));
    for (const name of ['config', 'database', 'vault keys', 'temporal', 'namespace', 'search attributes', 'payload keys']) expect(by[name]?.status, `${name}: ${by[name]?.detail}`).toBe('ok');
    expect(by.smtp).toMatchObject({ status: 'skip' });
    expect(by['nginx gateway']).toMatchObject({ status: 'skip' });

    const down = await runDoctor({ ...env, TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` });
    const t = down.find((c) => c.name === 'temporal')!;
    expect(t.status).toBe('fail');
    expect(t.hint).toMatch(/TEMPORAL_ADDRESS/);
    expect(down.find((c) => c.name === 'namespace')).toMatchObject({ status: 'skip' });

    const bad = await runDoctor({ ...env, API_PORT: 'not-a-port' });
    expect(bad[0]).toMatchObject({ name: 'config', status: 'fail' });
    expect(bad[0]!.detail).toContain('API_PORT');
  });
  it('runs stuck: a timer that falls due while no worker runs is overdue (naming the task queue); once a worker runs the workflow it is gone', async () => {
    const taskQueue = `stuck-timer-${randomBytes(4).toString('hex')}`;
    const connection = await NativeConnection.connect({ address: inject('temporalAddress') });
    const workflowBundle = await bundleWorkflowCode({ workflowsPath: FIXTURE_WORKFLOWS, failureConverterPath: FAILURE_CONVERTER_PATH, logger: quiet });
    const startWorker = async (): Promise<[Worker, Promise<void>]> => {
      const w = await createWorker({ connection, namespace: 'default', taskQueue, activities: {} as unknown as Activities, payloadKeys: p.payloadKeys, workflowBundle, shutdownGraceTime: '1s' });
      return [w, w.run()];
    };
    let [worker, running] = await startWorker();
    try {
      const workflowId = `stuck-timer/${randomBytes(4).toString('hex')}`;
      const query = `WorkflowId = "${workflowId}"`;
      // sleepFor(days): a 4-second durable timer.
      const handle = await p.client.workflow.start('sleepFor', { workflowId, taskQueue, args: [4 / 86_400] });
      await until('the timer is started', async () => (await handle.fetchHistory()).events?.some((e) => e.timerStartedEventAttributes));
      // Not due yet: nothing to report, even with a 1 s grace.
      expect(await findStuckRuns(p.client, p.payloadKeys, { timerGraceMs: 1_000, query })).toEqual([]);

      // The worker goes away; the server fires the timer anyway, and nobody runs the workflow.
      worker.shutdown();
      await running;
      const hit = await until('the overdue timer is reported', async () => (await findStuckRuns(p.client, p.payloadKeys, { timerGraceMs: 1_000, query }))[0], 30_000);
      expect(hit).toMatchObject({ workflowId, workflowType: 'sleepFor', reason: 'timer-overdue', what: 'timer 1', attempt: null, lastFailure: null });
      expect(hit.detail).toMatch(new RegExp(`^fired \\S+; no workflow task has run since: is a worker polling task queue "${taskQueue}"\\?$`));
      expect(Date.parse(hit.since!)).toBeLessThan(Date.now() - 1_000);
      // Within the default grace (2 minutes) it is not overdue yet.
      expect(await findStuckRuns(p.client, p.payloadKeys, { query })).toEqual([]);
      // The same run, two minutes later (the CLI's default grace): overdue.
      expect(await findStuckRuns(p.client, p.payloadKeys, { query, now: Date.now() + 2 * 60_000 + 5_000 })).toMatchObject([{ reason: 'timer-overdue', what: 'timer 1' }]);

      // A worker again: the workflow processes the timer and completes; nothing is stuck.
      [worker, running] = await startWorker();
      const result = JSON.parse(await handle.result()) as { after: number; before: number };
      expect(result.after - result.before).toBeGreaterThanOrEqual(4_000);
      await until('the finished run is no longer listed as stuck', async () => (await findStuckRuns(p.client, p.payloadKeys, { timerGraceMs: 0, query })).length === 0, 10_000);
    } finally {
      worker.shutdown();
      await running.catch(() => undefined);
      await connection.close();
    }
  });

  it('doctor: a namespace without the worker\'s schedules and search attributes fails naming them, with the fix; after what the worker does at start it passes', async () => {
    const namespace = `hf-doctor-${randomBytes(4).toString('hex')}`;
    const connection = await Connection.connect({ address: inject('temporalAddress') });
    const client = testClient(connection, { namespace });
    try {
      // protobufjs takes a number for an int64.
      await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: { seconds: 86_400 as never } });
      const env: Record<string, string | undefined> = { ...(await base()), TEMPORAL_NAMESPACE: namespace };
      // A new namespace reaches every frontend cache within seconds.
      const before = await until('the new namespace is served', async () => {
        const c = await checksByName(env);
        return c.namespace?.status === 'ok' && c.schedules?.status !== 'skip' ? c : null;
      }, 30_000);
      expect(before.schedules).toMatchObject({ status: 'fail', detail: 'missing: host-recheck, status-reconciler, audit-archive' });
      expect(before.schedules!.hint).toBe('the worker creates them at start: is a worker running (npm start / npm run worker) on this namespace?');
      expect(before['search attributes']!.status).toBe('fail');
      expect(before['search attributes']!.detail).toMatch(/^missing: .*HostId/);
      expect(before['search attributes']!.hint).toContain(`temporal operator search-attribute create --namespace ${namespace} --name HostId --type Keyword`);

      // What a worker does at start (worker/main.ts): search attributes, then the schedules.
      await ensureSearchAttributes(connection, namespace);
      await until('the schedules are created', async () =>
        ensureSchedules(client, { taskQueue: `doctor-${namespace}`, recheckInterval: '60m', offlineAfter: 3, auditArchiveInterval: '1d', reconcileInterval: '60m', securityAlertInterval: '60m' }).then(() => true, () => false), 30_000);
      const after = await checksByName(env);
      expect(after.schedules).toMatchObject({ status: 'ok', detail: 'host-recheck, status-reconciler, audit-archive' });
      expect(after['search attributes']!.status).toBe('ok');
      expect(Object.values(after).filter((c) => c.status === 'fail'), 'a healthy setup has no failing check').toEqual([]);

      // One schedule deleted by hand: named alone.
      await client.schedule.getHandle('audit-archive').delete();
      expect((await checksByName(env)).schedules).toMatchObject({ status: 'fail', detail: 'missing: audit-archive' });
      // With a gateway configured, its drift schedule is expected too.
      const gw = await checksByName({ ...env, GATEWAY_NGINX_CONF: join(env.DATA_DIR!, 'gateway', 'nginx.conf') });
      expect(gw.schedules).toMatchObject({ status: 'fail', detail: 'missing: audit-archive, gateway-sync' });
    } finally {
      for (const id of [HOST_RECHECK_SCHEDULE_ID, STATUS_RECONCILER_SCHEDULE_ID, AUDIT_ARCHIVE_SCHEDULE_ID, SECURITY_ALERTS_SCHEDULE_ID]) await client.schedule.getHandle(id).delete().catch(() => undefined);
      await connection.close();
    }
  });

  it('doctor: nginx gateway — not written yet is fine, a valid config passes nginx -t, a broken one fails with nginx\'s line and the fix, a missing binary fails', async () => {
    const prefix = await mkdtemp(join(tmpdir(), 'hostflow-doctor-gw-'));
    await mkdir(join(prefix, 'logs'));
    await mkdir(join(prefix, 'tmp'));
    const conf = join(prefix, 'nginx.conf');
    const env = { ...(await base()), GATEWAY_NGINX_CONF: conf, GATEWAY_NGINX_PREFIX: prefix, GATEWAY_NGINX_BIN: '/usr/sbin/nginx' };
    const nginxCheck = async (e: Record<string, string | undefined> = env) => (await checksByName(e))['nginx gateway']!;

    expect(await nginxCheck()).toMatchObject({ status: 'ok', detail: `/usr/sbin/nginx found; ${conf} not written yet (the first gateway-sync writes it)` });

    // The config gateway-sync writes (one SSH entry), as the activity renders it.
    const streamModule = ['/usr/lib/nginx/modules/ngx_stream_module.so', '/usr/share/nginx/modules/ngx_stream_module.so'].find((m) => existsSync(m)) ?? null;
    const entry = { id: 'e1', hostSlug: 'gpu-01', hostAddress: '127.0.0.1', protocol: 'ssh' as const, publicDomain: 'gw.test', publicPort: await freePort(), targetPort: 22 };
    const good = renderGatewayConfig([entry], { prefix, listen: '127.0.0.1', streamModule }).text;
    await writeFile(conf, good);
    const ok = await nginxCheck();
    expect(ok.status, ok.detail).toBe('ok');
    expect(ok.detail).toMatch(new RegExp(`^nginx -t passes for ${conf}`));

    // A hand edit nginx refuses: the check fails with nginx's own line (file:line) and the fix.
    const lines = good.split('\n');
    const at = lines.indexOf('stream {') + 1;
    lines.splice(at, 0, '    proxy_bogus_timeout 1s;');
    await writeFile(conf, lines.join('\n'));
    const bad = await nginxCheck();
    expect(bad.status).toBe('fail');
    expect(bad.detail).toMatch(/^nginx -t: .*\[emerg\] .*unknown directive "proxy_bogus_timeout" in /);
    expect(bad.detail).toContain(`${conf}:${at + 1}`);
    expect(bad.hint).toBe('check GATEWAY_NGINX_BIN / GATEWAY_NGINX_CONF / GATEWAY_NGINX_PREFIX; `nginx -t -c <conf>` shows the line');

    const noBin = await nginxCheck({ ...env, GATEWAY_NGINX_BIN: join(prefix, 'no-such-nginx') });
    expect(noBin).toMatchObject({ status: 'fail', detail: `${join(prefix, 'no-such-nginx')} is not an executable` });
    expect(noBin.hint).toContain('GATEWAY_NGINX_BIN');
  });
});
