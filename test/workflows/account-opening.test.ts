import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Client as SshClient } from 'ssh2';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startSshd, sshExec, type SshTestHost } from '../helpers/sshd.js';
import { assertNoSecretsInHistory, captureHistories, saveHistory } from '../helpers/history.js';
import { AccountOpeningRequestSchema, AuditEventSchema, HostAccountSchema, UserSchema } from '../../db/entities/index.js';
import type { Payload } from '@temporalio/common';
import { createApiKey } from '../../api/routes/api-keys/service.js';

/** Logs in over SSH with a password and runs a command, as a customer would. */
function loginWithPassword(h: SshTestHost, username: string, password: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = new SshClient();
    c.on('ready', () => {
      c.exec(command, (err, stream) => {
        if (err) return reject(err);
        let out = '';
        stream.on('data', (d: Buffer) => (out += d.toString()));
        stream.on('close', () => {
          c.end();
          resolve(out.trim());
        });
      });
    });
    c.on('error', reject);
    c.connect({ host: h.host, port: h.port, username, password, readyTimeout: 5000 });
  });
}

describe('account opening on a Linux host (real Temporal, real sshd)', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  let hostId: string;
  const created: string[] = [];
  const uname = (prefix: string) => {
    const n = `${prefix}${randomBytes(3).toString('hex')}`;
    created.push(n);
    return n;
  };
  const waitFor = async (id: string, statuses: string[]) => {
    const deadline = Date.now() + 45_000;
    for (;;) {
      const r = await p.api('GET', `/api/v1/account-openings/${id}`);
      if (statuses.includes(r.body.data.status)) return r.body.data;
      if (Date.now() > deadline) throw new Error(`request ${id} stuck in ${r.body.data.status}: ${r.body.data.result_message}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  };
  const submit = (body: Record<string, unknown>, token = p.tokens.requester) =>
    p.api('POST', '/api/v1/account-openings', { token, body: { host_id: hostId, full_name: 'Test User', contact_email: 'req@example.com', ...body } });

  beforeAll(async () => {
    [p, sshd] = await Promise.all([startTestPlatform(), startSshd()]);
    // This host's policy lets anyone ask for an admin account (the approver still decides).
    const h = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: 'acct-host', address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey, account_policy: { allow_admin: true, privileged_by: 'anyone' } } });
    hostId = h.body.data.id;
    expect((await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'onboarding' } })).status).toBe(200);
    expect((await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'online' } })).status).toBe(200);
  });
  afterAll(async () => {
    for (const u of created) await sshExec(sshd, `sudo -n pkill -KILL -u ${u}; sudo -n userdel -r -f ${u}; sudo -n rm -f /var/lib/hostflow/accounts/${u}`).catch(() => undefined);
    await p?.close();
    await sshd?.stop();
  });

  let revealed = '';
  let firstUsername = '';
  let firstWorkflowId = '';
  it('submit → approve → account created with groups, login verified → applicant reveals once and logs in', async () => {
    const username = uname('al');
    firstUsername = username;
    const res = await submit({ username, groups: ['users'], is_admin: true });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.data).toMatchObject({ status: 'pending', username, workflow_id: `account-opening/${res.body.data.id}` });
    const id = res.body.data.id;

    const dup = await submit({ username });
    expect([dup.status, dup.body.code]).toEqual([409, 40901]);

    const selfApprove = await p.api('POST', `/api/v1/account-openings/${id}/approve`, { token: p.tokens.requester });
    expect(selfApprove.status).toBe(403);

    const ok = await p.api('POST', `/api/v1/account-openings/${id}/approve`, { token: p.tokens.approver, body: { notes: 'welcome' } });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    // The answer carries the decision itself, not the row as it was before it.
    expect(ok.body.data).toMatchObject({ status: 'approved', approved_by: p.users.approver, approval_notes: 'welcome', decided_at: expect.stringMatching(/^\d{4}-/) });
    const again = await p.api('POST', `/api/v1/account-openings/${id}/approve`, { token: p.tokens.approver });
    expect([again.status, again.body.code]).toEqual([409, 40901]);

    const done = await waitFor(id, ['done', 'failed']);
    expect(done.status, done.result_message).toBe('done');
    expect(done).toMatchObject({ approved_by: p.users.approver, approval_notes: 'welcome' });

    const groups = (await sshExec(sshd, `id -nG ${username}`)).stdout.trim().split(/\s+/);
    expect(groups).toEqual(expect.arrayContaining(['users', 'sudo']));

    const notMine = await p.api('POST', `/api/v1/account-openings/${id}/credentials/reveal`, { token: p.tokens.admin });
    expect(notMine.status).toBe(403);
    const rev = await p.api('POST', `/api/v1/account-openings/${id}/credentials/reveal`, { token: p.tokens.requester });
    expect(rev.status, JSON.stringify(rev.body)).toBe(200);
    revealed = rev.body.data.password;
    expect(revealed).toMatch(/^.{20}$/);
    expect(await loginWithPassword(sshd, username, revealed, 'id -un')).toBe(username);
    const second = await p.api('POST', `/api/v1/account-openings/${id}/credentials/reveal`, { token: p.tokens.requester });
    expect([second.status, second.body.code]).toEqual([409, 40901]);

    const account = await p.db.em.fork().findOneOrFail(HostAccountSchema, { host: hostId, username });
    expect(account).toMatchObject({ origin: 'platform-created', status: 'active', secretCiphertext: null });
    const actions = (await p.db.em.fork().find(AuditEventSchema, { targetId: id })).map((a) => `${a.action}:${a.result}`);
    expect(actions).toEqual(expect.arrayContaining(['account-opening.submit:success', 'account-opening.approve:success', 'account-opening.reveal:success', 'account-opening.reveal:failure']));
    firstWorkflowId = res.body.data.workflow_id;
  });

  it("the run's activities carry summaries for the Web UI timeline, encrypted like every payload", async () => {
    const history = await p.client.workflow.getHandle(firstWorkflowId).fetchHistory();
    const raw = JSON.stringify(history);
    const scheduled = history.events!.filter((e) => e.activityTaskScheduledEventAttributes);
    const summaries: Record<string, string> = {};
    const dc = p.client.options.loadedDataConverter;
    for (const e of scheduled) {
      const type = e.activityTaskScheduledEventAttributes!.activityType!.name!;
      const payload = e.userMetadata?.summary;
      if (!payload) continue;
      // Ciphertext in storage: the codec's encoding, not json/plain.
      expect(Buffer.from(payload.metadata!.encoding!).toString()).toBe('binary/encrypted');
      let decoded = [payload as Payload];
      for (const codec of [...dc.payloadCodecs].reverse()) decoded = await codec.decode(decoded);
      summaries[type] = dc.payloadConverter.fromPayload<string>(decoded[0]!);
    }
    const host = 'acct-host';
    expect(summaries).toMatchObject({ provisionAccount: `create account ${firstUsername} on ${host}`, verifyAccountLogin: `verify login of ${firstUsername} on ${host}` });
    // The plaintext is nowhere in the stored history (base64 of the JSON included).
    for (const s of Object.values(summaries)) {
      expect(raw).not.toContain(s);
      expect(raw).not.toContain(Buffer.from(JSON.stringify(s)).toString('base64'));
    }
  });

  it('privileged groups and is_admin follow one rule: denied unless the host/template policy allows them, and then only for staff unless it says anyone; customer users only on their allocated hosts', async () => {
    const mk = async (name: string, extra: Record<string, unknown> = {}) => {
      // Never contacted: every request below is decided at submit. (A port of its own, so no clash with acct-host;
      // several of these hosts share it, hence allow_duplicate_address.)
      const r = await p.api('POST', '/api/v1/hosts', { body: { name, address: '127.0.0.1', port: 1, allow_duplicate_address: true, username: 'ops', password: 'x-not-used', ...extra } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      await p.api('POST', `/api/v1/hosts/${r.body.data.id}/status`, { body: { status: 'onboarding' } });
      await p.api('POST', `/api/v1/hosts/${r.body.data.id}/status`, { body: { status: 'online' } });
      return r.body.data.id as string;
    };
    const plain = await mk(`plain-${randomBytes(2).toString('hex')}`);
    const ask = (host: string, body: Record<string, unknown>, token = p.tokens.requester) =>
      p.api('POST', '/api/v1/account-openings', { token, body: { host_id: host, username: uname('pv'), full_name: 'Priv Test', contact_email: 'req@example.com', ...body } });
    for (const g of ['sudo', 'root', 'wheel', 'adm', 'disk', 'docker', 'lxd']) {
      const r = await ask(plain, { groups: ['users', g], is_admin: false });
      expect([r.status, r.body.code, r.body.errors?.[0]?.field], `${g}: ${JSON.stringify(r.body)}`).toEqual([400, 40001, 'groups.1']);
    }
    const admin = await ask(plain, { is_admin: true });
    expect([admin.status, admin.body.errors?.[0]?.field]).toEqual([400, 'is_admin']);
    // Even staff cannot ask for what the host does not allow.
    expect((await ask(plain, { groups: ['docker'] }, p.tokens.admin)).status).toBe(400);

    const dockerHost = await mk(`docker-${randomBytes(2).toString('hex')}`, { account_policy: { allow_groups: ['docker'] } });
    const byRequester = await ask(dockerHost, { groups: ['docker'] });
    expect([byRequester.status, byRequester.body.code]).toEqual([403, 40301]);
    expect(byRequester.body.message).toMatch(/admin or operator/);
    expect((await ask(dockerHost, { groups: ['sudo'] }, p.tokens.operator)).status).toBe(400);
    const byOperator = await ask(dockerHost, { groups: ['docker'] }, p.tokens.operator);
    expect(byOperator.status, JSON.stringify(byOperator.body)).toBe(201);
    expect((await p.api('POST', `/api/v1/account-openings/${byOperator.body.data.id}/withdraw`, { token: p.tokens.operator, body: {} })).status).toBe(200);

    // A customer user: only on a host allocated to their customer.
    const c = await p.api('POST', '/api/v1/customers', { body: { name: 'Tenant', code: `t${randomBytes(3).toString('hex')}`, contact_email: 'ops@tenant.test' } });
    const cu = await p.api('POST', `/api/v1/customers/${c.body.data.id}/users`, { body: { username: `tu${randomBytes(3).toString('hex')}`, email: 'tu@tenant.test' } });
    // Customer users get an initial password (no API token): an API key stands in for their login here.
    const cuToken = await p.tokenFor(cu.body.data.id);
    const other = await ask(plain, {}, cuToken);
    // A host not allocated to their customer is outside their row scope: it "does not exist" (no enumeration).
    expect([other.status, other.body.code, other.body.errors?.[0]]).toEqual([400, 40001, { field: 'host_id', message: 'host does not exist' }]);
    const rented = await mk(`rented-${randomBytes(2).toString('hex')}`);
    const em = p.db.em.fork();
    await em.getConnection().execute(
      `insert into allocations (id, host_id, customer_id, customer_user_id, os_username, starts_at, ends_at, buffer_seconds, grace_seconds, status, created_by, created_at, updated_at)
       values (gen_random_uuid(), ?, ?, ?, 'tu', now(), now() + interval '1 day', 0, 0, 'active', 'test', now(), now())`,
      [rented, c.body.data.id, cu.body.data.id],
    );
    const mine = await ask(rented, {}, cuToken);
    expect(mine.status, JSON.stringify(mine.body)).toBe(201);
    expect((await ask(rented, { groups: ['sudo'] }, cuToken)).status).toBe(400);
  });

  it('validates fields against the OS rules and never executes payloads', async () => {
    for (const bad of ["'; rm -rf / #", '$(reboot)', '`reboot`', 'a\nreboot', 'Root']) {
      const r = await submit({ username: bad });
      expect([r.status, r.body.errors?.[0]?.field], bad).toEqual([400, 'username']);
    }
    const r = await submit({ username: uname('gx'), groups: ['$(reboot)'] });
    expect(r.body.errors?.[0]?.field).toBe('groups.0');
    const nl = await submit({ username: uname('nx'), full_name: 'Eve\nreboot' });
    expect(nl.body.errors?.[0]?.field).toBe('full_name');

    const username = uname('pl');
    const marker = `/tmp/hostflow-pwned-${randomBytes(4).toString('hex')}`;
    const payload = `$(touch ${marker}) \`touch ${marker}\``;
    const res = await submit({ username, full_name: payload });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const waited = await p.api('POST', `/api/v1/account-openings/${res.body.data.id}/approve?wait=true&wait_seconds=60`, { token: p.tokens.approver });
    expect(waited.body.data.status).toBe('done');
    expect((await waitFor(res.body.data.id, ['done', 'failed'])).status).toBe('done');
    expect((await sshExec(sshd, `getent passwd ${username} | cut -d: -f5`)).stdout.trim()).toBe(payload);
    expect((await sshExec(sshd, `test -e ${marker}; echo $?`)).stdout.trim()).toBe('1');
  });

  it('reject needs a reason and the approver role; withdraw is the applicant’s', async () => {
    const a = await submit({ username: uname('rj') });
    const noReason = await p.api('POST', `/api/v1/account-openings/${a.body.data.id}/reject`, { token: p.tokens.approver, body: {} });
    expect([noReason.status, noReason.body.errors?.[0]?.field]).toEqual([400, 'reason']);
    const rej = await p.api('POST', `/api/v1/account-openings/${a.body.data.id}/reject`, { token: p.tokens.approver, body: { reason: 'not needed' } });
    expect(rej.status).toBe(200);
    expect(await waitFor(a.body.data.id, ['rejected'])).toMatchObject({ reject_reason: 'not needed' });

    const b = await submit({ username: uname('wd') });
    const byOther = await p.api('POST', `/api/v1/account-openings/${b.body.data.id}/withdraw`, { token: p.tokens.approver });
    expect(byOther.status).toBe(403);
    expect((await p.api('POST', `/api/v1/account-openings/${b.body.data.id}/withdraw`, { token: p.tokens.requester })).status).toBe(200);
    await waitFor(b.body.data.id, ['withdrawn']);
    // The (host, username) is free again once a request is closed.
    expect((await submit({ username: created.at(-1)! })).status).toBe(201);
  });

  it('an approver cannot approve their own request (the Update validator refuses; nothing enters history)', async () => {
    const em = p.db.em.fork();
    const selfApprover = em.create(UserSchema, { username: `appr-${randomBytes(3).toString('hex')}`, roles: ['approver', 'requester'] });
    await em.flush();
    const { key: token } = await createApiKey(p.db.em, { userId: selfApprover.id, name: 'test' });
    const r = await submit({ username: uname('sa') }, token);
    const self = await p.api('POST', `/api/v1/account-openings/${r.body.data.id}/approve`, { token });
    expect([self.status, self.body.code]).toEqual([403, 40301]);
    const hist = await p.client.workflow.getHandle(r.body.data.workflow_id).fetchHistory();
    expect(hist.events!.some((e) => e.workflowExecutionUpdateAcceptedEventAttributes)).toBe(false);
  });

  it('a failed request rolls back its half-created account; re-process is idempotent', async () => {
    const username = uname('fx');
    const group = `hfg${randomBytes(3).toString('hex')}`;
    const r = await submit({ username, groups: [group] });
    // ?wait=true holds the answer until the outcome is known.
    const waited = await p.api('POST', `/api/v1/account-openings/${r.body.data.id}/approve?wait=true`, { token: p.tokens.approver });
    expect([waited.status, waited.body.data.status, waited.body.data.failure_type]).toEqual([200, 'failed', 'MissingGroup']);
    const failed = await waitFor(r.body.data.id, ['failed', 'done']);
    expect(failed).toMatchObject({ status: 'failed', failure_type: 'MissingGroup' });
    expect(failed.result_message).toContain(group);
    expect((await sshExec(sshd, `getent passwd ${username} >/dev/null; echo $?`)).stdout.trim()).toBe('2');

    await sshExec(sshd, `sudo -n groupadd ${group}`);
    try {
      const again = await p.api('POST', `/api/v1/account-openings/${r.body.data.id}/process`, { token: p.tokens.operator });
      expect(again.status, JSON.stringify(again.body)).toBe(202);
      expect((await waitFor(r.body.data.id, ['done', 'failed'])).status).toBe('done');
      const twice = await p.api('POST', `/api/v1/account-openings/${r.body.data.id}/process`, { token: p.tokens.operator });
      expect(twice.status).toBe(409);
      expect(await p.db.em.fork().count(HostAccountSchema, { host: hostId, username })).toBe(1);
      expect((await sshExec(sshd, `getent passwd ${username} | wc -l`)).stdout.trim()).toBe('1');
    } finally {
      await sshExec(sshd, `sudo -n groupdel ${group}`).catch(() => undefined);
    }
  });

  it('refuses at submit a user that exists on the host but was not created by the platform (and the management login)', async () => {
    const username = uname('px');
    await sshExec(sshd, `sudo -n useradd -M -p '*' ${username}`);
    const r = await submit({ username });
    expect([r.status, r.body.code, r.body.errors?.[0]?.field], JSON.stringify(r.body)).toEqual([400, 40001, 'username']);
    expect(r.body.errors![0]!.message).toContain('already exists on acct-host and was not created by the platform');
    const mgmt = await submit({ username: sshd.adminUser });
    expect([mgmt.status, mgmt.body.errors?.[0]?.field]).toEqual([400, 'username']);
    expect(mgmt.body.errors![0]!.message).toContain('management login');
    const managed = await submit({ username: firstUsername });
    expect([managed.status, managed.body.errors?.[0]?.message]).toEqual([400, `"${firstUsername}" is already an account on acct-host, managed by the platform`]);
    expect(await p.db.em.fork().count(AccountOpeningRequestSchema, { username: { $in: [username, sshd.adminUser] } })).toBe(0);
  });

  it('still checks at execution: a user that appears on the host after submit fails the request without touching it', async () => {
    const username = uname('py');
    const r = await submit({ username });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    await sshExec(sshd, `sudo -n useradd -M -p '*' ${username}`);
    await p.api('POST', `/api/v1/account-openings/${r.body.data.id}/approve`, { token: p.tokens.approver });
    const f = await waitFor(r.body.data.id, ['failed', 'done']);
    expect(f).toMatchObject({ status: 'failed', failure_type: 'AccountExistsNotManaged' });
    expect((await sshExec(sshd, `getent passwd ${username} >/dev/null; echo $?`)).stdout.trim()).toBe('0');
  });

  it('refuses at submit what the command builder would refuse (full_name "a:b:c" → 40001 naming full_name)', async () => {
    for (const full_name of ['a:b:c', 'Doe, Jane', ' padded']) {
      const r = await submit({ username: uname('fn'), full_name });
      expect([r.status, r.body.code, r.body.errors?.[0]?.field], full_name).toEqual([400, 40001, 'full_name']);
    }
    const long = await submit({ username: 'a'.repeat(33) });
    expect([long.status, long.body.errors?.[0]?.field]).toEqual([400, 'username']);
    expect(long.body.errors![0]!.message).toMatch(/32/);
  });

  it('a value the builder refuses at execution fails at once: InvalidInput is not retried', async () => {
    const r = await submit({ username: uname('iv') });
    expect(r.status).toBe(201);
    // Bypass the API (as a row written before this validation existed would): execution must refuse it once.
    await p.db.em.fork().nativeUpdate(AccountOpeningRequestSchema, { id: r.body.data.id }, { fullName: 'a:b:c' });
    await p.api('POST', `/api/v1/account-openings/${r.body.data.id}/approve`, { token: p.tokens.approver });
    const f = await waitFor(r.body.data.id, ['failed', 'done']);
    expect(f).toMatchObject({ status: 'failed', failure_type: 'InvalidInput' });
    const hist = await p.client.workflow.getHandle(r.body.data.workflow_id).fetchHistory();
    const attempts = hist.events!.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'provisionAccount').length;
    const maxAttempt = Math.max(...hist.events!.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1));
    expect([attempts, maxAttempt]).toEqual([1, 1]);
  });

  it('lists, filters, counts, and manages cloud users (disable, reset, delete)', async () => {
    const list = await p.api('GET', '/api/v1/account-openings?status=done&page_size=50', { token: p.tokens.approver });
    expect(list.body.data.total).toBeGreaterThanOrEqual(2);
    const mine = await p.api('GET', '/api/v1/account-openings', { token: p.tokens.operator });
    expect(mine.status).toBe(200);
    const stats = await p.api('GET', '/api/v1/account-openings/stats', { token: p.tokens.approver });
    expect(stats.body.data.by_status.done).toBeGreaterThanOrEqual(2);
    expect(stats.body.data.by_host[0].host_id).toBe(hostId);

    const users = await p.api('GET', `/api/v1/cloud-users?host_id=${hostId}&status=active`);
    const acct = users.body.data.items.find((u: { username: string }) => u.username === firstUsername);
    expect(acct.password_available).toBe(false);
    const dis = await p.api('POST', `/api/v1/cloud-users/${acct.id}/disable`);
    expect(dis.body.data.status, JSON.stringify(dis.body)).toBe('disabled');
    expect(await loginWithPassword(sshd, acct.username, revealed, 'true').then(() => 'in', () => 'refused')).toBe('refused');
    expect((await p.api('POST', `/api/v1/cloud-users/${acct.id}/enable`)).body.data.status).toBe('active');
    expect((await p.api('POST', `/api/v1/cloud-users/${acct.id}/reset-password`)).status).toBe(200);
    const reloaded = await p.db.em.fork().findOneOrFail(HostAccountSchema, { id: acct.id });
    expect(reloaded.secretCiphertext).toBeTruthy();
    expect(await loginWithPassword(sshd, acct.username, revealed, 'true').then(() => 'in', () => 'refused')).toBe('refused');
    const del = await p.api('DELETE', `/api/v1/cloud-users/${acct.id}`);
    expect(del.body.data.status).toBe('deleted');
    expect((await sshExec(sshd, `getent passwd ${acct.username} >/dev/null; echo $?`)).stdout.trim()).toBe('2');
    const batch = await p.api('POST', '/api/v1/cloud-users/batch/disable', { body: { ids: [acct.id, '00000000-0000-4000-8000-000000000000'] } });
    expect(batch.body.data).toMatchObject({ succeeded: 0, failed: 2 });
  });

  it('no password or private key entered any workflow history', async () => {
    const n = await assertNoSecretsInHistory(p.client, p.taskQueue, [revealed, sshd.adminPrivateKey.split('\n')[1]!, sshd.adminPassword]);
    expect(n).toBeGreaterThan(5);
    if (process.env.CAPTURE_HISTORIES) {
      await captureHistories(p.client, p.taskQueue, 'test/replay/histories');
      // The first test's run: decided by an approval (patch approval-fast-path).
      await saveHistory(p.client, 'test/replay/histories/accountOpening-approval-fast-path.json', firstWorkflowId);
    }
  });
});
