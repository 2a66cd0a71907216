// The status-reconciler Schedule: a request whose workflow closed without recording a final status
// (here: terminated while the row said `provisioning`) is set to `failed` with a reason and
// reported, after which `/process` works again. Real Temporal dev server and Schedule, real sshd.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { captureHistories } from '../helpers/history.js';
import { startSshd, sshExec, type SshTestHost } from '../helpers/sshd.js';
import { AccountOpeningRequestSchema } from '../../db/entities/index.js';
import { ensureReconcilerSchedule } from '../../worker/schedules.js';
import type { ReconcileResult } from '../../activities/db/reconcile.activities.js';

describe('status reconciler (real Temporal Schedule, real sshd)', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  const username = `rc${randomBytes(3).toString('hex')}`;
  const scheduleId = `status-reconciler-test-${randomUUID()}`;

  beforeAll(async () => {
    [p, sshd] = await Promise.all([startTestPlatform(), startSshd()]);
  });
  afterAll(async () => {
    if (process.env.CAPTURE_HISTORIES && p) await captureHistories(p.client, p.taskQueue, 'test/replay/histories');
    await p?.client.schedule.getHandle(scheduleId).delete().catch(() => undefined);
    await sshExec(sshd, `sudo -n userdel -r -f ${username}; sudo -n rm -f /var/lib/hostflow/accounts/${username}`).catch(() => undefined);
    await p?.close();
    await sshd?.stop();
  });

  it('fixes a provisioning row whose workflow is closed, reports it, and /process then succeeds', async () => {
    const h = await p.api('POST', '/api/v1/hosts', { body: { name: 'reconcile-host', address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
    const hostId = h.body.data.id;
    await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'onboarding' } });
    await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'online' } });
    const r = await p.api('POST', '/api/v1/account-openings', { token: p.tokens.requester, body: { host_id: hostId, username, full_name: 'Reconcile Test', contact_email: 'r@example.com' } });
    const id = r.body.data.id as string;

    // A workflow that ended without its final status reaching the DB (as a DB outage used to leave it).
    await p.client.workflow.getHandle(`account-opening/${id}`).terminate('test: ends without a final status');
    await p.db.em.fork().nativeUpdate(AccountOpeningRequestSchema, { id }, { status: 'provisioning', updatedAt: new Date(Date.now() - 10 * 60_000) });
    const stuck = await p.api('POST', `/api/v1/account-openings/${id}/process`);
    expect(stuck.body.code).toBe(40901);

    // The Schedule (created like the platform's own, on this test's task queue) runs the reconciler.
    await ensureReconcilerSchedule(p.client, { taskQueue: p.taskQueue, interval: '60m', scheduleId });
    const schedule = p.client.schedule.getHandle(scheduleId);
    await schedule.trigger();
    let runId: string | undefined;
    const deadline = Date.now() + 30_000;
    while (!runId) {
      if (Date.now() > deadline) throw new Error('the schedule never started a run');
      runId = (await schedule.describe()).info.recentActions[0]?.action.workflow.workflowId;
      if (!runId) await new Promise((res) => setTimeout(res, 200));
    }
    const result = (await p.client.workflow.getHandle(runId).result()) as ReconcileResult;
    const mine = result.fixed.find((f) => f.id === id);
    expect(mine).toMatchObject({ kind: 'account-opening', workflowStatus: 'TERMINATED', from: 'provisioning', to: 'failed' });

    const row = await p.api('GET', `/api/v1/account-openings/${id}`);
    expect(row.body.data.status).toBe('failed');
    expect(JSON.stringify(row.body.data)).toMatch(/status reconciler/);

    // /process works again and the account gets created.
    const again = await p.api('POST', `/api/v1/account-openings/${id}/process`);
    expect(again.body.code, JSON.stringify(again.body)).toBe(0);
    const state = await p.client.workflow.getHandle(`account-opening/${id}`).result();
    expect(state.phase).toBe('done');
    expect((await sshExec(sshd, `getent passwd ${username} | wc -l`)).stdout.trim()).toBe('1');

    // Running it again finds nothing more to fix for this row.
    const second = (await p.client.workflow.execute('statusReconciler', { taskQueue: p.taskQueue, workflowId: `reconcile-${randomUUID()}`, args: [{ minAgeMs: 0 }] })) as ReconcileResult;
    expect(second.fixed.find((f) => f.id === id)).toBeUndefined();
  }, 120_000);
});
