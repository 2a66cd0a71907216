// GET /metrics after real traffic: HTTP series per route template and status, workflow starts per
// type, activity durations and failures per type and host OS, the lease-notice lag histogram after
// a real lease run, DB pool gauges (PGlite and PostgreSQL), and no ids in any label.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import express from 'express';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { metricsEndpoint } from '../../api/middleware/metrics.js';
import { startSshd } from '../helpers/sshd.js';
import { AllocationSchema, CustomerSchema, HostSchema, LeaseEventSchema, UserSchema } from '../../db/entities/index.js';
import { createServer, type Socket } from 'node:net';
import { until } from '../helpers/until.js';

/** The value of one exposition line (`name{labels} value`), or undefined when absent. */
const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('/metrics', { timeout: 120_000 }, () => {
  let p: TestPlatform;
  const hostId = randomUUID();
  beforeAll(async () => {
    p = await startTestPlatform();
  });
  afterAll(() => p?.close());

  it('shows HTTP, workflow-start and activity series from a walkthrough, labelled by templates and types only', async () => {
    expect((await p.api('GET', `/api/v1/hosts/${hostId}`)).status).toBe(404);
    expect((await p.api('GET', '/api/v1/hosts')).status).toBe(200);
    const h = await p.client.workflow.start('hostPing', { workflowId: `host-ping/${hostId}/${Date.now()}`, taskQueue: p.taskQueue, args: [{ hostId }], workflowExecutionTimeout: '60s' });
    await expect(h.result()).rejects.toThrow();

    const res = await fetch(`${p.baseUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(/hostflow_http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/hosts\/:id",status="404"\} [1-9]/);
    expect(text).toMatch(/hostflow_http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/hosts",status="200"\} [1-9]/);
    expect(text).toMatch(/hostflow_http_requests_in_flight \d/);
    expect(text).toMatch(/hostflow_workflow_starts_total\{workflow_type="hostPing",outcome="started"\} [1-9]/);
    expect(text).toMatch(/hostflow_activity_duration_seconds_count\{activity_type="pingHost",outcome="failed",os="none"\} [1-9]/);
    expect(text).toMatch(/hostflow_activity_failures_total\{activity_type="pingHost",failure_type="HostNotFound",os="none"\} [1-9]/);
    expect(text, 'an id in a label').not.toContain(hostId);
  });

  it('activity series per host OS: pings of a Linux and a Windows host without credentials fail CredentialMissing under their OS', async () => {
    const em = p.db.em.fork();
    const linux = em.create(HostSchema, { slug: `ml-${randomUUID().slice(0, 8)}`, name: 'metrics linux', address: '127.0.0.1', port: 1, os: 'linux', username: 'x', status: 'online' });
    const win = em.create(HostSchema, { slug: `mw-${randomUUID().slice(0, 8)}`, name: 'metrics windows', address: '127.0.0.1', port: 1, os: 'windows', username: 'x', status: 'online', winrmPort: 1 });
    await em.flush();
    for (const h of [linux, win]) {
      const run = await p.client.workflow.start('hostPing', { workflowId: `host-ping/${h.id}/${Date.now()}`, taskQueue: p.taskQueue, args: [{ hostId: h.id }], workflowExecutionTimeout: '60s' });
      await expect(run.result()).rejects.toThrow();
    }
    const text = await (await fetch(`${p.baseUrl}/metrics`)).text();
    for (const os of ['linux', 'windows']) {
      expect(sample(text, `hostflow_activity_failures_total{activity_type="pingHost",failure_type="CredentialMissing",os="${os}"}`), os).toBeGreaterThanOrEqual(1);
      expect(sample(text, `hostflow_activity_duration_seconds_count{activity_type="pingHost",outcome="failed",os="${os}"}`), os).toBeGreaterThanOrEqual(1);
    }
    expect(text).not.toContain(linux.id);
    expect(text).not.toContain('127.0.0.1');
  });

  it('per-OS series on a real sshd: two pings complete under os="linux", the second over the pooled connection', async () => {
    const sshd = await startSshd();
    try {
      const h = await p.api('POST', '/api/v1/hosts', { body: { name: 'metrics-sshd', address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
      expect(h.status, JSON.stringify(h.body)).toBe(201);
      const series = 'hostflow_activity_duration_seconds_count{activity_type="pingHost",outcome="completed",os="linux"}';
      const closed = 'hostflow_workflow_closed_total{workflow_type="hostPing",outcome="completed"}';
      const beforeText = await (await fetch(`${p.baseUrl}/metrics`)).text();
      const before = sample(beforeText, series) ?? 0;
      const closedBefore = sample(beforeText, closed) ?? 0;
      for (let i = 0; i < 2; i++) {
        const run = await p.client.workflow.start('hostPing', { workflowId: `host-ping/${h.body.data.id}/${Date.now()}-${i}`, taskQueue: p.taskQueue, args: [{ hostId: h.body.data.id }], workflowExecutionTimeout: '60s' });
        await run.result();
      }
      const text = await (await fetch(`${p.baseUrl}/metrics`)).text();
      expect(sample(text, series)! - before).toBe(2);
      // Both runs completed, counted by the platform's workflow interceptor in this worker.
      expect(sample(text, closed)! - closedBefore).toBe(2);
      expect(sample(text, 'hostflow_activity_duration_seconds_count{activity_type="pingHost",outcome="completed",os="none"}') ?? 0).toBe(0);
    } finally {
      await p.ssh.close();
      await sshd.stop();
    }
  });

  it('workflow endings per type from the platform\'s workflow interceptor: a failed and a cancelled run, each counted once', async () => {
    const closed = (outcome: string) => `hostflow_workflow_closed_total{workflow_type="hostPing",outcome="${outcome}"}`;
    const read = async () => {
      const text = await (await fetch(`${p.baseUrl}/metrics`)).text();
      return { text, failed: sample(text, closed('failed')) ?? 0, cancelled: sample(text, closed('cancelled')) ?? 0, completed: sample(text, closed('completed')) ?? 0 };
    };
    const before = await read();
    const hostIds: string[] = [];

    // Fails: the host does not exist (HostNotFound is not retried).
    const missing = randomUUID();
    const failing = await p.client.workflow.start('hostPing', { workflowId: `host-ping/${missing}/${Date.now()}`, taskQueue: p.taskQueue, args: [{ hostId: missing }], workflowExecutionTimeout: '60s' });
    await expect(failing.result()).rejects.toThrow();

    // Cancelled: a ping of a "host" that accepts TCP and never speaks SSH, cancelled while it waits.
    const held: Socket[] = [];
    const silent = createServer((sock) => void held.push(sock));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const h = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: `silent-${randomUUID().slice(0, 6)}`, address: '127.0.0.1', port: (silent.address() as { port: number }).port, username: 'nobody', password: 'not-used-here' } });
      expect(h.status, JSON.stringify(h.body)).toBe(201);
      hostIds.push(h.body.data.id as string);
      const cancelling = await p.client.workflow.start('hostPing', { workflowId: `host-ping/${h.body.data.id}/${Date.now()}`, taskQueue: p.taskQueue, args: [{ hostId: h.body.data.id }], workflowExecutionTimeout: '60s' });
      await until('the ping is connected and waiting', async () => held.length > 0, 20_000);
      await cancelling.cancel();
      await expect(cancelling.result()).rejects.toThrow(/cancel/i);
      expect((await cancelling.describe()).status.name).toBe('CANCELLED');
    } finally {
      held.forEach((s) => s.destroy());
      silent.close();
    }

    const after = await read();
    expect(after.failed - before.failed).toBe(1);
    expect(after.cancelled - before.cancelled).toBe(1);
    expect(after.completed - before.completed).toBe(0);
    // Bounded labels: workflow types and outcomes only.
    for (const line of after.text.split('\n').filter((l) => l.startsWith('hostflow_workflow_closed_total{'))) {
      expect(line).toMatch(/^hostflow_workflow_closed_total\{workflow_type="[A-Za-z][A-Za-z0-9_]*",outcome="(completed|failed|cancelled|continued_as_new|task_failed)"\} \d+$/);
    }
    expect(after.text).not.toContain(missing);
    for (const id of hostIds) expect(after.text).not.toContain(id);
  });

  it('a real lease run: its reminder is observed in the due-vs-sent lag histogram (seconds late, not minutes)', async () => {
    const em = p.db.em.fork();
    const customerId = em.create(CustomerSchema, { name: 'Metrics Co', code: `m${randomUUID().slice(0, 6)}` }).id;
    const userId = em.create(UserSchema, { username: `lag-${randomUUID().slice(0, 6)}`, email: 'lag@metrics.test', roles: ['customer_member'], customerId }).id;
    const h = em.create(HostSchema, { slug: `lag-${randomUUID().slice(0, 8)}`, name: 'lag box', address: '127.0.0.1', port: 1, os: 'linux', username: 'x', status: 'online' });
    const now = Date.now();
    // Ends in 1 min + 3 s with a 1-minute reminder: the reminder falls due 3 s from now.
    const endsAtMs = now + 63_000;
    const a = em.create(AllocationSchema, { host: h, customer: customerId, customerUser: userId, osUsername: 'lag', startsAt: new Date(now), endsAt: new Date(endsAtMs), bufferSeconds: 3600, graceSeconds: 60, status: 'active', createdBy: 'test' });
    await em.flush();
    const lagCount = (text: string) => text.split('\n').filter((l) => l.startsWith('hostflow_lease_notice_lag_seconds_count{notice="reminder"')).reduce((n, l) => n + Number(l.split(' ')[1]), 0);
    const before = lagCount(await (await fetch(`${p.baseUrl}/metrics`)).text());
    let outcome = '';
    const run = await p.client.workflow.start('lease', { workflowId: `lease/${a.id}`, taskQueue: p.taskQueue, args: [{ allocationId: a.id, hostId: h.id, customerId, endsAtMs, bufferMs: 3600_000, graceMs: 60_000, reminderOffsetsMinutes: [1] }] });
    try {
      const deadline = Date.now() + 30_000;
      let ev = null;
      while (!(ev = await p.db.em.fork().findOne(LeaseEventSchema, { allocation: a.id, kind: 'reminder-1m', notification: { $ne: null } }))) {
        if (Date.now() > deadline) throw new Error('the reminder was not recorded within 30 s');
        await new Promise((r) => setTimeout(r, 250));
      }
      outcome = ev.notification!;
    } finally {
      await run.terminate('metrics test done');
    }
    const text = await (await fetch(`${p.baseUrl}/metrics`)).text();
    expect(lagCount(text) - before, 'one reminder, observed once').toBe(1);
    const count = sample(text, `hostflow_lease_notice_lag_seconds_count{notice="reminder",outcome="${outcome}"}`)!;
    expect(count).toBe(1);
    const sum = sample(text, `hostflow_lease_notice_lag_seconds_sum{notice="reminder",outcome="${outcome}"}`)!;
    // Sent within seconds of its due time (timer + one activity), and never before it.
    expect(sum).toBeGreaterThanOrEqual(0);
    expect(sum).toBeLessThan(15);
    expect(sample(text, `hostflow_lease_notice_lag_seconds_bucket{le="15",notice="reminder",outcome="${outcome}"}`)).toBe(count);
    expect(text).not.toContain(a.id);
  });

  it('DB pool gauges at scrape time: PGlite reports its one connection', async () => {
    const text = await (await fetch(`${p.baseUrl}/metrics`)).text();
    expect(sample(text, 'hostflow_db_pool_connections{driver="pglite",state="total"}')).toBe(1);
    expect(sample(text, 'hostflow_db_pool_max{driver="pglite"}')).toBe(1);
  });

  it('DB pool gauges at scrape time: PostgreSQL reports total, idle and waiting of the pg pool', async () => {
    const pg = await startTestPlatform({ db: 'postgres', worker: false });
    try {
      expect((await pg.api('GET', '/api/v1/hosts')).status).toBe(200);
      const text = await (await fetch(`${pg.baseUrl}/metrics`)).text();
      const total = sample(text, 'hostflow_db_pool_connections{driver="postgresql",state="total"}')!;
      const idle = sample(text, 'hostflow_db_pool_connections{driver="postgresql",state="idle"}')!;
      const waiting = sample(text, 'hostflow_db_pool_connections{driver="postgresql",state="waiting"}')!;
      const max = sample(text, 'hostflow_db_pool_max{driver="postgresql"}')!;
      expect(total, 'the requests above opened a connection').toBeGreaterThanOrEqual(1);
      expect(idle).toBeGreaterThanOrEqual(0);
      expect(idle).toBeLessThanOrEqual(total);
      expect(waiting).toBe(0);
      expect(max).toBeGreaterThanOrEqual(total);
    } finally {
      await pg.close();
    }
  });

  it('with a scrape token: 401 without it, 200 with it (timing-safe compare)', async () => {
    const app = express();
    app.get('/metrics', metricsEndpoint({ token: 'scrape-token-0123456789' }));
    const server = await new Promise<Server>((r) => {
      const s = app.listen(0, '127.0.0.1', () => r(s));
    });
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/metrics`;
      expect((await fetch(url)).status).toBe(401);
      expect((await fetch(url, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      const ok = await fetch(url, { headers: { authorization: 'Bearer scrape-token-0123456789' } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('hostflow_process_');
    } finally {
      server.close();
    }
  });
});
