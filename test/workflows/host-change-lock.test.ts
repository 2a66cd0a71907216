// One change at a time per host: account openings and ssh key add/revoke take host-change-lock/<hostId>
// (workflows/host-change-lock.workflow.ts). Real Temporal dev server, real sshd, the platform's real
// activities; a test hook holds chosen provisionAccount calls open (heartbeating) so a second change
// can be started while the first holds the host. The two key activities (allocationsOfKeyOwner /
// removeRevokedKey, activeAllocationsOfKeyOwner / addKeyToAllocation) are stand-ins that point the
// real key workflows at this host and record when they ran: the lock ordering under test lives in
// the workflows, and the key commands themselves are covered by the allocation and recovery tests.
import { testPayloadKeys } from '../helpers/temporal.js';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startSshd, sshExec, type SshTestHost } from '../helpers/sshd.js';
import { createActivities } from '../../activities/index.js';
import { CommandRecordSchema } from '../../db/entities/index.js';
import { createWorker, installWorkerRuntime } from '../../worker/create-worker.js';
import { createLogger } from '../../config/logger.js';
import { temporalCliPath } from '../../scripts/temporal-cli.js';
import { changeLockStateQuery, type HostChangeLockState } from '../../workflows/host-change-lock.workflow.js';
import { stateQuery } from '../../workflows/account-opening.workflow.js';
import type { sshKeyAdd } from '../../workflows/ssh-key-add.workflow.js';
import type { sshKeyRevoke } from '../../workflows/ssh-key-revoke.workflow.js';

interface Span {
  who: string;
  what: string;
  start: number;
  end: number;
}

/** Held provisionAccount calls, by request id: `release()` runs the real activity, `fail()` throws instead. */
class Holds {
  private waiting = new Map<string, { entered: () => void; go: Promise<'run' | 'fail'> }>();
  private controls = new Map<string, (how: 'run' | 'fail') => void>();
  hold(requestId: string): { entered: Promise<void>; release: () => void; fail: () => void } {
    let entered!: () => void;
    const e = new Promise<void>((r) => (entered = r));
    let go!: (how: 'run' | 'fail') => void;
    const g = new Promise<'run' | 'fail'>((r) => (go = r));
    this.waiting.set(requestId, { entered, go: g });
    this.controls.set(requestId, go);
    return { entered: e, release: () => go('run'), fail: () => go('fail') };
  }
  /** Lets every still-held call go (as failures), so teardown ends. */
  failAll(): void {
    for (const go of this.controls.values()) go('fail');
  }
  async gate(requestId: string): Promise<void> {
    const h = this.waiting.get(requestId);
    if (!h) return;
    this.waiting.delete(requestId);
    h.entered();
    const ctx = Context.current();
    // Heartbeats keep the held attempt alive (account activities have a 10 s heartbeat timeout)
    // and deliver a cancellation of the workflow to it.
    const beat = setInterval(() => ctx.heartbeat(), 1000);
    try {
      const how = await Promise.race([h.go, ctx.cancelled.then(() => 'fail' as const)]);
      if (how === 'fail') throw ApplicationFailure.nonRetryable('test hook: provisioning refused', 'TestRefused');
    } finally {
      clearInterval(beat);
    }
  }
}

