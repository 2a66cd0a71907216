import { testClient, testPayloadKeys } from '../helpers/temporal.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, rm, mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client as SshClient, utils as sshUtils } from 'ssh2';
import type { Client} from '@temporalio/client';
import { Connection, WorkflowFailedError } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { openTestDb } from '../helpers/platform.js';
import { startSshd, type SshTestHost } from '../helpers/sshd.js';
import { captureHistories } from '../helpers/history.js';
import type { Db } from '../../db/orm.js';
import { Vault, generateKeyring } from '../../db/vault.js';
import { AllocationSchema, AuditEventSchema, CustomerSchema, HostSchema, UserSchema } from '../../db/entities/index.js';
import { assignPorts, type GatewayPorts } from '../../db/port-pool.js';
import { planRemoteAccess } from '../../activities/remote/remote-access.js';
import { createActivities } from '../../activities/index.js';
import { SshExecutor } from '../../activities/ssh/ssh-executor.js';
import { WinRmExecutor } from '../../activities/winrm/winrm-executor.js';
import { createLogger } from '../../config/logger.js';
import { createWorker, installWorkerRuntime } from '../../worker/create-worker.js';
import { setHostRemoteAccess } from '../../api/routes/remote/service.js';
import type { GatewayConfig, GatewaySyncResult } from '../../activities/gateway/gateway.activities.js';

const run = promisify(execFile);

/** `count` consecutive free loopback ports (the gateway's pool for this test). */
async function freeRange(count: number): Promise<{ from: number; to: number }> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const from = 30000 + Math.floor(Math.random() * 20000);
    let ok = true;
    for (let p = from; p < from + count && ok; p++) ok = await free(p);
    if (ok) return { from, to: from + count - 1 };
  }
  throw new Error('no free port range');
}

/** Logs in through the gateway with the customer's key and runs `whoami`. */
function loginThrough(port: number, username: string, privateKey: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = new SshClient();
    const t = setTimeout(() => {
      c.end();
      reject(new Error('ssh through the gateway timed out'));
    }, 15_000);
    c.on('ready', () =>
      c.exec('whoami', (err, stream) => {
        if (err) return reject(err);
        let out = '';
        stream.on('data', (d: Buffer) => (out += d.toString())).on('close', () => {
          clearTimeout(t);
          c.end();
          resolve(out.trim());
        });
      }),
    );
    c.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    c.connect({ host: '127.0.0.1', port, username, privateKey, readyTimeout: 10_000 });
  });
}

