import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { NativeConnection, Worker } from '@temporalio/worker';
import { inject } from 'vitest';
import { createTransport } from 'nodemailer';
import { createTimeSkippingEnv } from '../helpers/time-skipping.js';
import { startSmtp } from '../helpers/smtp.js';
import { initORM, type Db } from '../../db/orm.js';
import { Vault, generateKeyring } from '../../db/vault.js';
import { AllocationSchema, CustomerSchema, HostSchema, LeaseEventSchema, UserSchema } from '../../db/entities/index.js';
import { createActivities } from '../../activities/index.js';
import { SshExecutor } from '../../activities/ssh/ssh-executor.js';
import { WinRmExecutor } from '../../activities/winrm/winrm-executor.js';
import { createLogger } from '../../config/logger.js';
import { extendUpdate, leaseStateQuery, type lease } from '../../workflows/lease.workflow.js';
import { RECLAIM_STEPS, type reclaim as reclaimWorkflow } from '../../workflows/reclaim.workflow.js';
import { testDataConverter, testClient } from '../helpers/temporal.js';
import { parseReminderOffset } from '../../workflows/shared/reminder-offsets.js';

const DAY = 86_400_000;
const MIN = 60_000;

/** Quoted-printable soft breaks and escapes undone, so assertions read the text as sent. */
const decodeQp = (raw: string) => raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));

