// `npm run worker` (worker/main.ts) as an operator runs it, in its own process against the suite's
// Temporal dev server and PostgreSQL, with WORKER_METRICS_ADDRESS set: it serves its own /metrics.
// A real activity runs on it (host-ping over SSH to a real sshd test host), then /metrics is scraped.
// Its own namespace, so the Schedules the worker ensures do not touch other test files' runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { Connection, type Client } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { testClient } from '../helpers/temporal.js';
import { createDatabase } from '../helpers/postgres.js';
import { freePort, startSshd, type SshTestHost } from '../helpers/sshd.js';
import { until } from '../helpers/start-process.js';
import { initORM, type Db } from '../../db/orm.js';
import { Vault, formatKeyring, generateKeyring } from '../../db/vault.js';
import { stageHost } from '../../api/routes/hosts/handler.js';
import type { hostPing } from '../../workflows/host-ping.workflow.js';

const repo = resolve(import.meta.dirname, '../..');

describe('standalone worker /metrics (npm run worker, WORKER_METRICS_ADDRESS)', () => {
  const namespace = `worker-metrics-${randomBytes(4).toString('hex')}`;
  const taskQueue = `worker-metrics-${randomUUID()}`;
  const token = randomBytes(18).toString('hex');
  const vaultKeys = generateKeyring('wm');
  let connection: Connection;
  let client: Client;
  let sshd: SshTestHost;
  let db: Db | undefined;
  let child: ChildProcess | undefined;
  let out = '';
  let dataDir = '';
  let url = '';

  beforeAll(async () => {
    connection = await Connection.connect({ address: inject('temporalAddress') });
    await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') });
    client = testClient(connection, { namespace });
    // A namespace just registered is visible to the frontend after its cache refreshes.
    await until('the new namespace answers', async () => (await connection.workflowService.describeNamespace({ namespace }).then(() => true).catch(() => false)) || undefined, 60_000);
    const [databaseUrl, port, host] = await Promise.all([createDatabase(inject('postgresUrl'), `wm_${randomBytes(4).toString('hex')}`), freePort(), startSshd()]);
    sshd = host;
    dataDir = await mkdtemp(join(tmpdir(), 'hostflow-worker-metrics-'));
    url = `http://127.0.0.1:${port}/metrics`;
    const env: Record<string, string | undefined> = {
      ...process.env,
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_NAMESPACE: namespace,
      TEMPORAL_TASK_QUEUE: taskQueue,
      HOSTFLOW_PAYLOAD_KEYS: inject('payloadKeys'),
      HOSTFLOW_ENCRYPTION_KEYS: formatKeyring(vaultKeys),
      DATA_DIR: dataDir,
      WORKER_METRICS_ADDRESS: `127.0.0.1:${port}`,
      METRICS_TOKEN: token,
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      SHUTDOWN_GRACE_MS: '2000',
    };
    for (const k of ['NODE_OPTIONS', 'VITEST', 'VITEST_POOL_ID', 'VITEST_WORKER_ID']) delete env[k];
    child = spawn('npm', ['run', 'worker'], { cwd: repo, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<never>((_r, reject) => child!.once('exit', (code) => reject(new Error(`npm run worker exited (${code}):\n${out.slice(-4000)}`))));
    await Promise.race([exited, until('the worker polls its task queue', () => (out.includes('worker running') ? true : undefined), 180_000)]).catch((err: Error) => {
      throw new Error(`${err.message}\n--- npm run worker ---\n${out.slice(-4000)}`);
    });
    // The worker migrated the database: the test stages a host in it, as the API would.
    db = await initORM({ databaseUrl }, { migrate: false });
  }, 240_000);

  afterAll(async () => {
    if (child?.pid) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      await new Promise((r) => (child!.exitCode !== null ? r(undefined) : child!.once('exit', r)));
    }
    if (client) for await (const s of client.schedule.list()) await client.schedule.getHandle(s.scheduleId).delete().catch(() => undefined);
    await db?.close();
    await sshd?.stop();
    await connection?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('refuses a scrape without the token; with it, shows the activity, remote-command and DB-pool series of the activity it just ran, with no username, address or id in any label', { timeout: 120_000 }, async () => {
    const em = db!.em.fork();
    const host = stageHost(em, new Vault(vaultKeys), { name: `wm-${randomBytes(2).toString('hex')}`, address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey, os: 'linux', tags: [] } as never);
    await em.flush();
    const result = await client.workflow.execute<typeof hostPing>('hostPing', { workflowId: `host-ping/${host.id}/${Date.now()}`, taskQueue, args: [{ hostId: host.id }], workflowExecutionTimeout: '2 minutes' });
    expect(result).toMatchObject({ hostId: host.id, reachable: true, exitCode: 0 });

    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: 'Bearer not-the-token-at-all-0000000000' } })).status).toBe(401);
    expect((await fetch(url.replace('/metrics', '/other'), { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^hostflow_activity_duration_seconds_count\{activity_type="pingHost",outcome="completed",os="linux"\} [1-9]/m);
    expect(text).toMatch(/^hostflow_activity_duration_seconds_count\{activity_type="markHostSeen",outcome="completed",os="none"\} [1-9]/m);
    expect(text).toMatch(/^hostflow_remote_command_duration_seconds_count\{protocol="ssh",builder="[^"]+",result="exit_0"\} [1-9]/m);
    expect(text).toMatch(/^hostflow_db_pool_connections\{driver="postgresql",state="total"\} [1-9]/m);
    expect(text).toMatch(/^hostflow_db_pool_max\{driver="postgresql"\} \d+/m);
    // Registered in the worker (lease notices, notifications, failures), observed when they happen.
    for (const name of ['hostflow_lease_notice_lag_seconds', 'hostflow_notifications_total', 'hostflow_activity_failures_total']) expect(text).toContain(`# TYPE ${name} `);
    // Labels: bounded code-defined sets only.
    const labelValues = [...text.matchAll(/^[a-z_:]+\{([^}]*)\}/gm)].flatMap((m) => [...m[1]!.matchAll(/="([^"]*)"/g)].map((v) => v[1]!));
    expect(labelValues.length).toBeGreaterThan(10);
    for (const bad of [sshd.adminUser, sshd.host, String(sshd.port), host.id, host.slug, token, namespace, taskQueue]) {
      expect(labelValues.filter((v) => v.includes(bad)), `label value containing ${bad}`).toEqual([]);
    }
  });
});