describe('host-change-lock: one change at a time per host (account opening, ssh key add/revoke)', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  let hostId: string;
  let worker: Worker;
  let running: Promise<void>;
  let native: NativeConnection;
  const holds = new Holds();
  const spans: Span[] = [];
  const created: string[] = [];
  const lockId = () => `host-change-lock/${hostId}`;

  const record = async <T>(who: string, what: string, f: () => Promise<T>): Promise<T> => {
    const start = Date.now();
    try {
      return await f();
    } finally {
      spans.push({ who, what, start, end: Date.now() });
    }
  };

  beforeAll(async () => {
    [p, sshd] = await Promise.all([startTestPlatform({ worker: false }), startSshd()]);
    installWorkerRuntime('WARN');
    const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
    const real = createActivities({ em: p.db.em, vault: p.vault, logger, ssh: p.ssh, winrm: p.winrm, mailer: null, mailFrom: 'hostflow@test', baseDomain: 'hosts.test' });
    const keyTarget = async () => [{ allocationId: 'stand-in', hostId }];
    native = await NativeConnection.connect({ address: inject('temporalAddress') });
    worker = await createWorker({
      connection: native,
      namespace: 'default',
      taskQueue: p.taskQueue,
      workflowBundle: { codePath: inject('workflowBundlePath') },
      shutdownGraceTime: '5s',
      shutdownForceTime: '20s',
      payloadKeys: testPayloadKeys(),
      activities: {
        ...real,
        provisionAccount: async (requestId: string) =>
          record(`account-opening/${requestId}`, 'provisionAccount', async () => {
            await holds.gate(requestId);
            return real.provisionAccount(requestId);
          }),
        verifyAccountLogin: async (hostAccountId: string) => record(`account/${hostAccountId}`, 'verifyAccountLogin', () => real.verifyAccountLogin(hostAccountId)),
        rollbackAccount: async (requestId: string) => record(`account-opening/${requestId}`, 'rollbackAccount', () => real.rollbackAccount(requestId)),
        allocationsOfKeyOwner: keyTarget,
        activeAllocationsOfKeyOwner: keyTarget,
        removeRevokedKey: async (_a: string, keyId: string) => record(`ssh-key-revoke/${keyId}`, 'removeRevokedKey', async () => ({ removed: 0, skipped: 'stand-in' })),
        addKeyToAllocation: async (_a: string, keyId: string) => record(`ssh-key-add/${keyId}`, 'addKeyToAllocation', async () => ({ added: 0, skipped: 'stand-in' })),
      },
    });
    running = worker.run();
    const h = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: `lock-${randomBytes(2).toString('hex')}`, address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
    expect(h.status, JSON.stringify(h.body)).toBe(201);
    hostId = h.body.data.id;
    await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'onboarding' } });
    await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'online' } });
  }, 120_000);

  afterAll(async () => {
    holds.failAll();
    if (process.env.CAPTURE_HISTORIES && p) await capture();
    worker?.shutdown();
    await running;
    await native?.close();
    for (const u of created) await sshExec(sshd, `sudo -n pkill -KILL -u ${u}; sudo -n userdel -r -f ${u}; sudo -n rm -f /var/lib/hostflow/accounts/${u}`).catch(() => undefined);
    await p?.close();
    await sshd?.stop();
  }, 180_000);

  /** Submits and approves a request; returns its id (the workflow provisions on approval). */
  const openAccount = async (): Promise<string> => {
    const username = `lk${randomBytes(3).toString('hex')}`;
    created.push(username);
    const r = await p.api('POST', '/api/v1/account-openings', { token: p.tokens.requester, body: { host_id: hostId, username, full_name: 'Lock Test', contact_email: 'req@example.com', groups: ['users'] } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.data.id;
  };
  const approve = async (id: string) => {
    const ok = await p.api('POST', `/api/v1/account-openings/${id}/approve`, { token: p.tokens.approver, body: {} });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
  };
  const finalStatus = async (id: string, ms = 60_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const r = await p.api('GET', `/api/v1/account-openings/${id}`);
      if (['done', 'failed'].includes(r.body.data.status)) return r.body.data as { status: string; result_message: string | null };
      if (Date.now() > deadline) throw new Error(`request ${id} stuck in ${r.body.data.status}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  };
  const lockState = () => p.client.workflow.getHandle(lockId()).query(changeLockStateQuery);
  const until = async <T>(f: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await f().catch(() => undefined as T);
      if (v !== undefined && ok(v)) return v;
      if (Date.now() > deadline) throw new Error(`condition not met in ${ms} ms (last: ${JSON.stringify(v)})`);
      await new Promise((res) => setTimeout(res, 200));
    }
  };
  const waitingFor = (s: HostChangeLockState) => s.waiting.map((w) => w.purpose);
  /** The spans of one request: provisionAccount … verifyAccountLogin of the account it created. */
  const window = async (requestId: string) => {
    const row = (await p.api('GET', `/api/v1/account-openings/${requestId}`)).body.data as { host_account_id?: string | null };
    const mine = spans.filter((s) => s.who === `account-opening/${requestId}` || (row.host_account_id && s.who === `account/${row.host_account_id}`));
    return { start: Math.min(...mine.map((s) => s.start)), end: Math.max(...mine.map((s) => s.end)) };
  };

  let firstRequest = '';
  it('an account opening, a key revoke and a key add on a host whose change lock is held wait their turn, and nothing interleaves', async () => {
    const a = await openAccount();
    const b = await openAccount();
    firstRequest = a;
    const holdA = holds.hold(a);
    await approve(a);
    await holdA.entered;
    // A holds the host (inside provisionAccount). B, a key revoke and a key add queue behind it.
    await approve(b);
    const revokeKey = randomUUID();
    const addKey = randomUUID();
    const revoke = await p.client.workflow.start<typeof sshKeyRevoke>('sshKeyRevoke', { taskQueue: p.taskQueue, workflowId: `ssh-key-revoke/${revokeKey}`, args: [{ keyId: revokeKey }] });
    const add = await p.client.workflow.start<typeof sshKeyAdd>('sshKeyAdd', { taskQueue: p.taskQueue, workflowId: `ssh-key-add/${addKey}`, args: [{ keyId: addKey }] });
    const queued = await until(lockState, (s) => s.waiting.length === 3);
    expect(queued.holder?.purpose).toBe(`account-opening/${a}`);
    expect(waitingFor(queued)).toEqual(expect.arrayContaining([`account-opening/${b}`, `ssh-key-revoke/${revokeKey}`, `ssh-key-add/${addKey}`]));
    // Still waiting a moment later: B has not reached the host, nor have the key changes.
    await new Promise((res) => setTimeout(res, 1500));
    expect((await p.client.workflow.getHandle(`account-opening/${b}`).query(stateQuery)).step).toBe('wait-host-lock');
    expect(spans.filter((s) => s.who === `account-opening/${b}` || s.what !== 'provisionAccount')).toEqual([]);

    holdA.release();
    expect((await finalStatus(a)).status).toBe('done');
    expect((await finalStatus(b)).status).toBe('done');
    await Promise.all([revoke.result(), add.result()]);

    // No two changes overlap in time on this host: each starts after the previous one ended.
    const windows = [await window(a), await window(b), ...spans.filter((s) => s.what === 'removeRevokedKey' || s.what === 'addKeyToAllocation')].sort((x, y) => x.start - y.start);
    expect(windows).toHaveLength(4);
    for (let i = 1; i < windows.length; i++) expect(windows[i]!.start, `change ${i} started before change ${i - 1} ended`).toBeGreaterThanOrEqual(windows[i - 1]!.end);
    // A went first (FIFO), and both accounts exist.
    expect(windows[0]!.start).toBe((await window(a)).start);
    const s = await until(lockState, (x) => x.holder === null && x.waiting.length === 0);
    expect(s.granted).toBeGreaterThanOrEqual(4);
  }, 120_000);

  it('the account opening left command records of its changes; the generated password is in none of them', async () => {
    const rev = await p.api('POST', `/api/v1/account-openings/${firstRequest}/credentials/reveal`, { token: p.tokens.requester });
    expect(rev.status, JSON.stringify(rev.body)).toBe(200);
    const password = rev.body.data.password as string;
    const list = await p.api('GET', `/api/v1/hosts/${hostId}/commands?workflow_id=account-opening/${firstRequest}&page_size=200`);
    expect(list.status, JSON.stringify(list.body)).toBe(200);
    const items = list.body.data.items as Array<{ id: string; builder: string; stdin: boolean; exit_code: number | null; activity_type: string }>;
    expect(items.map((i) => i.builder)).toEqual(expect.arrayContaining(['hostflow-create-user', 'hostflow-set-password']));
    expect(items.find((i) => i.builder === 'hostflow-set-password')).toMatchObject({ stdin: true, exit_code: 0, activity_type: 'provisionAccount' });
    for (const i of items) {
      const d = await p.api('GET', `/api/v1/hosts/${hostId}/commands/${i.id}`);
      expect(JSON.stringify(d.body.data)).not.toContain(password);
    }
    const rows = JSON.stringify(await p.db.em.fork().find(CommandRecordSchema, { host: hostId }));
    expect(rows).not.toContain(password);
  });

  it('a failed account opening releases the lock (after its rollback), and the next change proceeds', async () => {
    const c = await openAccount();
    const d = await openAccount();
    const holdC = holds.hold(c);
    await approve(c);
    await holdC.entered;
    await approve(d);
    await until(lockState, (s) => waitingFor(s).includes(`account-opening/${d}`));
    holdC.fail();
    const fc = await finalStatus(c);
    expect(fc.status).toBe('failed');
    expect(fc.result_message).toMatch(/create-account failed: test hook/);
    expect((await finalStatus(d)).status).toBe('done');
    // The rollback of C ran before D touched the host.
    const rb = spans.find((s) => s.who === `account-opening/${c}` && s.what === 'rollbackAccount')!;
    expect(rb).toBeDefined();
    expect((await window(d)).start).toBeGreaterThanOrEqual(rb.end);
  }, 120_000);

  it('cancelling the holder releases the lock; cancelling a waiter takes it out of the queue', async () => {
    const e = await openAccount();
    const f = await openAccount();
    const g = await openAccount();
    const holdE = holds.hold(e);
    await approve(e);
    await holdE.entered;
    await approve(f);
    await approve(g);
    await until(lockState, (s) => s.waiting.length === 2);
    // F gives up while waiting: it leaves the queue and ends `failed` without touching the host.
    await p.client.workflow.getHandle(`account-opening/${f}`).cancel();
    const ff = await finalStatus(f);
    expect([ff.status, ff.result_message]).toEqual(['failed', 'wait-host-lock failed: cancelled while waiting for the host change lock']);
    expect(waitingFor(await lockState())).toEqual([`account-opening/${g}`]);
    // E (the holder) is cancelled: its activity is cancelled, the saga rolls back, the lock passes to G.
    await p.client.workflow.getHandle(`account-opening/${e}`).cancel();
    expect((await finalStatus(e)).status).toBe('failed');
    expect((await finalStatus(g)).status).toBe('done');
    expect(spans.filter((s) => s.who === `account-opening/${f}`)).toEqual([]);
  }, 120_000);

  it('a lost release (the holder was terminated) frees the host within the 20 s probe, not later', async () => {
    const h = await openAccount();
    const i = await openAccount();
    const holdH = holds.hold(h);
    await approve(h);
    await holdH.entered;
    await approve(i);
    await until(lockState, (s) => waitingFor(s).includes(`account-opening/${i}`));
    // Terminate runs no finally: the release signal is never sent.
    const t0 = Date.now();
    await p.client.workflow.getHandle(`account-opening/${h}`).terminate('test: lost release');
    holdH.fail();
    expect((await finalStatus(i, 60_000)).status).toBe('done');
    const waited = Date.now() - t0;
    expect(waited).toBeLessThan(35_000);
  }, 120_000);

  /** CAPTURE_HISTORIES=1: replay fixtures of the patched paths and of the lock itself (never overwritten). */
  async function capture() {
    const dir = 'test/replay/histories';
    const save = async (file: string, workflowId: string, runId?: string) => {
      const path = `${dir}/${file}`;
      if (existsSync(path)) return;
      const json = execFileSync(temporalCliPath(), ['workflow', 'show', '--address', inject('temporalAddress'), '-w', workflowId, ...(runId ? ['-r', runId] : []), '--output', 'json']);
      await writeFile(path, json);
    };
    await save('accountOpening-host-change-lock.json', `account-opening/${firstRequest}`);
    for await (const wf of p.client.workflow.list({ query: `TaskQueue = "${p.taskQueue}" AND ExecutionStatus = "Completed" AND WorkflowType IN ("sshKeyRevoke", "sshKeyAdd")` })) {
      await save(`${wf.type}-host-change-lock.json`, wf.workflowId, wf.runId);
    }
    // The lock completes once idle for 30 s.
    const lock = p.client.workflow.getHandle(lockId());
    await lock.result().catch(() => undefined);
    const d = await lock.describe();
    await save('hostChangeLock-completed.json', lockId(), d.runId);
  }
});
