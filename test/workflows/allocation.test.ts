import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { utils as ssh2Utils } from 'ssh2';
import { loginWithKey, until } from '../helpers/ssh-login.js';
import { startTestPlatform, type DbKind, type TestPlatform } from '../helpers/platform.js';
import { startSshd, sshExec, type SshTestHost } from '../helpers/sshd.js';
import { startSmtp } from '../helpers/smtp.js';
import { assertNoSecretsInHistory, captureHistories, inPlaintext, readableRun } from '../helpers/history.js';
import { createActivities } from '../../activities/index.js';
import { createLogger } from '../../config/logger.js';
import type { sshKeyRevoke } from '../../workflows/ssh-key-revoke.workflow.js';

const keyPair = (type: 'ed25519' | 'ecdsa', comment: string) =>
  type === 'ed25519' ? ssh2Utils.generateKeyPairSync('ed25519', { comment }) : ssh2Utils.generateKeyPairSync('ecdsa', { bits: 256, comment });

/** Waits until the allocation is reclaimed and its last step is recorded. */
async function reclaimed(p: TestPlatform, id: string, timeoutMs = 60_000) {
  return until(
    `allocation ${id} reclaimed`,
    async () => {
      const a = (await p.api('GET', `/api/v1/allocations/${id}`)).body.data;
      if (a.status === 'reclaim-failed') throw new Error(`reclaim failed at ${a.failed_step}: ${a.error}`);
      if (a.status !== 'reclaimed') return null;
      const steps = (await p.api('GET', `/api/v1/allocations/${id}/progress`)).body.data.steps;
      return steps.some((s: { step: string; status: string }) => s.step === 'release-host' && s.status === 'done') ? a : null;
    },
    timeoutMs,
    () => diagnose(p, id),
  );
}

/** Where an allocation stands: its row, its steps, and its workflows with their pending activities (for timeouts). */
async function diagnose(p: TestPlatform, id: string, hostId?: string) {
  const row = (await p.api('GET', `/api/v1/allocations/${id}`)).body.data;
  const steps = (await p.api('GET', `/api/v1/allocations/${id}/progress`)).body.data?.steps;
  const workflows: Record<string, unknown> = {};
  for (const wid of [`allocation/${id}`, `lease/${id}`, `reclaim/${id}`, ...(hostId ? [`host-lock/${hostId}`] : [])]) {
    try {
      const d = await p.client.workflow.getHandle(wid).describe();
      const raw = d.raw.pendingActivities ?? [];
      workflows[wid] = {
        status: d.status.name,
        historyLength: d.historyLength,
        pendingActivities: raw.map((a) => ({ type: a.activityType?.name, state: a.state, attempt: a.attempt, lastFailure: a.lastFailure?.message })),
        pendingWorkflowTask: d.raw.pendingWorkflowTask ? { state: d.raw.pendingWorkflowTask.state, attempt: d.raw.pendingWorkflowTask.attempt } : null,
      };
    } catch (err) {
      workflows[wid] = (err as Error).message;
    }
  }
  return { status: row?.status, failed_step: row?.failed_step, error: row?.error, steps, workflows };
}

/** The caller's in-app messages (GET /api/v1/messages) of one event whose text names `about`. */
async function inboxOf(p: TestPlatform, token: string, event: string, about: string) {
  const items = (await p.api('GET', '/api/v1/messages?page_size=200', { token })).body.data.items as Array<{ event: string | null; subject: string; body: string }>;
  return items.filter((m) => m.event === event && `${m.subject}\n${m.body}`.includes(about));
}

interface World {
  p: TestPlatform;
  sshd: SshTestHost;
  smtp: Awaited<ReturnType<typeof startSmtp>>;
  hostId: string;
  customerId: string;
  user: { id: string; username: string; token: string };
}

