// A Windows rental end to end through the real workflows (allocation → lease → reclaim) on the Java
// time-skipping test server, with real SMTP and a real (PGlite) database; the host is the WS-Man
// stand-in (test/helpers/wsman-host.ts; Windows cannot run here) reached over WinRM/HTTPS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createTransport } from 'nodemailer';
import { createTimeSkippingEnv } from '../helpers/time-skipping.js';
import { startSmtp } from '../helpers/smtp.js';
import { startWsManHost, type WsManHost } from '../helpers/wsman-host.js';
import { initORM, type Db } from '../../db/orm.js';
import { Vault, generateKeyring } from '../../db/vault.js';
import { AllocationSchema, CustomerSchema, HostAccountSchema, HostCredentialSchema, HostSchema, LeaseEventSchema, RemoteAccessSchema, UserSchema } from '../../db/entities/index.js';
import { credentialContext, hostAccountSecretContext } from '../../activities/remote/host-targets.js';
import { createActivities } from '../../activities/index.js';
import { SshExecutor } from '../../activities/ssh/ssh-executor.js';
import { WinRmExecutor } from '../../activities/winrm/winrm-executor.js';
import { createLogger } from '../../config/logger.js';
import { testDataConverter } from '../helpers/temporal.js';
import { readableRun } from '../helpers/history.js';
import type { allocation as allocationWorkflow } from '../../workflows/allocation.workflow.js';
import { RECLAIM_STEPS, type reclaim as reclaimWorkflow } from '../../workflows/reclaim.workflow.js';
import type { lease as leaseWorkflow } from '../../workflows/lease.workflow.js';

const DAY = 86_400_000;
const decodeQp = (raw: string) => raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));

