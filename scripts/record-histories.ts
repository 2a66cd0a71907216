/**
 * npm run replay:record — records one replay fixture per workflow type from real runs.
 *
 * Starts what it needs (a Temporal dev server, PGlite in memory, a real OpenSSH test host from
 * test/helpers/sshd.ts, a real SMTP server, the API and a worker), drives each lifecycle through the
 * API as a user would (ping, onboarding, batch onboarding, re-check, account opening, a cloud-user
 * change, SSH key revoke, allocation → lease (extended, returned) → reclaim with its host lock, a
 * lease that continues-as-new), then writes each run's history with `temporal workflow show
 * --output json` to test/replay/histories/<workflow>[-<scenario>].json.
 *
 * Existing fixtures are never overwritten (they are histories of older code: exactly what replay
 * must keep accepting); a fixture name already taken gets `-<HEAD short hash>` appended.
 *
 * `--only <name,…>` writes only the named fixtures. `--legacy` also records the lease as it was before commit 6586da7 (bundled from `git show`),
 * with a first task that ran after the 7-day reminder was due: the history the
 * `lease-skip-from-start` patch exists for. Run as root (the test host creates OS users).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { Connection, WorkflowIdConflictPolicy } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createTransport } from 'nodemailer';
import ssh2 from 'ssh2';
import { ensureTemporalCli, startDevServer } from './temporal-cli.js';
import { bundleWorkflows, createWorker, installWorkerRuntime } from '../worker/create-worker.js';
import { initORM } from '../db/orm.js';
import { Vault, generateKeyring } from '../db/vault.js';
import { createTemporalClient, dataConverter } from '../config/temporal.js';
import { AesGcmPayloadCodec, decryptPayloadsInJson } from '../config/payload-codec.js';
import { AllocationSchema, CustomerSchema, HostAccountSchema, HostSchema, UserSchema, type Role } from '../db/entities/index.js';
import { createApp } from '../api/app.js';
import { createApiKey } from '../api/routes/api-keys/service.js';
import { createActivities } from '../activities/index.js';
import { SshExecutor } from '../activities/ssh/ssh-executor.js';
import { WinRmExecutor } from '../activities/winrm/winrm-executor.js';
import { createLogger } from '../config/logger.js';
import { LifecycleStatusKey } from '../workflows/shared/search-attributes.js';
import { startSshd, sshExec } from '../test/helpers/sshd.js';
import { startSmtp } from '../test/helpers/smtp.js';
import { bundleWithScratchWorkflow } from '../test/replay/scratch-bundle.js';
import { extendUpdate, leaseStateQuery, terminateUpdate, type lease } from '../workflows/lease.workflow.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const OUT = path.join(ROOT, 'test/replay/histories');
const DAY = 86_400_000;
const legacy = process.argv.includes('--legacy');
/** `--only a,b`: write only these fixtures (every lifecycle still runs: later ones build on earlier ones). */
const onlyArg = process.argv.indexOf('--only');
const only = onlyArg > 0 ? new Set((process.argv[onlyArg + 1] ?? '').split(',')) : null;
const log = (l: string) => process.stderr.write(`[record] ${l}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

async function main() {
  installWorkerRuntime('WARN');
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'silent' });
  const cli = await ensureTemporalCli({ log });
  const { freePort } = await import('../test/helpers/sshd.js');
  const temporal = await startDevServer({ cli, port: await freePort(), uiPort: null });
  const cleanups: Array<() => Promise<unknown>> = [() => temporal.stop()];
  const recorded: string[] = [];
  try {
    const [db, sshd, smtp] = await Promise.all([initORM({ pgliteDir: 'memory://' }), startSshd(), startSmtp()]);
    cleanups.unshift(() => db.close(), () => sshd.stop(), () => smtp.stop());
    const vault = new Vault(generateKeyring('rec'));
    const connection = await Connection.connect({ address: temporal.address });
    // Recorded through the platform's data converter like any run, then stored decrypted (below).
    const payloadKeys = generateKeyring('record');
    const client = createTemporalClient({ connection, payloadKeys });
    cleanups.unshift(() => connection.close());
    const taskQueue = `record-${randomUUID()}`;
    const ssh = new SshExecutor({ em: db.em, vault, logger, connectTimeoutMs: 5000 });
    const winrm = new WinRmExecutor({ em: db.em, vault, logger, connectTimeoutMs: 5000 });
    const mailer = createTransport(smtp.url);
    cleanups.unshift(async () => {
      await ssh.close();
      await winrm.close();
      mailer.close();
    });
    const activities = createActivities({ em: db.em, vault, logger, ssh, winrm, mailer, mailFrom: 'Hostflow <hostflow@record>', baseDomain: 'hosts.record' });
    const nativeConnection = await NativeConnection.connect({ address: temporal.address });
    const bundle = await bundleWorkflows();
    const worker = await createWorker({ connection: nativeConnection, namespace: 'default', taskQueue, activities, workflowBundle: { code: bundle.code }, payloadKeys, shutdownGraceTime: '5s' });
    const running = worker.run();
    cleanups.unshift(async () => {
      worker.shutdown();
      await running;
      await nativeConnection.close();
    });

    // Users with API tokens, as the tests make them.
    const em0 = db.em.fork();
    const tokens: Record<string, string> = {};
    const roles: Record<string, Role[]> = { admin: ['admin', 'approver', 'operator'], approver: ['approver'], requester: ['requester'] };
    const ids: Record<string, string> = {};
    for (const [name, r] of Object.entries(roles)) ids[name] = em0.create(UserSchema, { username: name, roles: r }).id;
    await em0.flush();
    for (const name of Object.keys(roles)) tokens[name] = (await createApiKey(db.em, { userId: ids[name]!, name: 'record' })).key;
    const app = createApp({
      em: db.em,
      vault,
      logger,
      temporal: { client, taskQueue },
      settings: { accountOpeningExpiryDays: 7 },
      checks: { db: () => db.ping(), temporal: async () => void (await connection.workflowService.getSystemInfo({})) },
    });
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    cleanups.unshift(
      () =>
        new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        }),
    );
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- loosely typed JSON from our own API
    const api = async (method: string, p: string, body?: unknown, token = tokens.admin): Promise<{ status: number; data: any; raw: unknown }> => {
      const res = await fetch(base + p, {
        method,
        headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), authorization: `Bearer ${token}` },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const json = (await res.json()) as { data: unknown };
      return { status: res.status, data: json.data, raw: json };
    };
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- loosely typed JSON from our own API
    const must = async (what: string, r: Promise<{ status: number; data: any; raw: unknown }>, ok = [200, 201, 202]): Promise<any> => {
      const v = await r;
      if (!ok.includes(v.status)) throw new Error(`${what}: HTTP ${v.status} ${JSON.stringify(v.raw)}`);
      return v.data;
    };
    const done = async (workflowId: string) => {
      await client.workflow.getHandle(workflowId).result();
      return workflowId;
    };
    const save = async (name: string, workflowId: string, runId?: string) => {
      if (only && !only.has(name)) return;
      const desc = await client.workflow.getHandle(workflowId, runId).describe();
      if (desc.status.name === 'RUNNING') throw new Error(`${workflowId} is still running`);
      let file = path.join(OUT, `${name}.json`);
      if (existsSync(file)) {
        const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim();
        file = path.join(OUT, `${name}-${rev}.json`);
        if (existsSync(file)) file = path.join(OUT, `${name}-${rev}-${randomBytes(2).toString('hex')}.json`);
      }
      const json = execFileSync(cli, ['workflow', 'show', '--address', temporal.address, '-w', workflowId, '-r', desc.runId, '--output', 'json']);
      await mkdir(OUT, { recursive: true });
      // Decrypted before it is written: fixtures stay reviewable and keyless; replay runs them
      // through the same data converter, which passes payloads without its encoding through.
      await writeFile(file, JSON.stringify(decryptPayloadsInJson(JSON.parse(json.toString()), new AesGcmPayloadCodec(payloadKeys)), null, 2));
      recorded.push(path.relative(ROOT, file));
      log(`${desc.type} ${workflowId} (${desc.status.name}, ${desc.historyLength} events) → ${path.relative(ROOT, file)}`);
    };

    // --- Hosts: ping, onboarding, batch onboarding, re-check ---------------------------------
    const newHost = async (name: string) =>
      (await must(`host ${name}`, api('POST', '/api/v1/hosts', { name, address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey, allow_duplicate_address: true }))).id as string;
    const hostA = await newHost('rec-a');
    const ping = await must('ping', api('POST', `/api/v1/hosts/${hostA}/ping`));
    if (!ping.reachable) throw new Error(`ping: ${JSON.stringify(ping)}`);
    await save('host-ping', ping.workflow_id);

    await must('onboard', api('POST', `/api/v1/hosts/${hostA}/onboarding`, {}));
    await save('host-onboarding', await done(`host-onboarding/${hostA}`));
    const onboarded = await db.em.fork().findOneOrFail(HostSchema, { id: hostA });
    if (onboarded.status !== 'online') throw new Error(`onboarding left ${hostA} ${onboarded.status}`);

    const hostB = await newHost('rec-b');
    const hostC = await newHost('rec-c');
    const batch = await must('batch', api('POST', '/api/v1/hosts/onboard', { host_ids: [hostB, hostC], concurrency: 2 }));
    await save('host-onboarding-batch', await done(batch.workflow_id));
    // A child of the batch: its memo (patch batch-child-memo) names the host for its activity summaries.
    await save('host-onboarding-batch-child', await done(`host-onboarding/${hostB}`));

    const recheckId = `host-recheck/record-${Date.now()}`;
    await client.workflow.execute('hostRecheck', { workflowId: recheckId, taskQueue, args: [{ offlineAfter: 3 }], workflowExecutionTimeout: '5 minutes' });
    await save('host-recheck', recheckId);

    // --- Account opening (approved → account created) and a cloud-user change ---------------
    const username = `rec${randomBytes(3).toString('hex')}`;
    const req = await must('submit', api('POST', '/api/v1/account-openings', { host_id: hostA, username, full_name: 'Rec Order', contact_email: 'rec@example.com', groups: ['users'] }, tokens.requester));
    await must('approve', api('POST', `/api/v1/account-openings/${req.id}/approve`, { notes: 'recorded' }, tokens.approver));
    await save('account-opening', await done(req.workflow_id));
    const account = await db.em.fork().findOneOrFail(HostAccountSchema, { host: hostA, username });
    await must('disable', api('POST', `/api/v1/cloud-users/${account.id}/disable`, {}));
    let op: { workflowId: string; runId: string } | undefined;
    for await (const wf of client.workflow.list({ query: `WorkflowType = "hostAccountOperation" AND TaskQueue = "${taskQueue}"` })) op ??= wf;
    if (!op) throw new Error('no hostAccountOperation run found');
    await save('host-account', op.workflowId, op.runId);

    // --- Allocation → lease (extended, returned) → reclaim, host lock, SSH key revoke -------
    const code = `r${randomBytes(3).toString('hex')}`;
    const customer = await must('customer', api('POST', '/api/v1/customers', { name: 'Record AI', code, contact_email: 'ops@record.test' }));
    const cuName = `cu${randomBytes(3).toString('hex')}`;
    const cu = await must('customer user', api('POST', `/api/v1/customers/${customer.id}/users`, { username: cuName, email: `${cuName}@record.test`, full_name: 'Rec Customer', timezone: 'UTC' }));
    // Customer users get no token from the API any more (identity): an API key of theirs instead.
    cu.api_token = (await createApiKey(db.em, { userId: cu.id, name: 'record' })).key;
    const keys = [ssh2.utils.generateKeyPairSync('ed25519', { comment: 'rec@one' }), ssh2.utils.generateKeyPairSync('ed25519', { comment: 'rec@two' })];
    const keyIds: string[] = [];
    for (const k of keys) keyIds.push((await must('ssh key', api('POST', '/api/v1/ssh-keys', { public_key: k.public }, cu.api_token))).id);
    const endsAt = Date.now() + 30 * DAY;
    const alloc = await must('allocate', api('POST', '/api/v1/allocations', { host_id: hostB, customer_id: customer.id, customer_user_id: cu.id, ends_at: new Date(endsAt).toISOString(), buffer_days: 1, grace_minutes: 1 }));
    await until('allocation active', async () => {
      const a = await api('GET', `/api/v1/allocations/${alloc.id}`);
      if (a.data.status === 'failed') throw new Error(`allocation failed: ${a.data.failed_step} ${a.data.error}`);
      return a.data.status === 'active';
    });
    await save('allocation', await done(`allocation/${alloc.id}`));
    // The gateway sync the allocation ran as a child (patch gateway-sync-memo: the rental's names in its memo).
    await save('gateway-sync-allocation', await done(`gateway-sync/allocation-${alloc.id}`));
    await must('revoke key', api('DELETE', `/api/v1/ssh-keys/${keyIds[1]}`, undefined, cu.api_token));
    await save('ssh-key-revoke', await done(`ssh-key-revoke/${keyIds[1]}`));
    await must('extend', api('POST', `/api/v1/allocations/${alloc.id}/extend`, { ends_at: new Date(endsAt + 5 * DAY).toISOString() }));
    await must('return', api('POST', `/api/v1/allocations/${alloc.id}/return`, { mode: 'reclaim' }, cu.api_token));
    await save('lease', await done(`lease/${alloc.id}`));
    await until('reclaimed', async () => {
      const a = await api('GET', `/api/v1/allocations/${alloc.id}`);
      if (a.data.status === 'reclaim-failed') throw new Error(`reclaim failed: ${a.data.failed_step} ${a.data.error}`);
      return a.data.status === 'reclaimed';
    }, 180_000);
    await save('reclaim', await done(`reclaim/${alloc.id}`));
    await save('host-lock', await done(`host-lock/${hostB}`));
    await sshExec(sshd, `sudo -n pkill -KILL -u ${cuName}; sudo -n userdel -r -f ${cuName}; sudo -n userdel -r -f ${username}`).catch(() => undefined);

    // --- A lease that continues-as-new (history limit lowered), then is terminated ----------
    // Its host is unreachable (port 1): the reclaim it starts fails there, which is not recorded.
    const leaseRow = async (endMs: number) => {
      const em = db.em.fork();
      const h = em.create(HostSchema, { slug: `rec-lease-${randomBytes(3).toString('hex')}`, name: 'rec lease', address: '127.0.0.1', port: 1, os: 'linux', username: 'x', status: 'online' });
      const customerRow = await em.findOneOrFail(CustomerSchema, { id: customer.id });
      const a = em.create(AllocationSchema, { host: h, customer: customerRow, customerUser: cu.id, osUsername: 'rectenant', startsAt: new Date(), endsAt: new Date(endMs), bufferSeconds: 86_400, graceSeconds: 60, status: 'active', createdBy: 'record' });
      await em.flush();
      return { a, h };
    };
    {
      let end = Date.now() + 30 * DAY;
      const { a, h } = await leaseRow(end);
      const handle = await client.workflow.start<typeof lease>('lease', {
        workflowId: `lease/${a.id}`,
        taskQueue,
        args: [{ allocationId: a.id, hostId: h.id, customerId: customer.id, endsAtMs: end, bufferMs: DAY, graceMs: 60_000, maxHistoryEvents: 20 }],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      });
      const actor = { id: 'rec', username: 'admin', roles: ['admin'] };
      for (let i = 0; i < 4; i++) {
        end += DAY;
        await handle.executeUpdate(extendUpdate, { args: [{ endsAt: new Date(end).toISOString(), actor }] });
      }
      const first = handle.firstExecutionRunId;
      await until('continued as new', async () => (await handle.describe()).runId !== first);
      await handle.executeUpdate(terminateUpdate, { args: [{ reason: 'recorded', actor }] });
      await handle.result();
      await save('lease-continued-as-new', handle.workflowId, first);
      await save('lease-after-continue-as-new', handle.workflowId);
    }

    // --- A lease that ends, is extended in its buffer (patch lease-extend-race), then returned --
    {
      const end = Date.now() + 2_000;
      const { a, h } = await leaseRow(end);
      const handle = await client.workflow.start<typeof lease>('lease', {
        workflowId: `lease/${a.id}`,
        taskQueue,
        args: [{ allocationId: a.id, hostId: h.id, customerId: customer.id, endsAtMs: end, bufferMs: DAY, graceMs: 60_000 }],
        typedSearchAttributes: [{ key: LifecycleStatusKey, value: 'active' }],
      });
      await until('lease in its buffer', async () => (await handle.query(leaseStateQuery)).phase === 'buffer' && (await handle.describe()).typedSearchAttributes.get(LifecycleStatusKey) === 'buffer');
      const actor = { id: 'rec', username: 'admin', roles: ['admin'] };
      await handle.executeUpdate(extendUpdate, { args: [{ endsAt: new Date(Date.now() + 30 * DAY).toISOString(), actor }] });
      await until('lease active again', async () => (await handle.describe()).typedSearchAttributes.get(LifecycleStatusKey) === 'active');
      await handle.executeUpdate(terminateUpdate, { args: [{ reason: 'recorded', actor }] });
      await handle.result();
      await save('lease-extended-in-buffer', handle.workflowId);
    }

    // --- The lease before commit 6586da7, its first task after the 7-day reminder was due ----
    if (legacy) {
      const source = execFileSync('git', ['show', '6586da7^:workflows/lease.workflow.ts'], { cwd: ROOT }).toString();
      const code = await bundleWithScratchWorkflow('lease.workflow.ts', 'lease', source);
      const queue = `record-legacy-${randomUUID()}`;
      const id = `lease/legacy-${randomUUID()}`;
      const endMs = Date.now() + 7 * DAY + 2_000;
      const handle = await client.workflow.start<typeof lease>('lease', { workflowId: id, taskQueue: queue, args: [{ allocationId: randomUUID(), hostId: randomUUID(), customerId: randomUUID(), endsAtMs: endMs, bufferMs: DAY, graceMs: 60_000 }] });
      await sleep(4_000); // no worker yet: the first task runs after the 7-day reminder's moment
      const old = await Worker.create({ connection: nativeConnection, taskQueue: queue, workflowBundle: { code }, activities, dataConverter: dataConverter(payloadKeys) });
      await old.runUntil(async () => {
        const s = await until('legacy lease ran', async () => {
          const st = await handle.query(leaseStateQuery);
          return st.skipped.length || st.sent.length ? st : null;
        });
        if (!s.skipped.includes('reminder-7d')) throw new Error(`the pre-6586da7 lease did not skip the 7-day reminder: ${JSON.stringify(s)}`);
        await handle.terminate('recorded');
      });
      await save('lease-pre-6586da7-late-first-task', id);

      // The same start with today's code: the 7-day reminder is sent late (the patched branch).
      const lateEnd = Date.now() + 7 * DAY + 2_000;
      const { a, h } = await leaseRow(lateEnd);
      const id2 = `lease/${a.id}`;
      const queue2 = `record-late-${randomUUID()}`;
      const h2 = await client.workflow.start<typeof lease>('lease', { workflowId: id2, taskQueue: queue2, args: [{ allocationId: a.id, hostId: h.id, customerId: customer.id, endsAtMs: lateEnd, bufferMs: DAY, graceMs: 60_000 }] });
      await sleep(4_000);
      const now = await Worker.create({ connection: nativeConnection, taskQueue: queue2, workflowBundle: { code: bundle.code }, activities, dataConverter: dataConverter(payloadKeys) });
      await now.runUntil(async () => {
        await until('late lease sent its reminder', async () => (await h2.query(leaseStateQuery)).sent.includes('reminder-7d'));
        await h2.terminate('recorded');
      });
      await save('lease-late-first-task', id2);
    }
  } finally {
    for (const c of cleanups) await c().catch((err: unknown) => log(`cleanup: ${String(err)}`));
  }
  process.stdout.write(`${recorded.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