async function setUpWorld(db: DbKind): Promise<World> {
  const smtp = await startSmtp();
  const [p, sshd] = await Promise.all([startTestPlatform({ db, smtpUrl: smtp.url }), startSshd()]);
  const h = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: 'gpu-rental-1', address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
  expect(h.status, JSON.stringify(h.body)).toBe(201);
  const hostId = h.body.data.id;
  expect((await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'onboarding' } })).status).toBe(200);
  expect((await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'online' } })).status).toBe(200);
  const code = `c${randomBytes(3).toString('hex')}`;
  const c = await p.api('POST', '/api/v1/customers', { body: { name: 'Acme AI', code, contact_email: 'ops@acme.test' } });
  expect(c.status, JSON.stringify(c.body)).toBe(201);
  const username = `cu${randomBytes(3).toString('hex')}`;
  const u = await p.api('POST', `/api/v1/customers/${c.body.data.id}/users`, { body: { username, email: `${username}@acme.test`, full_name: 'Ana Customer', timezone: 'Asia/Shanghai' } });
  expect(u.status, JSON.stringify(u.body)).toBe(201);
  return { p, sshd, smtp, hostId, customerId: c.body.data.id, user: { id: u.body.data.id, username, token: await p.tokenFor(u.body.data.id) } };
}

async function tearDown(w: World | undefined, osUsers: string[]) {
  if (!w) return;
  for (const u of osUsers) await sshExec(w.sshd, `sudo -n pkill -KILL -u ${u}; sudo -n userdel -r -f ${u}; sudo -n rm -f /var/lib/hostflow/accounts/${u}`).catch(() => undefined);
  await w.p.close();
  await w.sshd.stop();
  await w.smtp.stop();
}