describe('lease reminders (time-skipping test server, real SMTP)', () => {
  let env: TestWorkflowEnvironment;
  let db: Db;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let activities: ReturnType<typeof createActivities>;
  let worker: Worker;
  let run: Promise<void>;
  let customerId: string;
  let userId: string;
  const taskQueue = 'lease';

  /**
   * A fresh time-skipping server and worker for one test. (The Java test server's explicit
   * `sleep` stalls once an earlier test awaited a workflow result on the same server, so tests
   * that skip time by hand each get their own: ~1 s each.)
   */
  const fresh = async () => {
    if (env) {
      await stopWorker();
      await env.teardown();
    }
    env = await createTimeSkippingEnv();
    await startWorker();
  };
  const startWorker = async () => {
    // No workflow cache: every task replays the history (so a restarted worker is the normal case, and no task
    // waits on a dead worker's sticky queue, whose timeout the time-skipping server would never reach).
    worker = await Worker.create({ dataConverter: testDataConverter(), connection: env.nativeConnection, taskQueue, workflowBundle: { codePath: inject('workflowBundlePath') }, activities, maxCachedWorkflows: 0 });
    run = worker.run();
  };
  const stopWorker = async () => {
    worker.shutdown();
    await run;
  };

  beforeAll(async () => {
    [db, smtp] = await Promise.all([initORM({ pgliteDir: 'memory://' }), startSmtp()]);
    const vault = new Vault(generateKeyring('t'));
    const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
    const em = db.em.fork();
    customerId = em.create(CustomerSchema, { name: 'Acme AI', code: 'acme' }).id;
    userId = em.create(UserSchema, { username: 'ana', email: 'ana@acme.test', roles: ['customer_member'], customerId, timezone: 'Asia/Shanghai' }).id;
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
    await stopWorker().catch(() => undefined);
    await env?.teardown();
    await smtp?.stop();
    await db?.close();
  });

  /** An allocation row (the lease's mirror) and its lease workflow, ending `days` after the server's now. */
  const startLease = async (days: number, bufferDays = 3, reminderOffsetsMinutes?: number[]) => {
    const now = await env.currentTimeMs();
    const em = db.em.fork();
    // Each lease on its own host row (one holding allocation per host). The host is unreachable and the
    // allocation never created an account there, so the reclaim the lease starts at the end leaves the
    // host alone and completes (the first test checks that; allocation.test.ts looks at real reclaims).
    const h = em.create(HostSchema, { slug: `lh-${randomUUID().slice(0, 8)}`, name: 'GPU box 7', address: '127.0.0.1', port: 1, os: 'linux', username: 'x', status: 'online' });
    const a = em.create(AllocationSchema, {
      host: h,
      customer: customerId,
      customerUser: userId,
      osUsername: 'ana',
      startsAt: new Date(now),
      endsAt: new Date(now + days * DAY),
      bufferSeconds: bufferDays * 86_400,
      graceSeconds: 60,
      status: 'active',
      createdBy: 'test',
    });
    await em.flush();
    const handle = await env.client.workflow.start<typeof lease>('lease', {
      workflowId: `lease/${a.id}`,
      taskQueue,
      args: [{ allocationId: a.id, hostId: h.id, customerId, endsAtMs: now + days * DAY, bufferMs: bufferDays * DAY, graceMs: 60_000, ...(reminderOffsetsMinutes ? { reminderOffsetsMinutes } : {}) }],
    });
    return { id: a.id, handle, startMs: now, endMs: now + days * DAY };
  };
  /** The patch ids whose markers a run recorded (core_patch markers, details.patch_id). */
  const patchIds = async (handle: { fetchHistory(): Promise<{ events?: Array<{ markerRecordedEventAttributes?: { markerName?: string | null; details?: Record<string, { payloads?: Array<{ data?: Uint8Array | null }> | null }> | null } | null }> | null }> }) =>
    ((await handle.fetchHistory()).events ?? [])
      .filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')
      .flatMap((e) => Object.values(e.markerRecordedEventAttributes!.details ?? {}).map((v) => Buffer.from(v.payloads?.[0]?.data ?? new Uint8Array()).toString('utf8')))
      .join('\n');
  const eventsOf = async (id: string) => {
    const rows = await db.em.fork().find(LeaseEventSchema, { allocation: id }, { orderBy: { firedAt: 'asc' } });
    return rows.map((r) => ({ kind: r.kind, firedAt: r.firedAt.getTime(), dueAt: r.dueAt.getTime(), notification: r.notification }));
  };
  const mailsOf = (id: string) => smtp.messages.filter((m) => decodeQp(m.raw).includes(`Allocation: ${id}`));

  it('a 30-day lease sends exactly three reminders at 7, 3 and 1 days before the end, then the final notice, then reclaims after the buffer', async () => {
    await fresh();
    const t0 = Date.now();
    const { id, handle, endMs } = await startLease(30);
    const final = await handle.result();
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(final.phase).toBe('reclaiming');
    expect(final.sent.sort()).toEqual(['reminder-1d', 'reminder-3d', 'reminder-7d']);

    const events = await eventsOf(id);
    expect(events.map((e) => e.kind)).toEqual(['reminder-7d', 'reminder-3d', 'reminder-1d', 'ended']);
    const expected = [endMs - 7 * DAY, endMs - 3 * DAY, endMs - DAY, endMs];
    events.forEach((e, i) => {
      expect(e.dueAt).toBe(expected[i]);
      expect(Math.abs(e.firedAt - expected[i]!)).toBeLessThan(MIN);
      expect(e.notification).toBe('sent');
    });

    const mails = mailsOf(id).map((m) => decodeQp(m.raw));
    expect(mails).toHaveLength(4);
    expect(mails.filter((m) => /Subject: Your lease of GPU box 7 ends in 7 days/.test(m))).toHaveLength(1);
    expect(mails.filter((m) => /Subject: Your lease of GPU box 7 ends in 1 day\b/.test(m))).toHaveLength(1);
    expect(mails.filter((m) => /final notice/.test(m))).toHaveLength(1);
    // The end date in the customer user's time zone (Asia/Shanghai is UTC+8, no DST).
    const sh = new Date(endMs + 8 * 3600_000).toISOString();
    const local = `${sh.slice(0, 10)} ${sh.slice(11, 16)} (Asia/Shanghai, UTC+08:00)`;
    for (const m of mails) expect(m).toContain(local);
    expect(mails[0]!.includes('To: ana@acme.test')).toBe(true);

    // After the 3-day buffer the lease started reclaim/<id>. This allocation never created an
    // account (no host account row), so every remote step leaves the unreachable host alone and
    // reclaim completes without contacting it; the host has no environment template.
    const reclaim = await env.client.workflow.getHandle(`reclaim/${id}`).describe();
    expect(Math.abs(reclaim.startTime.getTime() - (endMs + 3 * DAY))).toBeLessThan(MIN);
    const r = await env.client.workflow.getHandle<typeof reclaimWorkflow>(`reclaim/${id}`).result();
    expect(r).toMatchObject({
      phase: 'reclaim',
      result: 'done',
      current: null,
      steps: Object.fromEntries(RECLAIM_STEPS.map((s) => [s, s === 'restore-template' ? 'skipped' : 'done'])),
    });
    expect(Object.keys(r.steps)).toEqual([...RECLAIM_STEPS]);
    expect(r.failedStep).toBeUndefined();
    expect(r.error).toBeUndefined();
    const row = await db.em.fork().findOneOrFail(AllocationSchema, { id });
    expect(row.status).toBe('reclaimed');
    expect(row.failedStep).toBeNull();
  });

  it('a lease with its own reminder policy (30d, 1d, 2h, 15m) reminds at exactly those offsets, in minutes too, and says how long is left', async () => {
    await fresh();
    const offsets = ['30d', '1d', '2h', '15m'].map((o) => parseReminderOffset(o)!);
    const { id, handle, endMs } = await startLease(45, 1, offsets);
    const s0 = await handle.query(leaseStateQuery);
    expect(s0.next).toEqual({ kind: 'reminder-30d', at: new Date(endMs - 30 * DAY).toISOString() });
    const final = await handle.result();
    expect(final.sent.sort()).toEqual(['reminder-15m', 'reminder-1d', 'reminder-2h', 'reminder-30d']);
    const events = await eventsOf(id);
    expect(events.map((e) => e.kind)).toEqual(['reminder-30d', 'reminder-1d', 'reminder-2h', 'reminder-15m', 'ended']);
    const expected = [endMs - 30 * DAY, endMs - DAY, endMs - 120 * MIN, endMs - 15 * MIN, endMs];
    events.forEach((e, i) => {
      expect(e.dueAt).toBe(expected[i]);
      // Minute-level offsets fire on the minute (the time-skipping server jumps straight to each timer).
      expect(Math.abs(e.firedAt - expected[i]!)).toBeLessThan(MIN);
      expect(e.notification).toBe('sent');
    });
    const subjects = mailsOf(id).map((m) => /^Subject: (.*)$/m.exec(decodeQp(m.raw))?.[1]);
    expect(subjects).toEqual([
      'Your lease of GPU box 7 ends in 30 days',
      'Your lease of GPU box 7 ends in 1 day',
      'Your lease of GPU box 7 ends in 2 hours',
      'Your lease of GPU box 7 ends in 15 minutes',
      'Your lease of GPU box 7 has ended: final notice',
    ]);
    // The run took the patched path (its history carries the marker); runs without offsets never call it.
    expect(await patchIds(handle)).toContain('lease-reminder-policy');
  });

  it('a lease without offsets keeps the fixed 7/3/1 schedule and records no lease-reminder-policy marker', async () => {
    await fresh();
    const { handle } = await startLease(10);
    await handle.result();
    expect(await patchIds(handle)).not.toContain('lease-reminder-policy');
  });

  it('extending at day 25 moves the remaining reminders; the one already sent is not sent again', async () => {
    await fresh();
    const { id, handle, endMs } = await startLease(30);
    await env.sleep(25 * DAY);
    expect((await eventsOf(id)).map((e) => e.kind)).toEqual(['reminder-7d']);
    const newEnd = endMs + 10 * DAY;
    const bad = handle.executeUpdate(extendUpdate, { args: [{ endsAt: new Date(endMs - DAY).toISOString(), actor: { id: 'a', username: 'admin', roles: ['admin'] } }] });
    await expect(bad).rejects.toMatchObject({ cause: { message: expect.stringMatching(/must be later than the current end/) } });
    const s = await handle.executeUpdate(extendUpdate, { args: [{ endsAt: new Date(newEnd).toISOString(), actor: { id: 'a', username: 'admin', roles: ['admin'] } }] });
    expect(s.next).toEqual({ kind: 'reminder-3d', at: new Date(newEnd - 3 * DAY).toISOString() });
    await handle.result();
    const events = await eventsOf(id);
    expect(events.map((e) => e.kind)).toEqual(['reminder-7d', 'reminder-3d', 'reminder-1d', 'ended']);
    expect(Math.abs(events[0]!.firedAt - (endMs - 7 * DAY))).toBeLessThan(MIN);
    expect(Math.abs(events[1]!.firedAt - (newEnd - 3 * DAY))).toBeLessThan(MIN);
    expect(Math.abs(events[2]!.firedAt - (newEnd - DAY))).toBeLessThan(MIN);
    expect(Math.abs(events[3]!.firedAt - newEnd)).toBeLessThan(MIN);
    expect(mailsOf(id)).toHaveLength(4);
    const row = await db.em.fork().findOneOrFail(AllocationSchema, { id });
    expect(row.endsAt.getTime()).toBe(newEnd);
  });

  it('a 2-day lease sends only the 1-day reminder (the others were already past: skipped, not sent late)', async () => {
    await fresh();
    const { id, handle } = await startLease(2);
    const s = await handle.query(leaseStateQuery);
    expect(s.skipped.sort()).toEqual(['reminder-3d', 'reminder-7d']);
    expect(s.next?.kind).toBe('reminder-1d');
    await handle.result();
    expect((await eventsOf(id)).map((e) => e.kind)).toEqual(['reminder-1d', 'ended']);
    expect(mailsOf(id)).toHaveLength(2);
  });

  it('a reminder that falls due before any worker ran the lease is sent late, not skipped (dev server, real clock)', async () => {
    // On the dev server: the time-skipping server cannot leave a started workflow without a worker while time passes.
    const connection = await NativeConnection.connect({ address: inject('temporalAddress') });
    const client = testClient(connection);
    const queue = `lease-late-${randomUUID()}`;
    const em = db.em.fork();
    const h = em.create(HostSchema, { slug: `lh-${randomUUID().slice(0, 8)}`, name: 'GPU box 8', address: '127.0.0.1', port: 1, os: 'linux', username: 'x', status: 'online' });
    const endMs = Date.now() + 7 * DAY + 2_000; // the 7-day reminder is due in 2 s
    const a = em.create(AllocationSchema, { host: h, customer: customerId, customerUser: userId, osUsername: 'ana', startsAt: new Date(), endsAt: new Date(endMs), bufferSeconds: 3 * 86_400, graceSeconds: 60, status: 'active', createdBy: 'test' });
    await em.flush();
    const handle = await client.workflow.start<typeof lease>('lease', {
      workflowId: `lease/${a.id}`,
      taskQueue: queue,
      args: [{ allocationId: a.id, hostId: h.id, customerId, endsAtMs: endMs, bufferMs: 3 * DAY, graceMs: 60_000 }],
    });
    await new Promise((r) => setTimeout(r, 4_000)); // no worker yet: the first task waits past the reminder's moment
    const late = await Worker.create({ dataConverter: testDataConverter(), connection, taskQueue: queue, workflowBundle: { codePath: inject('workflowBundlePath') }, activities });
    try {
      await late.runUntil(async () => {
        let s = await handle.query(leaseStateQuery);
        for (let i = 0; i < 150 && s.sent.length === 0 && s.skipped.length === 0; i++) {
          await new Promise((r) => setTimeout(r, 200));
          s = await handle.query(leaseStateQuery);
        }
        expect(s.sent).toEqual(['reminder-7d']);
        expect(s.skipped).toEqual([]);
        expect(s.next?.kind).toBe('reminder-3d');
        await handle.terminate('test done');
      });
    } finally {
      await connection.close();
    }
    const events = await eventsOf(a.id);
    expect(events.map((e) => e.kind)).toEqual(['reminder-7d']);
    expect(events[0]!.dueAt).toBe(endMs - 7 * DAY);
    expect(events[0]!.firedAt).toBeGreaterThan(events[0]!.dueAt);
    expect(mailsOf(a.id)).toHaveLength(1);
  });

  it('a worker restarted mid-lease sends no duplicate; a replayed reminder activity sends nothing twice', async () => {
    await fresh();
    const { id, handle, endMs } = await startLease(10);
    await env.sleep(3.5 * DAY);
    expect((await eventsOf(id)).map((e) => e.kind)).toEqual(['reminder-7d']);
    // Restart the worker (a deployment), twice: around each of the next reminders.
    await stopWorker();
    await startWorker();
    await env.sleep(4 * DAY);
    expect((await eventsOf(id)).map((e) => e.kind)).toEqual(['reminder-7d', 'reminder-3d']);
    await stopWorker();
    await startWorker();
    await handle.result();
    const events = await eventsOf(id);
    expect(events.map((e) => e.kind)).toEqual(['reminder-7d', 'reminder-3d', 'reminder-1d', 'ended']);
    expect(mailsOf(id)).toHaveLength(4);
    // The same event delivered again (as an activity retry after a lost completion would): no new row, no mail.
    const again = await activities.recordLeaseEvent({ allocationId: id, kind: 'reminder-3d', dueAtMs: endMs - 3 * DAY, firedAtMs: endMs - 3 * DAY, endsAtMs: endMs });
    expect(again.recorded).toBe(false);
    expect(mailsOf(id)).toHaveLength(4);
    expect(await eventsOf(id)).toHaveLength(4);
  });
});
