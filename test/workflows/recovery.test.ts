// Recovery paths an operator needs (issue 11) and "a host can become permanently unallocatable"
// (issue 12), on a real sshd host with the real Temporal dev server: every failed state of an
// allocation has an API way out, and the host comes back to the pool.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startSshd, sshExec, type SshTestHost } from '../helpers/sshd.js';
import { utils as ssh2Utils } from 'ssh2';
import type { sshKeyAdd } from '../../workflows/ssh-key-add.workflow.js';
import { loginWithKey, until } from '../helpers/ssh-login.js';
import { captureHistories } from '../helpers/history.js';

describe('recovery paths: every failed state of an allocation has an API way out', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  let hostId = '';
  let customerId = '';
  let user = { id: '', username: '', token: '' };
  const preexisting = `pre${randomBytes(3).toString('hex')}`;

  const alloc = (id: string) => p.api('GET', `/api/v1/allocations/${id}`).then((r) => r.body.data);
  const explain = (id: string) => async () => ({
    allocation: await alloc(id),
    steps: (await p.api('GET', `/api/v1/allocations/${id}/progress`)).body.data?.steps,
  });
  const statusIs = (id: string, ...wanted: string[]) =>
    until(`allocation ${id} ${wanted.join('/')}`, async () => {
      const a = await alloc(id);
      return wanted.includes(a.status) ? a : null;
    }, 90_000, explain(id));
  const allocate = async (extra: Record<string, unknown> = {}) => {
    const r = await p.api('POST', '/api/v1/allocations', {
      body: { host_id: hostId, customer_id: customerId, customer_user_id: user.id, ends_at: new Date(Date.now() + 30 * 86_400_000).toISOString(), grace_minutes: 60, ...extra },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.data.id as string;
  };
  const host = () => p.api('GET', `/api/v1/hosts/${hostId}`).then((r) => r.body.data);
  const available = async () => (await p.api('GET', '/api/v1/hosts?available=true')).body.data.items.map((h: { id: string }) => h.id) as string[];
  const lockStatus = () => p.client.workflow.getHandle(`host-lock/${hostId}`).describe().then((d) => d.status.name);
  /** The caller's in-app messages (GET /api/v1/messages) of one event whose body names the allocation. */
  const inboxOf = async (token: string, event: string, allocationId: string) =>
    ((await p.api('GET', '/api/v1/messages?page_size=200', { token })).body.data.items as Array<{ event: string | null; subject: string; body: string }>).filter((m) => m.event === event && m.body.includes(allocationId));

  beforeAll(async () => {
    [p, sshd] = await Promise.all([startTestPlatform({ db: 'pglite' }), startSshd()]);
    const h = await p.api('POST', '/api/v1/hosts', { body: { name: 'recovery-1', address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
    expect(h.status, JSON.stringify(h.body)).toBe(201);
    hostId = h.body.data.id;
    expect((await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'onboarding' } })).status).toBe(200);
    expect((await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'online' } })).status).toBe(200);
    const c = await p.api('POST', '/api/v1/customers', { body: { name: 'Recovery Co', code: `r${randomBytes(3).toString('hex')}`, contact_email: 'ops@recovery.test' } });
    customerId = c.body.data.id;
    const username = `rc${randomBytes(3).toString('hex')}`;
    const u = await p.api('POST', `/api/v1/customers/${customerId}/users`, { body: { username, email: `${username}@recovery.test`, full_name: 'Rita Customer' } });
    expect(u.status, JSON.stringify(u.body)).toBe(201);
    // Customer users get an initial password, no API token: an API key stands in for their login.
    user = { id: u.body.data.id, username, token: await p.tokenFor(u.body.data.id) };
    // A user that predates the platform, with a process running: nothing of the platform's.
    await sshExec(sshd, `sudo -n useradd -m -p '*' ${preexisting}`);
    await sshExec(sshd, `sudo -n -u ${preexisting} sh -c 'setsid nohup sleep 100000 >/dev/null 2>&1 < /dev/null &'`);
    await until('pre-existing user process', async () => (await sshExec(sshd, `pgrep -u ${preexisting} -x sleep || true`)).stdout.trim());
  }, 120_000);

  afterAll(async () => {
    if (process.env.CAPTURE_HISTORIES && p) await captureHistories(p.client, p.taskQueue, 'test/replay/histories');
    for (const u of [user.username, preexisting]) await sshExec(sshd, `sudo -n pkill -KILL -u ${u}; sudo -n userdel -r -f ${u}; sudo -n rm -f /var/lib/hostflow/accounts/${u}`).catch(() => undefined);
    await p?.close();
    await sshd?.stop();
  });

  it("refuses the host's management user as os_username at validation (40001 naming os_username)", async () => {
    const r = await p.api('POST', '/api/v1/allocations', {
      body: { host_id: hostId, customer_id: customerId, customer_user_id: user.id, ends_at: new Date(Date.now() + 86_400_000).toISOString(), os_username: sshd.adminUser },
    });
    expect([r.status, r.body.code, r.body.errors?.[0]?.field]).toEqual([400, 40001, 'os_username']);
    expect(r.body.errors![0]!.message).toMatch(/management user/);
    expect(await available()).toContain(hostId);
  });

  it('issue 12: an allocation refused on an existing non-managed user is reclaimed without touching that user; the host is allocatable again', { timeout: 180_000 }, async () => {
    const id = await allocate({ os_username: preexisting });
    const failed = await statusIs(id, 'failed');
    expect(failed.failed_step).toBe('create-account');
    expect(failed.error).toMatch(/AccountExistsNotManaged/);
    // Rented hosts are visible as such.
    expect((await host()).allocated).toBe(true);
    expect(await available()).not.toContain(hostId);

    const r = await p.api('POST', `/api/v1/allocations/${id}/reclaim`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const done = await statusIs(id, 'reclaimed', 'reclaim-failed');
    expect(done.status, JSON.stringify(await explain(id)())).toBe('reclaimed');
    // The pre-existing user, its home and its process are untouched.
    expect((await sshExec(sshd, `getent passwd ${preexisting} >/dev/null && echo present`)).stdout.trim()).toBe('present');
    expect((await sshExec(sshd, `pgrep -u ${preexisting} -x sleep >/dev/null && echo running`)).stdout.trim()).toBe('running');
    expect((await host()).status).toBe('online');
    expect((await host()).allocated).toBe(false);
    expect(await until('host lock released', async () => ((await lockStatus()) === 'COMPLETED' ? true : null))).toBe(true);
    expect(await available()).toContain(hostId);
  });

  it('a future-dated allocation can be cancelled before it starts; the lock is released and the host is free', { timeout: 120_000 }, async () => {
    const id = await allocate({ starts_at: new Date(Date.now() + 86_400_000).toISOString() });
    expect((await alloc(id)).status).toBe('pending');
    expect((await p.api('POST', `/api/v1/allocations/${id}/reclaim`)).status).toBe(409);
    const c = await p.api('POST', `/api/v1/allocations/${id}/cancel`, { body: { reason: 'customer changed plans' } });
    expect(c.status, JSON.stringify(c.body)).toBe(200);
    expect(c.body.data.status).toBe('cancelled');
    expect(c.body.data.terminate_reason).toMatch(/customer changed plans/);
    expect((await p.client.workflow.getHandle(`allocation/${id}`).describe()).status.name).toBe('COMPLETED');
    await until('host lock released', async () => ((await lockStatus()) === 'COMPLETED' ? true : null));
    expect((await p.api('POST', `/api/v1/allocations/${id}/cancel`)).status).toBe(409);
    expect(await available()).toContain(hostId);
  });

  it('a failed reclaim leaves the host in maintenance; retry resumes the reclaim from its failed step and brings the host back online', { timeout: 240_000 }, async () => {
    const id = await allocate();
    await statusIs(id, 'active');
    // Onboarding (template re-apply) is refused on a rented host, even offline.
    expect((await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'offline' } })).status).toBe(200);
    const onboard = await p.api('POST', `/api/v1/hosts/${hostId}/onboarding`, { body: {} });
    expect([onboard.status, onboard.body.code], JSON.stringify(onboard.body)).toEqual([409, 40901]);
    expect(onboard.body.message).toMatch(/allocated/);
    expect((await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'online' } })).status).toBe(200);

    // Someone rewrote the platform's marker of the customer's account: reclaim refuses to touch it.
    const marker = `/var/lib/hostflow/accounts/${user.username}`;
    await sshExec(sshd, `sudo -n sh -c 'cp ${marker} ${marker}.bak && echo someone-else > ${marker}'`);
    // The lease is there while active: the operator's reclaim goes through it.
    expect((await p.api('POST', `/api/v1/allocations/${id}/reclaim`)).status).toBe(200);
    const failed = await statusIs(id, 'reclaim-failed');
    expect(failed.failed_step).toBe('revoke-keys');
    expect((await host()).status).toBe('maintenance');
    expect((await p.api('POST', `/api/v1/hosts/lock-check/lock/release`)).status).toBe(400);
    // While the failed allocation holds the host, its lock cannot be released (409 names it) ...
    const rel = await p.api('POST', `/api/v1/hosts/${hostId}/lock/release`);
    expect([rel.status, rel.body.code]).toEqual([409, 40901]);
    expect(rel.body.message).toContain(id);
    // Patch reclaim-notify: reclaim.failed reaches whoever manages allocations (the operator) exactly
    // once, naming the failed step; the customer user (not a manager) and a requester are told nothing.
    const failedMsgs = await until('reclaim.failed in the operator\'s inbox', async () => {
      const m = await inboxOf(p.tokens.operator, 'reclaim.failed', id);
      return m.length ? m : null;
    });
    expect(failedMsgs).toHaveLength(1);
    expect(failedMsgs[0]!.subject).toBe('Reclaim of recovery-1 failed at revoke-keys');
    expect(await inboxOf(user.token, 'reclaim.failed', id)).toEqual([]);
    expect(await inboxOf(p.tokens.requester, 'reclaim.failed', id)).toEqual([]);
    // ... and retry resumes the reclaim (it once answered "is reclaim-failed, not failed").
    await sshExec(sshd, `sudo -n mv ${marker}.bak ${marker}`);
    const retry = await p.api('POST', `/api/v1/allocations/${id}/retry`);
    expect(retry.status, JSON.stringify(retry.body)).toBe(200);
    const done = await statusIs(id, 'reclaimed', 'reclaim-failed');
    expect(done.status, JSON.stringify(await explain(id)())).toBe('reclaimed');
    const steps = (await p.api('GET', `/api/v1/allocations/${id}/progress`)).body.data.steps.filter((s: { phase: string }) => s.phase === 'reclaim');
    expect(steps.find((s: { step: string }) => s.step === 'check-tasks').attempts).toBe(1);
    expect(steps.find((s: { step: string }) => s.step === 'revoke-keys')).toMatchObject({ status: 'done', attempts: 2 });
    expect((await sshExec(sshd, `getent passwd ${user.username} || echo gone`)).stdout.trim()).toBe('gone');
    // Reclaim put the host in maintenance itself, so its success takes it back out.
    expect((await host()).status).toBe('online');
    await until('host lock released', async () => ((await lockStatus()) === 'COMPLETED' ? true : null));
    // The retried run that succeeded says reclaim.done (to the customer user too); the failure is still told once.
    await until('reclaim.done after the retry', async () => ((await inboxOf(user.token, 'reclaim.done', id)).length === 1 ? true : null));
    expect(await inboxOf(p.tokens.operator, 'reclaim.failed', id)).toHaveLength(1);
  });

  it('a terminated lease: terminate (and reclaim) start the reclaim directly', { timeout: 180_000 }, async () => {
    const id = await allocate();
    await statusIs(id, 'active');
    await until('lease running', async () => ((await p.client.workflow.getHandle(`lease/${id}`).describe()).status.name === 'RUNNING' ? true : null));
    await p.client.workflow.getHandle(`lease/${id}`).terminate('operator mistake');
    const t = await p.api('POST', `/api/v1/allocations/${id}/terminate`, { body: { reason: 'lease lost' } });
    expect(t.status, JSON.stringify(t.body)).toBe(200);
    const done = await statusIs(id, 'reclaimed', 'reclaim-failed');
    expect(done.status, JSON.stringify(await explain(id)())).toBe('reclaimed');
    expect(done.terminate_reason).toBe('lease lost');
    expect((await host()).status).toBe('online');
    await until('host lock released', async () => ((await lockStatus()) === 'COMPLETED' ? true : null));
  });

  it("finishReclaim keeps a maintenance an operator set while the reclaim ran", { timeout: 180_000 }, async () => {
    const id = await allocate();
    await statusIs(id, 'active');
    await sshExec(sshd, `sudo -n -u ${user.username} sh -c 'setsid nohup sleep 1000 >/dev/null 2>&1 < /dev/null &'`);
    await until('customer process', async () => (await sshExec(sshd, `pgrep -u ${user.username} -x sleep || true`)).stdout.trim());
    expect((await p.api('POST', `/api/v1/allocations/${id}/reclaim`)).status).toBe(200);
    await until('reclaim waiting for the grace period', async () => {
      const s = (await p.api('GET', `/api/v1/allocations/${id}/progress`)).body.data.steps.find((x: { phase: string; step: string }) => x.phase === 'reclaim' && x.step === 'stop-tasks');
      return s?.status === 'waiting' ? s : null;
    }, 60_000, explain(id));
    expect((await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'maintenance', reason: 'disk replacement' } })).status).toBe(200);
    expect((await p.api('POST', `/api/v1/allocations/${id}/reclaim/force`)).status).toBe(200);
    const done = await statusIs(id, 'reclaimed', 'reclaim-failed');
    expect(done.status, JSON.stringify(await explain(id)())).toBe('reclaimed');
    expect((await host()).status).toBe('maintenance');
    expect(await available()).not.toContain(hostId);
    expect((await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'online' } })).status).toBe(200);
  });

  it('a leftover host lock (its release lost) blocks allocation until an admin releases it; the release is audited', { timeout: 120_000 }, async () => {
    await until('host lock released', async () => ((await lockStatus()) === 'COMPLETED' ? true : null));
    const ghost = randomUUID();
    await p.client.workflow.start('hostLock', { workflowId: `host-lock/${hostId}`, taskQueue: p.taskQueue, args: [{ hostId, allocationId: ghost }], memo: { allocationId: ghost }, workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL });
    const blocked = await p.api('POST', '/api/v1/allocations', { body: { host_id: hostId, customer_id: customerId, customer_user_id: user.id, ends_at: new Date(Date.now() + 86_400_000).toISOString() } });
    expect([blocked.status, blocked.body.code]).toEqual([409, 40901]);
    expect((await p.api('POST', `/api/v1/hosts/${hostId}/lock/release`, { token: p.tokens.operator })).status).toBe(403);
    const rel = await p.api('POST', `/api/v1/hosts/${hostId}/lock/release`);
    expect(rel.status, JSON.stringify(rel.body)).toBe(200);
    expect(rel.body.data).toEqual({ released: true, allocation_id: ghost });
    await until('host lock released', async () => ((await lockStatus()) === 'COMPLETED' ? true : null));
    const audit = await p.db.em.fork().getConnection().execute(`select actor from audit_events where action = 'host.lock.release' and target_id = ?`, [hostId]);
    expect(audit).toEqual([{ actor: 'admin' }]);
    const id = await allocate();
    await statusIs(id, 'active');
    expect((await p.api('POST', `/api/v1/allocations/${id}/terminate`, { body: { reason: 'test over' } })).status).toBe(200);
    expect((await statusIs(id, 'reclaimed', 'reclaim-failed')).status).toBe('reclaimed');
  });

  it('a key the customer adds after allocation reaches the host now (ssh-key-add workflow)', { timeout: 180_000 }, async () => {
    // The previous reclaim releases host-lock/<hostId> asynchronously: allocate once it has.
    await until('host lock released', async () => ((await lockStatus()) === 'COMPLETED' ? true : null));
    const id = await allocate();
    await statusIs(id, 'active');
    const k = ssh2Utils.generateKeyPairSync('ed25519', { comment: 'rita@new-laptop' });
    await expect(loginWithKey(sshd, user.username, k.private, 'true')).rejects.toThrow();
    const r = await p.api('POST', '/api/v1/ssh-keys', { token: user.token, body: { public_key: k.public } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const result = await p.client.workflow.getHandle<typeof sshKeyAdd>(`ssh-key-add/${r.body.data.id}`).result();
    expect(result.hosts).toEqual([{ allocationId: id, hostId, added: 1 }]);
    expect(await loginWithKey(sshd, user.username, k.private, 'id -un')).toBe(user.username);
    expect((await p.api('POST', `/api/v1/allocations/${id}/terminate`, { body: { reason: 'test over' } })).status).toBe(200);
    expect((await statusIs(id, 'reclaimed', 'reclaim-failed')).status).toBe('reclaimed');
    await expect(loginWithKey(sshd, user.username, k.private, 'true')).rejects.toThrow();
  });
});