/** A TCP connect to the gateway port: true when something listens. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });
}

describe('gateway-sync: one managed nginx config from the remote-access entries (real nginx, real sshd, real Temporal)', () => {
  let db: Db;
  let sshd: SshTestHost;
  let worker: Worker;
  let workerRun: Promise<void>;
  let nativeConn: NativeConnection;
  let client: Client;
  let prefix: string;
  let gatewayConfig: GatewayConfig;
  let gatewayPorts: GatewayPorts;
  const taskQueue = `gateway-${randomBytes(4).toString('hex')}`;
  const tenant = `gwt${randomBytes(3).toString('hex')}`;
  const key = sshUtils.generateKeyPairSync('ed25519');
  let hostId: string;
  let sshPort: number;
  let idlePort: number;
  const ids = { customer: '', user: '' };

  const newHost = async (slug: string, address: string, port: number, allocated: boolean) => {
    const em = db.em.fork();
    const h = em.create(HostSchema, { slug, name: slug, address, port, os: 'linux', username: 'admin', status: 'online' });
    if (allocated) {
      em.create(AllocationSchema, { host: h, customer: em.getReference(CustomerSchema, ids.customer), customerUser: em.getReference(UserSchema, ids.user), osUsername: tenant, startsAt: new Date(), endsAt: new Date(Date.now() + 86_400_000), bufferSeconds: 0, graceSeconds: 0, status: 'active', createdBy: 'test' });
    }
    await em.flush();
    return h.id;
  };
  const sync = async (reason: string): Promise<GatewaySyncResult> =>
    client.workflow.execute('gatewaySync', { workflowId: `gateway-sync/test-${reason}-${Date.now()}`, taskQueue, args: [{ reason }] });

  beforeAll(async () => {
    db = await openTestDb('pglite');
    sshd = await startSshd({ users: [{ name: tenant, authorizedKeys: [key.public] }] });
    prefix = await mkdtemp(join(tmpdir(), 'hostflow-gw-'));
    gatewayPorts = { gateway: 'gw.test', pool: await freeRange(8) };
    gatewayConfig = { gateway: 'gw.test', confPath: join(prefix, 'nginx.conf'), nginxBin: '/usr/sbin/nginx', listen: '127.0.0.1' };
    const em = db.em.fork();
    const c = em.create(CustomerSchema, { name: 'Gateway Co', code: `gw${randomBytes(3).toString('hex')}` });
    const u = em.create(UserSchema, { username: `gw-${tenant}`, customerId: c.id });
    await em.flush();
    Object.assign(ids, { customer: c.id, user: u.id });

    const vault = new Vault(generateKeyring('gw'));
    installWorkerRuntime('WARN');
    nativeConn = await NativeConnection.connect({ address: inject('temporalAddress') });
    worker = await createWorker({
      connection: nativeConn,
      namespace: 'default',
      taskQueue,
      activities: createActivities({ em: db.em, vault, logger: createLogger({ level: 'silent' }), ssh: new SshExecutor({ em: db.em, vault }), winrm: new WinRmExecutor({ em: db.em, vault }), mailer: null, mailFrom: 'x@test', baseDomain: 'hosts.test', gatewayPorts, gatewayConfig }),
      workflowBundle: { codePath: inject('workflowBundlePath') },
      shutdownGraceTime: '5s',
      payloadKeys: testPayloadKeys(),
    });
    workerRun = worker.run();
    client = testClient(await Connection.connect({ address: inject('temporalAddress') }));

    hostId = await newHost(`gw-a-${tenant}`, '127.0.0.1', sshd.port, true);
    const [ssh, http] = await assignPorts(db.em, hostId, planRemoteAccess({ slug: `gw-a-${tenant}`, os: 'linux', port: sshd.port }, { enabled: true, extraPorts: [8888] }, 'hosts.test'), gatewayPorts);
    sshPort = ssh!.publicPort;
    expect(http!.protocol).toBe('http');
    // A host with an entry but no allocation: its customer-facing entry stays closed.
    const idle = await newHost(`gw-idle-${tenant}`, '127.0.0.1', sshd.port, false);
    idlePort = (await assignPorts(db.em, idle, planRemoteAccess({ slug: `gw-idle-${tenant}`, os: 'linux', port: sshd.port }, { enabled: true }, 'hosts.test'), gatewayPorts))[0]!.publicPort;
  }, 120_000);

  afterAll(async () => {
    if (process.env.CAPTURE_HISTORIES && client) await captureHistories(client, taskQueue, 'test/replay/histories');
    await run('/usr/sbin/nginx', ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-s', 'stop']).catch(() => undefined);
    worker?.shutdown();
    await workerRun?.catch(() => undefined);
    await nativeConn?.close();
    await client?.connection.close();
    await sshd?.stop();
    await db?.close();
    await rm(prefix, { recursive: true, force: true });
  }, 60_000);

  it('starts the managed nginx; a customer logs in with their key through the gateway port; a host without an allocation stays closed', { timeout: 120_000 }, async () => {
    const r = await sync('first');
    expect(r).toMatchObject({ status: 'applied', entries: 2, nginx: 'started' });
    const conf = await readFile(gatewayConfig.confPath, 'utf8');
    expect(conf).toContain(`listen 127.0.0.1:${sshPort};`);
    expect(conf).toContain(`proxy_pass 127.0.0.1:${sshd.port};`);
    expect(conf).toMatch(/http \{[\s\S]*server_name gw-a-.*\.hosts\.test;[\s\S]*proxy_pass http:\/\/127\.0\.0\.1:8888;/);
    expect(await loginThrough(sshPort, tenant, key.private)).toBe(tenant);
    expect(await listening(idlePort)).toBe(false);
    // Nothing changed: no rewrite, no reload.
    expect(await sync('again')).toMatchObject({ status: 'unchanged', nginx: 'none' });
  });

  it('disabling the host closes the path after the reload; enabling opens it again', { timeout: 120_000 }, async () => {
    const deps = { em: db.em, temporal: { client, taskQueue } };
    const off = await setHostRemoteAccess(deps, { hostId, enabled: false, actor: 'admin', wait: true });
    expect(off.gateway).toMatchObject({ status: 'applied', entries: 0, nginx: 'reloaded' });
    let open = true;
    for (let i = 0; i < 30 && open; i++) {
      open = await listening(sshPort);
      if (open) await new Promise((r) => setTimeout(r, 100));
    }
    expect(open, 'the gateway port still accepts connections after disabling').toBe(false);
    await expect(loginThrough(sshPort, tenant, key.private)).rejects.toThrow(/ECONNREFUSED/);
    const on = await setHostRemoteAccess(deps, { hostId, enabled: true, actor: 'admin', wait: true });
    expect(on.gateway).toMatchObject({ status: 'applied', entries: 2, nginx: 'reloaded' });
    expect(await loginThrough(sshPort, tenant, key.private)).toBe(tenant);
    const audits = await db.em.fork().find(AuditEventSchema, { action: { $in: ['remote_access.disable', 'remote_access.enable'] }, targetId: hostId });
    expect(audits.map((a) => a.action).sort()).toEqual(['remote_access.disable', 'remote_access.enable']);
  });

  it('a broken entry fails the sync naming it, and the old config keeps running', { timeout: 120_000 }, async () => {
    const before = await readFile(gatewayConfig.confPath, 'utf8');
    const broken = await newHost(`gw-broken-${tenant}`, 'no-such-host.invalid', 22, true);
    const [entry] = await assignPorts(db.em, broken, planRemoteAccess({ slug: `gw-broken-${tenant}`, os: 'linux', port: 22 }, { enabled: true }, 'hosts.test'), gatewayPorts);
    const err = await sync('broken').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as (Error & { cause?: Error }) | undefined;
    const msg = String(cause?.cause?.message ?? cause?.message);
    expect(msg).toContain(`gw-broken-${tenant} ssh gw-broken-${tenant}.hosts.test:${entry!.publicPort}`);
    expect(msg).toMatch(/host not found in upstream/);
    expect(msg).toMatch(/running config is unchanged/);
    expect(await readFile(gatewayConfig.confPath, 'utf8')).toBe(before);
    expect(await loginThrough(sshPort, tenant, key.private)).toBe(tenant);
    const failed = await db.em.fork().findOne(AuditEventSchema, { action: 'gateway.sync.failed' }, { orderBy: { at: 'desc' } });
    expect(failed?.detail as object).toMatchObject({ host: `gw-broken-${tenant}` });
    // Removing the broken host (its ports go back to the pool) lets the next sync through.
    await db.em.fork().nativeDelete(AllocationSchema, { host: broken });
    await db.em.fork().nativeDelete(HostSchema, { id: broken });
    expect(await sync('fixed')).toMatchObject({ status: 'unchanged' });
  });

  it('drift: a hand-edited file and a dead nginx are put right by the next sync; a reclaiming allocation closes its entries', { timeout: 120_000 }, async () => {
    await writeFile(gatewayConfig.confPath, '# edited by hand\nevents {}\n');
    expect(await sync('drift-file')).toMatchObject({ status: 'applied', nginx: 'reloaded' });
    expect(await loginThrough(sshPort, tenant, key.private)).toBe(tenant);
    const pid = Number((await readFile(join(prefix, 'nginx.pid'), 'utf8')).trim());
    process.kill(pid, 'SIGQUIT');
    for (let i = 0; i < 50; i++) {
      try {
        process.kill(pid, 0);
        await new Promise((r) => setTimeout(r, 100));
      } catch {
        break;
      }
    }
    expect(await sync('drift-dead')).toMatchObject({ status: 'applied', nginx: 'started' });
    expect(await loginThrough(sshPort, tenant, key.private)).toBe(tenant);

    await db.em.fork().nativeUpdate(AllocationSchema, { host: hostId }, { status: 'reclaiming' });
    expect(await sync('reclaim')).toMatchObject({ status: 'applied', entries: 0 });
    await expect(loginThrough(sshPort, tenant, key.private)).rejects.toThrow(/ECONNREFUSED/);
  });
});
