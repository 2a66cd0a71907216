import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createTransport } from 'nodemailer';
import { createTimeSkippingEnv } from '../helpers/time-skipping.js';
import { startSmtp } from '../helpers/smtp.js';
import { ActivityGate } from '../helpers/activity-gate.js';
import { initORM, type Db } from '../../db/orm.js';
import { Vault, generateKeyring } from '../../db/vault.js';
import { AllocationSchema, CustomerSchema, HostSchema, LeaseEventSchema, UserSchema } from '../../db/entities/index.js';
import { createActivities } from '../../activities/index.js';
import { SshExecutor } from '../../activities/ssh/ssh-executor.js';
import { WinRmExecutor } from '../../activities/winrm/winrm-executor.js';
import { createLogger } from '../../config/logger.js';
import { CustomerIdKey, HostIdKey, LifecycleStatusKey } from '../../workflows/shared/search-attributes.js';
import { extendUpdate, leaseStateQuery, type lease } from '../../workflows/lease.workflow.js';
import { testDataConverter } from '../helpers/temporal.js';

const DAY = 86_400_000;
const admin = { id: 'a', username: 'admin', roles: ['admin'] };
type Acts = ReturnType<typeof createActivities>;

/**
 * The extend-during-buffer race (time-skipping test server, real SMTP): an extend that lands while
 * the lease is entering its buffer (status write or final notice in flight) must win — no final
 * notice for the end it moved, and no `buffer` status or search attribute left behind.
 */