describe('Windows rental: allocate, reveal, log on, reminders (time skipping), reclaim with a session and a running process, clean', () => {
  let env: TestWorkflowEnvironment;
  let db: Db;
  let vault: Vault;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let ws: WsManHost;
  let winrm: WinRmExecutor;
  let ssh: SshExecutor;
  let worker: Worker;
  let run: Promise<void>;
  const taskQueue = 'windows-rental';

  beforeAll(async () => {
    [db, smtp, ws] = await Promise.all([initORM({ pgliteDir: 'memory://' }), startSmtp(), startWsManHost({ https: true, computerName: 'WIN-LEASE' })]);
    vault = new Vault(generateKeyring('t'));
    winrm = new WinRmExecutor({ em: db.em, vault, connectTimeoutMs: 3000 });
    ssh = new SshExecutor({ em: db.em, vault, connectTimeoutMs: 500 });
    const activities = createActivities({ em: db.em, vault, logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), ssh, winrm, mailer: createTransport(smtp.url), mailFrom: 'hostflow@test', baseDomain: 'hosts.test' });
    env = await createTimeSkippingEnv();
    worker = await Worker.create({ dataConverter: testDataConverter(), connection: env.nativeConnection, taskQueue, workflowBundle: { codePath: inject('workflowBundlePath') }, activities, maxCachedWorkflows: 0 });
    run = worker.run();
  });
  afterAll(async () => {
    worker?.shutdown();
    await run?.catch(() => undefined);
    await env?.teardown();
    await winrm?.close();
    await ssh?.close();
    await ws?.stop();
    await smtp?.stop();
    await db?.close();
  });

  it('runs the whole term on the stand-in', async () => {
    const now = await env.currentTimeMs();
    const em = db.em.fork();
    const host = em.create(HostSchema, { slug: 'win-lease', name: 'Windows GPU 3', address: '127.0.0.1', port: ws.port, os: 'windows', username: ws.adminUser, winrmPort: ws.port, winrmHttps: true, winrmAuth: 'basic', status: 'online' });
    em.create(HostCredentialSchema, { host, kind: 'winrm-password', ...vault.encrypt(ws.adminPassword, credentialContext(host.id, 'winrm-password')) });
    em.create(RemoteAccessSchema, { host, protocol: 'rdp', gateway: 'legacy:none', publicDomain: 'win-lease.hosts.test', publicPort: 23390, targetPort: 3389 });
    const customer = em.create(CustomerSchema, { name: 'Acme AI', code: 'acme' });
    const user = em.create(UserSchema, { username: 'dana', email: 'dana@acme.test', roles: ['customer_member'], customerId: customer.id });
    const a = em.create(AllocationSchema, { host, customer, customerUser: user, osUsername: 'dana', startsAt: new Date(now), endsAt: new Date(now + 10 * DAY), bufferSeconds: DAY / 1000, graceSeconds: 2, status: 'pending', createdBy: 'test' });
    await em.flush();

    const alloc = await env.client.workflow.start<typeof allocationWorkflow>('allocation', {
      workflowId: `allocation/${a.id}`,
      taskQueue,
      args: [{ allocationId: a.id, hostId: host.id, customerId: customer.id, startsAtMs: now, endsAtMs: now + 10 * DAY, bufferMs: DAY, graceMs: 2_000 }],
      // The names the API puts in the memo (api/routes/allocations/service.ts): the lease and the reclaim inherit them.
      memo: { host: 'win-lease', customer: 'acme', username: 'dana' },
    });
    const provisioned = await alloc.result();
    expect(provisioned).toMatchObject({ result: 'done', steps: { 'clean-previous': 'done', 'create-account': 'done', 'inject-keys': 'skipped', 'verify-login': 'done', 'send-summary': 'done' } });
    expect((await db.em.fork().findOneOrFail(AllocationSchema, { id: a.id })).status).toBe('active');

    // The connection summary mail names the RDP entry and the account, never the password.
    const acct = await db.em.fork().findOneOrFail(HostAccountSchema, { createdFromAllocationId: a.id });
    const password = vault.decrypt(acct.secretCiphertext!, hostAccountSecretContext(acct.id, acct.secretVersion));
    const mails = () => smtp.messages.map((m) => decodeQp(m.raw)).filter((m) => m.includes('dana@acme.test'));
    const summary = mails().find((m) => m.includes('Remote Desktop'))!;
    expect(summary).toBeDefined();
    expect(summary).toContain('dana');
    expect(summary).not.toContain(password);
    expect([...ws.users.get('dana')!.groups]).toContain('Remote Desktop Users');

    // The customer logs on with the password (reveal-once is the route's: test/api covers it) and leaves work running.
    const session = ws.rdpLogon('dana', password);
    ws.startProcess('dana', 'render.exe');
    ws.registerTask('dana', 'nightly-render');
    const sid = ws.users.get('dana')!.sid;

    // The lease: reminders 7, 3 and 1 days before the end, the final notice, then reclaim after the buffer day.
    const lease = env.client.workflow.getHandle<typeof leaseWorkflow>(`lease/${a.id}`);
    const leaseEnd = await lease.result();
    expect(leaseEnd.sent.sort()).toEqual(['reminder-1d', 'reminder-3d', 'reminder-7d']);
    const kinds = (await db.em.fork().find(LeaseEventSchema, { allocation: a.id }, { orderBy: { firedAt: 'asc' } })).map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['reminder-7d', 'reminder-3d', 'reminder-1d', 'ended']));
    expect(mails().filter((m) => /Subject: Your lease of Windows GPU 3 ends in/.test(m))).toHaveLength(3);

    // Reclaim finds the session and the running work, waits the grace period (2 s: a timer the
    // time-skipping server does not skip once a result was awaited), then ends it all.
    const r = await env.client.workflow.getHandle<typeof reclaimWorkflow>(`reclaim/${a.id}`).result();
    expect(r.steps['stop-tasks']).toBe('done');
    expect(r).toMatchObject({ result: 'done', steps: Object.fromEntries(RECLAIM_STEPS.map((s) => [s, s === 'restore-template' ? 'skipped' : 'done'])) });
    expect(ws.sessions.has(session)).toBe(false);
    expect(ws.users.has('dana')).toBe(false);
    expect(ws.profiles.has(sid)).toBe(false);
    expect([...ws.processes.values()].filter((p) => p.sid === sid)).toEqual([]);
    expect([...ws.tasks.values()].filter((t) => t.userId === 'dana')).toEqual([]);
    const row = await db.em.fork().findOneOrFail(AllocationSchema, { id: a.id });
    expect(row.status).toBe('reclaimed');
    expect((await db.em.fork().findOneOrFail(HostAccountSchema, { id: acct.id })).secretCiphertext).toBeNull();

    // The Windows path reads like the Linux one in the Web UI: the same lifecycle activities (HostOps
    // behind them), worded from the memo the allocation passed to the lease and the lease to the reclaim.
    const timeline = async (id: string) => Object.fromEntries((await readableRun(env.client, id)).activities.map((x) => [x.type, x.summary]));
    expect(await timeline(`allocation/${a.id}`)).toMatchObject({ createCustomerAccount: 'create account dana on win-lease for acme', verifyCustomerLogin: 'verify login of dana on win-lease' });
    expect(await timeline(`lease/${a.id}`)).toMatchObject({ recordLeaseEvent: expect.stringMatching(/^send (the \w+ reminder|end-of-term notice) to dana on win-lease/) });
    expect(await timeline(`reclaim/${a.id}`)).toMatchObject({
      checkRunningTasks: 'check running tasks of dana on win-lease',
      stopCustomerTasks: 'stop processes of dana on win-lease',
      lockCustomerAccount: 'lock account dana on win-lease',
      deleteCustomerAccount: 'delete account dana on win-lease',
      verifyReclaimClean: 'verify nothing of dana on win-lease is left',
    });
  }, 300_000);
});
