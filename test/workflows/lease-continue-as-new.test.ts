import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { initORM, type Db } from '../../db/orm.js';
import { Vault, generateKeyring } from '../../db/vault.js';
import { AllocationSchema, CustomerSchema, HostSchema, LeaseEventSchema, UserSchema } from '../../db/entities/index.js';
import { createActivities } from '../../activities/index.js';
import { SshExecutor } from '../../activities/ssh/ssh-executor.js';
import { WinRmExecutor } from '../../activities/winrm/winrm-executor.js';
import { createLogger } from '../../config/logger.js';
import { installWorkerRuntime } from '../../worker/create-worker.js';
import { CustomerIdKey, HostIdKey, LifecycleStatusKey } from '../../workflows/shared/search-attributes.js';
import { extendUpdate, leaseStateQuery, terminateUpdate, type LeaseState, type lease } from '../../workflows/lease.workflow.js';
import { ActivityGate } from '../helpers/activity-gate.js';
import { testDataConverter, testClient } from '../helpers/temporal.js';

const DAY = 86_400_000;
const MIN = 60_000;
const admin = { id: 'a', username: 'admin', roles: ['admin'] };

/**
 * Continue-as-new of the lease on the dev server (real clock; the history limit lowered through the
 * lease's `maxHistoryEvents` so a run continues after a handful of Updates instead of ~200).
 */