describe('allocation → lease → reclaim on a real sshd host', () => {
  let w: World;
  const keys = [keyPair('ed25519', 'ana@laptop'), keyPair('ecdsa', 'ana@workstation')];
  beforeAll(async () => {
    w = await setUpWorld('pglite');
  });
  afterAll(() => tearDown(w, [w?.user.username]));

  let allocationId = '';
  let rev0 = '';
  it('customer users and SSH keys: generated must-change password, validated keys, duplicates rejected', async () => {
    const { p, user } = w;
    const again = await p.api('POST', `/api/v1/customers/${w.customerId}/users`, { body: { username: 'x', email: 'nope' } });
    expect(again.status).toBe(400);
    expect(again.body.errors!.map((e) => e.field).sort()).toEqual(['email', 'username']);

    for (const k of keys) {
      const r = await p.api('POST', '/api/v1/ssh-keys', { token: user.token, body: { public_key: k.public } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(r.body.data.fingerprint).toMatch(/^SHA256:/);
    }
    const dup = await p.api('POST', '/api/v1/ssh-keys', { token: user.token, body: { public_key: keys[0]!.public } });
    expect([dup.status, dup.body.code]).toEqual([409, 40901]);
    // Another user trying the same key gets the same answer: nothing says who holds it.
    const other = await p.api('POST', `/api/v1/customers/${w.customerId}/users`, { body: { username: `ot${randomBytes(3).toString('hex')}`, email: 'other@acme.test' } });
    const squat = await p.api('POST', '/api/v1/ssh-keys', { token: await p.tokenFor(other.body.data.id), body: { public_key: keys[0]!.public } });
    expect([squat.status, squat.body.code]).toEqual([409, 40901]);
    expect(squat.body.message).toBe(dup.body.message);
    expect(squat.body.message).not.toMatch(/another user|other user|owned/i);
    const bad = await p.api('POST', '/api/v1/ssh-keys', { token: user.token, body: { public_key: 'ssh-ed25519 AAAAnotbase64!! x' } });
    expect([bad.status, bad.body.errors?.[0]?.field]).toEqual([400, 'public_key']);
    const weak = ssh2Utils.generateKeyPairSync('rsa', { bits: 1024 });
    const w1 = await p.api('POST', '/api/v1/ssh-keys', { token: user.token, body: { public_key: weak.public } });
    expect(w1.status).toBe(400);
    expect(w1.body.errors![0]!.message).toMatch(/at least 2048 bits \(this one has 1024\)/);
  });

  // Generous test timeouts (remote steps retry with back-off on a loaded CI machine); each wait explains itself when it times out.
  it('allocates: account created, two keys injected, key login verified, connection summary mailed; the customer logs in with each key', { timeout: 120_000 }, async () => {
    const { p, user, sshd } = w;
    const endsAt = new Date(Date.now() + 30 * 86_400_000).toISOString();
    const res = await p.api('POST', '/api/v1/allocations', { body: { host_id: w.hostId, customer_id: w.customerId, customer_user_id: user.id, ends_at: endsAt, buffer_days: 1, grace_minutes: 60 } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    allocationId = res.body.data.id;
    expect(res.body.data.workflow_ids.lease).toBe(`lease/${allocationId}`);

    const second = await p.api('POST', '/api/v1/allocations', { body: { host_id: w.hostId, customer_id: w.customerId, customer_user_id: user.id, ends_at: endsAt } });
    expect([second.status, second.body.code]).toEqual([409, 40901]);

    const active = await until('allocation active', async () => {
      const r = await p.api('GET', `/api/v1/allocations/${allocationId}`);
      if (r.body.data.status === 'failed') throw new Error(`allocation failed at ${r.body.data.failed_step}: ${r.body.data.error}`);
      return r.body.data.status === 'active' ? r.body.data : null;
    }, undefined, () => diagnose(p, allocationId, w.hostId));
    expect(active.os_username).toBe(user.username);
    for (const k of keys) expect(await loginWithKey(sshd, user.username, k.private, 'id -un')).toBe(user.username);

    const progress = await p.api('GET', `/api/v1/allocations/${allocationId}/progress`, { token: user.token });
    expect(progress.status).toBe(200);
    expect(progress.body.data.steps.filter((s: { phase: string }) => s.phase === 'allocate').map((s: { step: string; status: string }) => `${s.step}:${s.status}`)).toEqual([
      'clean-previous:done',
      'create-account:done',
      'inject-keys:done',
      'verify-login:done',
      'send-summary:done',
    ]);
    const lease = await until('lease running', async () => (await p.api('GET', `/api/v1/allocations/${allocationId}/progress`)).body.data.lease);
    expect(lease.phase).toBe('active');
    expect(lease.next.kind).toBe('reminder-7d');
    expect(Math.abs(Date.parse(lease.next.at) - (Date.parse(endsAt) - 7 * 86_400_000))).toBeLessThan(1000);

    const summary = await p.api('GET', `/api/v1/allocations/${allocationId}/connection-summary`, { token: user.token });
    expect(summary.body.data).toMatchObject({ username: user.username, connect: { host: '127.0.0.1', port: sshd.port, via: 'direct' }, host_key_fingerprint: sshd.hostKeyFingerprintSha256 });
    expect(summary.body.data.key_fingerprints).toHaveLength(2);
    const mail = w.smtp.messages.find((m) => m.raw.includes('is ready'));
    expect(mail?.to).toEqual([`${user.username}@acme.test`]);

    // The password: revealed once, by the customer user only; it logs in.
    expect((await p.api('POST', `/api/v1/allocations/${allocationId}/credentials/reveal`)).status).toBe(403);
    const rev = await p.api('POST', `/api/v1/allocations/${allocationId}/credentials/reveal`, { token: user.token });
    expect(rev.status, JSON.stringify(rev.body)).toBe(200);
    expect(rev.body.data.password.length).toBeGreaterThanOrEqual(16);
    rev0 = rev.body.data.password;
    expect((await p.api('POST', `/api/v1/allocations/${allocationId}/credentials/reveal`, { token: user.token })).status).toBe(409);

    // Extending moves the next reminder.
    const newEnd = new Date(Date.parse(endsAt) + 10 * 86_400_000).toISOString();
    const ext = await p.api('POST', `/api/v1/allocations/${allocationId}/extend`, { body: { ends_at: newEnd } });
    expect(ext.status, JSON.stringify(ext.body)).toBe(200);
    expect(ext.body.data.next.at).toBe(new Date(Date.parse(newEnd) - 7 * 86_400_000).toISOString());
    const earlier = await p.api('POST', `/api/v1/allocations/${allocationId}/extend`, { body: { ends_at: endsAt } });
    expect([earlier.status, earlier.body.errors?.[0]?.field]).toEqual([400, 'ends_at']);
    expect((await p.api('POST', `/api/v1/allocations/${allocationId}/extend`, { token: user.token, body: { ends_at: newEnd } })).status).toBe(403);
  });

  it('revoking a key takes it off the host now (ssh-key-revoke workflow); the other key still logs in; a second DELETE is harmless', { timeout: 120_000 }, async () => {
    const { p, user, sshd } = w;
    const list = await p.api('GET', `/api/v1/ssh-keys?user_id=${user.id}`);
    const second = list.body.data.items.find((k: { comment: string }) => k.comment === 'ana@workstation');
    expect(second, JSON.stringify(list.body)).toBeDefined();
    expect(await loginWithKey(sshd, user.username, keys[1]!.private, 'id -un')).toBe(user.username);

    const del = await p.api('DELETE', `/api/v1/ssh-keys/${second.id}`, { token: user.token });
    expect(del.status, JSON.stringify(del.body)).toBe(200);
    expect(del.body.data.revoked_at).not.toBeNull();
    const first = await p.client.workflow.getHandle<typeof sshKeyRevoke>(`ssh-key-revoke/${second.id}`).result();
    expect(first.hosts).toEqual([{ allocationId, hostId: w.hostId, removed: 1 }]);
    await expect(loginWithKey(sshd, user.username, keys[1]!.private, 'true')).rejects.toThrow();
    expect(await loginWithKey(sshd, user.username, keys[0]!.private, 'id -un')).toBe(user.username);

    const again = await p.api('DELETE', `/api/v1/ssh-keys/${second.id}`, { token: user.token });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    const rerun = await p.client.workflow.getHandle<typeof sshKeyRevoke>(`ssh-key-revoke/${second.id}`).result();
    expect(rerun.hosts).toEqual([{ allocationId, hostId: w.hostId, removed: 0 }]);
    const active = await p.api('GET', `/api/v1/ssh-keys?user_id=${user.id}`);
    expect(active.body.data.items.map((k: { comment: string }) => k.comment)).toEqual(['ana@laptop']);

    // Patch ssh-key-revoke-notify: the key's owner finds ssh_key.revoked in the inbox exactly once,
    // naming the key and the one host it left; the re-run (second DELETE) is deduplicated by its key.
    const revoked = await until('ssh_key.revoked in the owner\'s inbox', async () => {
      const m = await inboxOf(p, user.token, 'ssh_key.revoked', second.fingerprint);
      return m.length ? m : null;
    });
    expect(revoked).toHaveLength(1);
    expect(revoked[0]!.subject).toBe('Your SSH key ana@workstation was revoked');
    expect(revoked[0]!.body).toContain('removed from 1 host(s)');
    // Only the owner is told: an operator (ssh_key.manage) has no such message.
    expect(await inboxOf(p, p.tokens.operator, 'ssh_key.revoked', second.fingerprint)).toEqual([]);
  });

  it('reclaim: a running process of the customer waits for the grace period, an admin forces it; account, keys and files are gone; the host is free again', { timeout: 120_000 }, async () => {
    const { p, user, sshd } = w;
    // The customer leaves a process running and files behind.
    await loginWithKey(sshd, user.username, keys[0]!.private, 'setsid nohup sleep 1000 >/dev/null 2>&1 < /dev/null & id -u');
    await loginWithKey(sshd, user.username, keys[0]!.private, 'echo data > /tmp/ana-leftover && echo x > ~/model.bin');
    const sleeping = (await sshExec(sshd, `pgrep -u ${user.username} -x sleep`)).stdout.trim().split(/\s+/).join(',');
    expect(sleeping).not.toBe('');

    // The customer returns the host: straight to reclaim.
    const ret = await p.api('POST', `/api/v1/allocations/${allocationId}/return`, { token: user.token, body: { mode: 'reclaim' } });
    expect(ret.status, JSON.stringify(ret.body)).toBe(200);
    const waiting = await until('reclaim waiting for the grace period', async () => {
      const r = await p.api('GET', `/api/v1/allocations/${allocationId}/progress`);
      const s = r.body.data.steps.find((x: { phase: string; step: string }) => x.phase === 'reclaim' && x.step === 'stop-tasks');
      return s?.status === 'waiting' ? s : null;
    }, undefined, () => diagnose(p, allocationId, w.hostId));
    expect(waiting.detail.running.join(' ')).toMatch(/sleep/);
    expect(w.smtp.messages.some((m) => m.raw.includes('Tasks still running'))).toBe(true);
    expect((await p.api('POST', `/api/v1/allocations/${allocationId}/reclaim/force`, { token: p.tokens.operator })).status).toBe(403);
    const f = await p.api('POST', `/api/v1/allocations/${allocationId}/reclaim/force`);
    expect(f.status, JSON.stringify(f.body)).toBe(200);

    const done = await reclaimed(p, allocationId);
    expect(done.reclaimed_at).toBeTruthy();
    const progress = (await p.api('GET', `/api/v1/allocations/${allocationId}/progress`)).body.data;
    // Once reclaimed, progress says so: not the lease's last phase ("reclaiming") and a null reclaim.
    expect(progress.lease.phase).toBe('reclaimed');
    expect(progress.reclaim).toEqual({ current: null, result: 'done' });
    const steps = progress.steps.filter((s: { phase: string }) => s.phase === 'reclaim');
    expect(steps.map((s: { step: string; status: string }) => `${s.step}:${s.status}`)).toEqual([
      'check-tasks:done',
      'revoke-keys:done',
      'lock-account:done',
      'stop-tasks:done',
      'clean-leftovers:done',
      'delete-account:done',
      'restore-template:skipped',
      'verify-clean:done',
      'release-host:done',
    ]);
    expect((await sshExec(sshd, `getent passwd ${user.username} || echo gone`)).stdout.trim()).toBe('gone');
    // The customer's own processes are gone. Not "nothing of this uid": once the account is deleted,
    // another test file's new user may get the same uid and run its own `sleep 1000`.
    expect((await sshExec(sshd, `ps -o pid= -p ${sleeping} || echo none`)).stdout.trim()).toBe('none');
    expect((await sshExec(sshd, 'ls /tmp/ana-leftover 2>/dev/null || echo none')).stdout.trim()).toBe('none');
    expect((await sshExec(sshd, `ls -d /home/${user.username} 2>/dev/null || echo none`)).stdout.trim()).toBe('none');
    await expect(loginWithKey(sshd, user.username, keys[1]!.private, 'true')).rejects.toThrow();
    const host = await p.api('GET', `/api/v1/hosts/${w.hostId}`);
    expect(host.body.data.status).toBe('online');
    const lock = await p.client.workflow.getHandle(`host-lock/${w.hostId}`).describe();
    expect(lock.status.name).toBe('COMPLETED');
    // What could leak into history: the host's admin credentials (the platform holds them), the
    // generated account password, and API tokens. (The customer's private keys never reach the
    // platform, so scanning for them proves nothing.) Multi-line keys are scanned line by line,
    // as history JSON escapes newlines.
    const keyLines = (pem: string) => pem.split('\n').filter((l) => l.length >= 40 && !l.startsWith('-----'));
    const secrets = [...keyLines(sshd.adminPrivateKey), sshd.adminPassword, rev0, user.token, p.tokens.admin, p.tokens.operator];
    expect(secrets.every((x) => typeof x === 'string' && x.length >= 12), 'every secret scanned for is a real value').toBe(true);
    const scanned = await assertNoSecretsInHistory(p.client, p.taskQueue, secrets);
    expect(scanned).toBeGreaterThanOrEqual(4);

    // Patch reclaim-notify: reclaim.done reaches the customer user (owner) and whoever manages
    // allocations (the operator), exactly once each; a requester is told nothing.
    for (const token of [user.token, p.tokens.operator]) {
      const msgs = await until('reclaim.done in the inbox', async () => {
        const m = await inboxOf(p, token, 'reclaim.done', allocationId);
        return m.length ? m : null;
      });
      expect(msgs).toHaveLength(1);
      expect(msgs[0]!.subject).toBe('gpu-rental-1 has been reclaimed');
    }
    expect(await inboxOf(p, p.tokens.requester, 'reclaim.done', allocationId)).toEqual([]);
  });

  it('the rental reads in the Web UI: every activity of allocation, lease and reclaim has a summary naming the account and host; lease and reclaim start with the rental\'s memo; all of it ciphertext in storage', async () => {
    const { p, user } = w;
    const host = 'gpu-rental-1';
    const who = `${user.username} on ${host}`;
    const runs = Object.fromEntries(await Promise.all(['allocation', 'lease', 'reclaim'].map(async (t) => [t, await readableRun(p.client, `${t}/${allocationId}`)] as const)));
    for (const [t, run] of Object.entries(runs)) {
      expect(run.activities.length, t).toBeGreaterThan(0);
      for (const a of run.activities) {
        expect(a.summary, `${t}: ${a.type} has no summary`).toBeTruthy();
        expect(a.summary, `${t}: ${a.type} fell back to its type name`).not.toBe(a.type);
        expect(a.encrypted, `${t}: ${a.type}'s summary is not ciphertext`).toBe(true);
        expect(inPlaintext(run.raw, a.summary!), `${t}: "${a.summary}" readable in storage`).toBe(false);
      }
    }
    const summaries = (t: string) => Object.fromEntries(runs[t]!.activities.map((a) => [a.type, a.summary]));
    expect(summaries('allocation')).toMatchObject({ createCustomerAccount: expect.stringMatching(new RegExp(`^create account ${who} for c[0-9a-f]{6}$`)), injectCustomerKeys: `inject SSH keys for ${who}`, verifyCustomerLogin: `verify login of ${who}` });
    expect(summaries('reclaim')).toMatchObject({
      checkRunningTasks: `check running tasks of ${who}`,
      revokeCustomerKeys: `revoke SSH keys of ${who}`,
      lockCustomerAccount: `lock account ${who}`,
      stopCustomerTasks: `stop processes of ${who}`,
      deleteCustomerAccount: `delete account ${who}`,
      verifyReclaimClean: `verify nothing of ${who} is left`,
      notifyRunningTasks: expect.stringMatching(new RegExp(`^tell ${user.username} about \\d+ running task\\(s\\), grace until `)),
    });
    // Timers say what they wait for: the lease's next reminder or end, the reclaim's grace period.
    expect(runs.lease!.timers.length).toBeGreaterThan(0);
    for (const t of runs.lease!.timers) expect(t.summary).toMatch(new RegExp(`^wait for the (\\w+ reminder to|end of the term of) ${who} \\(due \\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}\\)$`));
    expect(runs.reclaim!.timers.map((t) => t.summary)).toEqual([expect.stringMatching(new RegExp(`^grace period for the running tasks of ${who} \\(due `))]);
    for (const t of [...runs.lease!.timers, ...runs.reclaim!.timers]) expect(t.encrypted).toBe(true);
    // Child starts (patches allocation-lease-memo, lease-reclaim-memo): a human memo with the rental's names, encrypted.
    const leaseStart = runs.allocation!.children.find((c) => c.type === 'lease')!;
    expect(leaseStart.memo).toMatchObject({ host, username: user.username, customer: expect.stringMatching(/^c[0-9a-f]{6}$/), allocationId, summary: expect.stringMatching(new RegExp(`^Lease of ${host} to c[0-9a-f]{6} \\(account ${user.username}\\) until \\d{4}-\\d{2}-\\d{2}$`)) });
    expect(leaseStart.summary).toBe(leaseStart.memo.summary);
    const reclaimStart = runs.lease!.children.find((c) => c.type === 'reclaim')!;
    expect(reclaimStart.memo).toMatchObject({ host, username: user.username, summary: `Reclaim of ${host} from ${leaseStart.memo.customer} (account ${user.username})` });
    for (const [t, c] of [['allocation', leaseStart], ['lease', reclaimStart]] as const) {
      expect(c.encrypted, `${c.type}'s memo is not ciphertext`).toBe(true);
      expect(inPlaintext(runs[t]!.raw, c.memo.summary as string)).toBe(false);
    }
    // The child sees it as its own memo (the Web UI's memo panel).
    expect((await p.client.workflow.getHandle(`reclaim/${allocationId}`).describe()).memo).toMatchObject({ host, username: user.username });
  });

  it('a reclaim re-run after a crash mid-cleanup (keys revoked, account already deleted) finishes without errors', { timeout: 120_000 }, async () => {
    const { p, user } = w;
    const res = await p.api('POST', '/api/v1/allocations', { body: { host_id: w.hostId, customer_id: w.customerId, customer_user_id: user.id, ends_at: new Date(Date.now() + 5 * 86_400_000).toISOString(), grace_minutes: 0 } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const id = res.body.data.id;
    await until('active', async () => (await p.api('GET', `/api/v1/allocations/${id}`)).body.data.status === 'active', undefined, () => diagnose(p, id, w.hostId));
    // What an earlier reclaim attempt did before its worker died: the cleanup activities ran, nothing was recorded.
    const acts = createActivities({ em: p.db.em, vault: p.vault, logger: createLogger({ level: 'silent' }), ssh: p.ssh, winrm: p.winrm, mailer: null, mailFrom: 'x@test', baseDomain: 'hosts.test' });
    await acts.revokeCustomerKeys(id);
    await acts.lockCustomerAccount(id);
    await acts.cleanCustomerLeftovers(id);
    await acts.deleteCustomerAccount(id);

    const r = await p.api('POST', `/api/v1/allocations/${id}/reclaim`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    await reclaimed(p, id);
    const steps = (await p.api('GET', `/api/v1/allocations/${id}/progress`)).body.data.steps.filter((s: { phase: string }) => s.phase === 'reclaim');
    expect(steps.map((s: { step: string; status: string; attempts: number }) => `${s.step}:${s.status}:${s.attempts}`)).toEqual([
      'check-tasks:done:1',
      'revoke-keys:done:1',
      'lock-account:done:1',
      // Nothing running: no grace period, but stop-tasks still runs (it removes crontab, at jobs, lingering).
      'stop-tasks:done:1',
      'clean-leftovers:done:1',
      'delete-account:done:1',
      'restore-template:skipped:1',
      'verify-clean:done:1',
      'release-host:done:1',
    ]);
    // Refresh the replay fixtures (test/replay) with: CAPTURE_HISTORIES=1 npx vitest run test/workflows/allocation.test.ts
    if (process.env.CAPTURE_HISTORIES) await captureHistories(p.client, p.taskQueue, 'test/replay/histories');
  });
});

describe('one active allocation per host, on PostgreSQL', () => {
  let w: World;
  beforeAll(async () => {
    w = await setUpWorld('postgres');
  });
  afterAll(() => tearDown(w, [w?.user.username]));

  it('20 concurrent allocation requests for one host: exactly one succeeds, 19 get 40901', { timeout: 180_000 }, async () => {
    const { p, user } = w;
    const endsAt = new Date(Date.now() + 7 * 86_400_000).toISOString();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => p.api('POST', '/api/v1/allocations', { body: { host_id: w.hostId, customer_id: w.customerId, customer_user_id: user.id, ends_at: endsAt } })),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    expect(results.filter((r) => r.status === 409).every((r) => r.body.code === 40901)).toBe(true);
    const rows = await p.db.em.fork().getConnection().execute('select status from allocations where host_id = ?', [w.hostId]);
    expect(rows).toHaveLength(1);
    const winner = results.find((r) => r.status === 201)!.body.data.id;
    await until('active', async () => {
      const a = (await p.api('GET', `/api/v1/allocations/${winner}`)).body.data;
      if (a.status === 'failed') throw new Error(`allocation failed at ${a.failed_step}: ${a.error}`);
      return a.status === 'active';
    }, undefined, () => diagnose(p, winner, w.hostId));
    // Reclaim frees the host (and its lock) for the next customer.
    expect((await p.api('POST', `/api/v1/allocations/${winner}/terminate`, { body: { reason: 'test over' } })).status).toBe(200);
    await reclaimed(p, winner);
    const next = await p.api('POST', '/api/v1/allocations', { body: { host_id: w.hostId, customer_id: w.customerId, customer_user_id: user.id, ends_at: endsAt } });
    expect(next.status, JSON.stringify(next.body)).toBe(201);
    await until('active', async () => (await p.api('GET', `/api/v1/allocations/${next.body.data.id}`)).body.data.status === 'active', undefined, () => diagnose(p, next.body.data.id, w.hostId));
    expect((await p.api('POST', `/api/v1/allocations/${next.body.data.id}/terminate`, { body: { reason: 'test over' } })).status).toBe(200);
    await reclaimed(p, next.body.data.id);
  });
});