describe('extend during the lease buffer', () => {
  let env: TestWorkflowEnvironment;
  let db: Db;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let activities: Acts;
  let worker: Worker;
  let run: Promise<void>;
  let customerId: string;
  let userId: string;
  const taskQueue = 'lease-buffer';
  const statusGate = new ActivityGate<Parameters<Acts['setAllocationStatus']>>();
  const eventGate = new ActivityGate<Parameters<Acts['recordLeaseEvent']>>();

  /** A fresh time-skipping server per test (see lease.test.ts: explicit sleeps stall on a reused one). */
  const fresh = async () => {
    if (env) {
      worker.shutdown();
      await run;
      await env.teardown();
    }
    env = await createTimeSkippingEnv();
    worker = await Worker.create({ dataConverter: testDataConverter(),
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: { codePath: inject('workflowBundlePath') },
      activities: { ...activities, setAllocationStatus: statusGate.wrap(activities.setAllocationStatus), recordLeaseEvent: eventGate.wrap(activities.recordLeaseEvent) },
      maxCachedWorkflows: 0,
    });
    run = worker.run();
  };

  beforeAll(async () => {
    [db, smtp] = await Promise.all([initORM({ pgliteDir: 'memory://' }), startSmtp()]);
    const vault = new Vault(generateKeyring('t'));
    const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
    const em = db.em.fork();
    customerId = em.create(CustomerSchema, { name: 'Acme AI', code: 'acme' }).id;
    userId = em.create(UserSchema, { username: 'ana', email: 'ana@acme.test', roles: ['customer_member'], customerId, timezone: 'UTC' }).id;
    await em.flush();
    activities = createActivities({
      em: db.em,
      vault,
      logger,
      ssh: new SshExecutor({ em: db.em, vault, connectTimeoutMs: 500 }),
      winrm: new WinRmExecutor({ em: db.em, vault }),
      mailer: createTransport(smtp.url),
      mailFrom: 'hostflow@test',
      baseDomain: 'hosts.test',
    });
  });
  afterAll(async () => {
    worker?.shutdown();
    await run;
    await env?.teardown();
    await smtp?.stop();
    await db?.close();
  });

  const startLease = async (days: number) => {
    const now = await env.currentTimeMs();
    const em = db.em.fork();
    const h = em.create(HostSchema, { slug: `lb-${randomUUID().slice(0, 8)}`, name: 'GPU box 5', address: '127.0.0.1', port: 1, os: 'linux', username: 'x', status: 'online' });
    const a = em.create(AllocationSchema, { host: h, customer: customerId, customerUser: userId, osUsername: 'ana', startsAt: new Date(now), endsAt: new Date(now + days * DAY), bufferSeconds: 3 * 86_400, graceSeconds: 60, status: 'active', createdBy: 'test' });
    await em.flush();
    const handle = await env.client.workflow.start<typeof lease>('lease', {
      workflowId: `lease/${a.id}`,
      taskQueue,
      args: [{ allocationId: a.id, hostId: h.id, customerId, endsAtMs: now + days * DAY, bufferMs: 3 * DAY, graceMs: 60_000 }],
      typedSearchAttributes: [
        { key: HostIdKey, value: h.id },
        { key: CustomerIdKey, value: customerId },
        { key: LifecycleStatusKey, value: 'active' },
      ],
    });
    return { id: a.id, handle, endMs: now + days * DAY };
  };
  const kindsOf = async (id: string) => (await db.em.fork().find(LeaseEventSchema, { allocation: id }, { orderBy: { firedAt: 'asc' } })).map((e) => e.kind);
  /** Quoted-printable soft breaks and escapes undone, so the text reads as sent. */
  const decodeQp = (raw: string) => raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  const finalNotices = (id: string) => smtp.messages.map((m) => decodeQp(m.raw)).filter((m) => m.includes(`Allocation: ${id}`) && /final notice/.test(m));
  const statusOf = async (id: string) => (await db.em.fork().findOneOrFail(AllocationSchema, { id })).status;
  const attrOf = async (h: { describe(): Promise<{ typedSearchAttributes: { get(k: typeof LifecycleStatusKey): unknown } }> }) => (await h.describe()).typedSearchAttributes.get(LifecycleStatusKey);
  const until = async <T>(what: string, fn: () => Promise<T | null | undefined | false>, ms = 20_000): Promise<T> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it('an extend landing while the buffer status is written: no final notice for the moved end; status and search attribute back to active; the new end gets its notice once', { timeout: 120_000 }, async () => {
    await fresh();
    const { id, handle, endMs } = await startLease(2);
    const held = statusGate.hold((allocationId, status) => allocationId === id && status === 'buffer');
    void env.sleep(2 * DAY + 60_000).catch(() => undefined);
    await held.entered;
    const newEnd = endMs + 5 * DAY;
    const s = await handle.executeUpdate(extendUpdate, { args: [{ endsAt: new Date(newEnd).toISOString(), actor: admin }] });
    expect(s.phase).toBe('active');
    held.release();
    await until('status mirror back to active', async () => (await statusOf(id)) === 'active' && (await attrOf(handle)) === 'active');
    await new Promise((r) => setTimeout(r, 1_000)); // what the lease does next, if anything, it does now
    expect(await kindsOf(id)).not.toContain('ended');
    expect(finalNotices(id)).toHaveLength(0);
    expect(await statusOf(id)).toBe('active');
    expect(await attrOf(handle)).toBe('active');
    expect((await handle.query(leaseStateQuery)).next?.kind).not.toBe('reclaim');

    // The new end arrives: the final notice goes out once, the lease is in its buffer.
    await env.sleep(5 * DAY + 60_000);
    await until('lease in its buffer again', async () => (await handle.query(leaseStateQuery)).phase === 'buffer' && (await kindsOf(id)).includes('ended'));
    expect((await kindsOf(id)).filter((k) => k === 'ended')).toHaveLength(1);
    expect(finalNotices(id)).toHaveLength(1);
    expect(await attrOf(handle)).toBe('buffer');
    expect(await statusOf(id)).toBe('buffer');
  });

  it('an extend landing while the final notice is being sent waits for it, then leaves status and search attribute active', { timeout: 120_000 }, async () => {
    await fresh();
    const { id, handle, endMs } = await startLease(2);
    const held = eventGate.hold((e) => e.allocationId === id && e.kind === 'ended');
    void env.sleep(2 * DAY + 60_000).catch(() => undefined);
    await held.entered;
    const newEnd = endMs + 5 * DAY;
    let answered = false;
    const ext = handle.executeUpdate(extendUpdate, { args: [{ endsAt: new Date(newEnd).toISOString(), actor: admin }] }).then((v) => {
      answered = true;
      return v;
    });
    await new Promise((r) => setTimeout(r, 1_500));
    expect(answered, 'the extend is answered only after the final notice went out').toBe(false);
    held.release();
    const s = await ext;
    expect(s).toMatchObject({ phase: 'active', endsAt: new Date(newEnd).toISOString(), bufferEndsAt: null });
    await until('status mirror active', async () => (await statusOf(id)) === 'active' && (await attrOf(handle)) === 'active');
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await statusOf(id)).toBe('active');
    expect(await attrOf(handle)).toBe('active');
    expect(await kindsOf(id)).toEqual(['reminder-1d', 'ended']);
    expect(finalNotices(id)).toHaveLength(1);
  });
});