describe('lease continue-as-new carries everything (dev server)', () => {
  let db: Db;
  let connection: Connection;
  let native: NativeConnection;
  let client: Client;
  let worker: Worker;
  let running: Promise<void>;
  let customerId: string;
  let userId: string;
  const taskQueue = `lease-can-${randomUUID()}`;
  const gate = new ActivityGate<Parameters<ReturnType<typeof createActivities>['setAllocationStatus']>>();

  beforeAll(async () => {
    installWorkerRuntime('WARN');
    db = await initORM({ pgliteDir: 'memory://' });
    const vault = new Vault(generateKeyring('t'));
    const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
    const em = db.em.fork();
    customerId = em.create(CustomerSchema, { name: 'Acme AI', code: 'acme' }).id;
    userId = em.create(UserSchema, { username: 'ana', email: 'ana@acme.test', roles: ['customer_member'], customerId }).id;
    await em.flush();
    const activities = createActivities({
      em: db.em,
      vault,
      logger,
      ssh: new SshExecutor({ em: db.em, vault, connectTimeoutMs: 500 }),
      winrm: new WinRmExecutor({ em: db.em, vault }),
      mailer: null,
      mailFrom: 'hostflow@test',
      baseDomain: 'hosts.test',
    });
    connection = await Connection.connect({ address: inject('temporalAddress') });
    client = testClient(connection);
    native = await NativeConnection.connect({ address: inject('temporalAddress') });
    worker = await Worker.create({ dataConverter: testDataConverter(),
      connection: native,
      taskQueue,
      workflowBundle: { codePath: inject('workflowBundlePath') },
      activities: { ...activities, setAllocationStatus: gate.wrap(activities.setAllocationStatus) },
    });
    running = worker.run();
  });
  afterAll(async () => {
    worker?.shutdown();
    await running;
    await native?.close();
    await connection?.close();
    await db?.close();
  });

  const startLease = async (endMs: number, maxHistoryEvents: number) => {
    const em = db.em.fork();
    const h = em.create(HostSchema, { slug: `lc-${randomUUID().slice(0, 8)}`, name: 'GPU box 9', address: '127.0.0.1', port: 1, os: 'linux', username: 'x', status: 'online' });
    const a = em.create(AllocationSchema, { host: h, customer: customerId, customerUser: userId, osUsername: 'ana', startsAt: new Date(), endsAt: new Date(endMs), bufferSeconds: 86_400, graceSeconds: 60, status: 'active', createdBy: 'test' });
    await em.flush();
    const handle = await client.workflow.start<typeof lease>('lease', {
      workflowId: `lease/${a.id}`,
      taskQueue,
      args: [{ allocationId: a.id, hostId: h.id, customerId, endsAtMs: endMs, bufferMs: DAY, graceMs: 60_000, maxHistoryEvents }],
      typedSearchAttributes: [
        { key: HostIdKey, value: h.id },
        { key: CustomerIdKey, value: customerId },
        { key: LifecycleStatusKey, value: 'active' },
      ],
    });
    return { id: a.id, handle };
  };
  const extend = (handle: Awaited<ReturnType<typeof startLease>>['handle'], endMs: number) =>
    handle.executeUpdate(extendUpdate, { args: [{ endsAt: new Date(endMs).toISOString(), actor: admin }] });
  const rowOf = (id: string) => db.em.fork().findOneOrFail(AllocationSchema, { id });
  const until = async <T>(what: string, fn: () => Promise<T | null | undefined | false>, ms = 20_000): Promise<T> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const runsOf = async (workflowId: string) => {
    const runs: string[] = [];
    for await (const wf of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) runs.push(wf.status.name);
    return runs;
  };

  it('sent and skipped reminders, the end, phase and search attributes survive continue-as-new', { timeout: 90_000 }, async () => {
    // Ends in 3 days + 3 s: the 7-day reminder is skipped at start, the 3-day one is sent 3 s in.
    let end = Date.now() + 3 * DAY + 3_000;
    const { id, handle } = await startLease(end, 30);
    const first = handle.firstExecutionRunId;
    await until('3-day reminder sent', async () => (await handle.query(leaseStateQuery)).sent.includes('reminder-3d'));
    let last: LeaseState | undefined;
    for (let i = 0; i < 12 && (await handle.describe()).runId === first; i++) {
      end += MIN;
      last = await extend(handle, end);
    }
    const desc = await handle.describe();
    expect(desc.runId, 'the lease continued as new').not.toBe(first);
    expect(await runsOf(handle.workflowId)).toContain('CONTINUED_AS_NEW');
    const s = await handle.query(leaseStateQuery);
    expect(s).toMatchObject({ phase: 'active', endsAt: new Date(end).toISOString(), sent: ['reminder-3d'], skipped: ['reminder-7d'], next: { kind: 'reminder-1d', at: new Date(end - DAY).toISOString() } });
    expect(s).toEqual(last);
    expect(desc.typedSearchAttributes.get(HostIdKey)).toBeDefined();
    expect(desc.typedSearchAttributes.get(CustomerIdKey)).toBe(customerId);
    expect(desc.typedSearchAttributes.get(LifecycleStatusKey)).toBe('active');
    await until('DB mirror has the last end', async () => (await rowOf(id)).endsAt.getTime() === end);
    // Still one reminder row: nothing was sent again by the new run.
    expect((await db.em.fork().find(LeaseEventSchema, { allocation: id })).map((e) => e.kind)).toEqual(['reminder-3d']);
    await handle.executeUpdate(terminateUpdate, { args: [{ reason: 'test done', actor: admin }] });
    await handle.result();
  });

  it('an extend that lands while the status write before continue-as-new is in flight reaches the DB (the unsaved dirty state is carried)', { timeout: 90_000 }, async () => {
    const end0 = Date.now() + 30 * DAY;
    // A limit that the start and two extends exceed: the loop continues-as-new right after the held write.
    const { id, handle } = await startLease(end0, 15);
    const first = handle.firstExecutionRunId;
    await until('lease waiting', async () => (await handle.query(leaseStateQuery)).next);
    const held = gate.hold((allocationId) => allocationId === id);
    await extend(handle, end0 + DAY); // its status write is held
    await held.entered;
    const s2 = await extend(handle, end0 + 2 * DAY); // lands while the write is in flight
    expect(s2.endsAt).toBe(new Date(end0 + 2 * DAY).toISOString());
    held.release();
    await until('continued as new', async () => (await handle.describe()).runId !== first);
    // The new run owes the write the old one could not make: the DB shows the second extend.
    await until(`DB end ${new Date(end0 + 2 * DAY).toISOString()}`, async () => (await rowOf(id)).endsAt.getTime() === end0 + 2 * DAY);
    expect((await handle.query(leaseStateQuery)).endsAt).toBe(new Date(end0 + 2 * DAY).toISOString());
    await handle.executeUpdate(terminateUpdate, { args: [{ reason: 'test done', actor: admin }] });
    await handle.result();
  });

  it('extends sent back to back across several continue-as-new are all applied, none lost', { timeout: 120_000 }, async () => {
    let end = Date.now() + 30 * DAY;
    const { id, handle } = await startLease(end, 15);
    const n = 16;
    for (let i = 0; i < n; i++) {
      end += MIN;
      const s = await extend(handle, end);
      expect(s.endsAt).toBe(new Date(end).toISOString());
    }
    const runs = await runsOf(handle.workflowId);
    expect(runs.filter((r) => r === 'CONTINUED_AS_NEW').length).toBeGreaterThanOrEqual(2);
    expect((await handle.query(leaseStateQuery)).endsAt).toBe(new Date(end).toISOString());
    await until('DB mirror has the last end', async () => (await rowOf(id)).endsAt.getTime() === end);
    await handle.executeUpdate(terminateUpdate, { args: [{ reason: 'test done', actor: admin }] });
    await handle.result();
  });
});
