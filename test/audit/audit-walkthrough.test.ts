// The audit trail of a real walkthrough (real Temporal worker, real sshd host): account opening
// (submit → approve → account created → reveal) and an allocation (customer, user, key → active).
// Expected rows with before/after, remote changes with builder/exit code/duration, and no secret
// anywhere in the trail; the chain verifies at the end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { utils as ssh2Utils } from 'ssh2';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startSshd, sshExec, type SshTestHost } from '../helpers/sshd.js';
import { AuditEventSchema } from '../../db/entities/index.js';
import { verifyAuditChain } from '../../db/audit/verify.js';

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('audit trail of an account opening and an allocation (real Temporal, real sshd)', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  let hostId = '';
  const osUsers: string[] = [];
  const secrets: string[] = [];

  beforeAll(async () => {
    [p, sshd] = await Promise.all([startTestPlatform(), startSshd()]);
    secrets.push(sshd.adminPrivateKey, ...Object.values(p.tokens));
    const h = await p.api('POST', '/api/v1/hosts', { body: { name: 'audit-host', address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
    expect(h.status, JSON.stringify(h.body)).toBe(201);
    hostId = h.body.data.id;
    for (const status of ['onboarding', 'online']) expect((await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status } })).status).toBe(200);
  });
  afterAll(async () => {
    for (const u of osUsers) await sshExec(sshd, `sudo -n pkill -KILL -u ${u}; sudo -n userdel -r -f ${u}; sudo -n rm -f /var/lib/hostflow/accounts/${u}`).catch(() => undefined);
    await p?.close();
    await sshd?.stop();
  });

  it('produces the expected rows with diffs, remote changes per builder, no secret, and a chain that verifies', { timeout: 150_000 }, async () => {
    // Account opening.
    const username = `au${randomBytes(3).toString('hex')}`;
    osUsers.push(username);
    const sub = await p.api('POST', '/api/v1/account-openings', { token: p.tokens.requester, body: { host_id: hostId, username, full_name: 'Audit User', contact_email: 'a@example.com', groups: ['users'] } });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const reqId = sub.body.data.id as string;
    expect((await p.api('POST', `/api/v1/account-openings/${reqId}/approve`, { token: p.tokens.approver, body: { notes: 'ok' } })).status).toBe(200);
    await until('account opened', async () => {
      const s = (await p.api('GET', `/api/v1/account-openings/${reqId}`)).body.data.status;
      if (s === 'failed') throw new Error('account opening failed');
      return s === 'done';
    });
    const rev = await p.api('POST', `/api/v1/account-openings/${reqId}/credentials/reveal`, { token: p.tokens.requester });
    expect(rev.status).toBe(200);
    secrets.push(rev.body.data.password);

    // Allocation.
    const c = await p.api('POST', '/api/v1/customers', { body: { name: 'Audit Co', code: `a${randomBytes(3).toString('hex')}`, contact_email: 'ops@audit.test' } });
    const cuName = `cu${randomBytes(3).toString('hex')}`;
    osUsers.push(cuName);
    const cu = await p.api('POST', `/api/v1/customers/${c.body.data.id}/users`, { body: { username: cuName, email: `${cuName}@audit.test` } });
    expect(cu.status, JSON.stringify(cu.body)).toBe(201);
    if (cu.body.data.initial_password) secrets.push(cu.body.data.initial_password);
    const cuToken = await p.tokenFor(cu.body.data.id);
    secrets.push(cuToken);
    const key = ssh2Utils.generateKeyPairSync('ed25519', { comment: 'audit@laptop' });
    secrets.push(key.private);
    expect((await p.api('POST', '/api/v1/ssh-keys', { token: cuToken, body: { public_key: key.public } })).status).toBe(201);
    const alloc = await p.api('POST', '/api/v1/allocations', { body: { host_id: hostId, customer_id: c.body.data.id, customer_user_id: cu.body.data.id, ends_at: new Date(Date.now() + 30 * 86_400_000).toISOString() } });
    expect(alloc.status, JSON.stringify(alloc.body)).toBe(201);
    const allocId = alloc.body.data.id as string;
    await until('allocation active', async () => {
      const s = (await p.api('GET', `/api/v1/allocations/${allocId}`)).body.data.status;
      if (s === 'failed') throw new Error('allocation failed');
      return s === 'active';
    }, 90_000);
    const newEnd = new Date(Date.now() + 40 * 86_400_000).toISOString();
    expect((await p.api('POST', `/api/v1/allocations/${allocId}/extend`, { body: { ends_at: newEnd } })).status).toBe(200);

    const rows = await p.db.em.fork().find(AuditEventSchema, {}, { orderBy: { seq: 'asc' } });
    const byAction = (a: string) => rows.filter((r) => r.action === a);

    // Data changes carry before/after.
    const statusRows = byAction('host.status').filter((r) => r.targetId === hostId);
    expect(statusRows.map((r) => [r.before, r.after])).toEqual([
      [{ status: 'pending' }, { status: 'onboarding' }],
      [{ status: 'onboarding' }, { status: 'online' }],
    ]);
    expect(byAction('account-opening.approve')[0]).toMatchObject({ actor: 'approver', actorType: 'api_key', before: { status: 'pending' }, after: { status: 'approved' } });
    expect(byAction('allocation.extend')[0]!.after).toEqual({ ends_at: newEnd });
    expect(byAction('allocation.extend')[0]!.before).toHaveProperty('ends_at');
    expect(byAction('host.create')[0]!.after).toMatchObject({ address: sshd.host, port: sshd.port });
    // The sensitive read.
    expect(byAction('account-opening.reveal')[0]).toMatchObject({ actor: 'requester', result: 'success' });
    // Every mutating request, by route template.
    const routes = byAction('http.post').map((r) => r.targetId);
    expect(routes).toEqual(expect.arrayContaining(['POST /api/v1/hosts', 'POST /api/v1/hosts/:id/status', 'POST /api/v1/account-openings', 'POST /api/v1/account-openings/:id/approve', 'POST /api/v1/account-openings/:id/credentials/reveal', 'POST /api/v1/allocations', 'POST /api/v1/allocations/:id/extend', 'POST /api/v1/ssh-keys']));

    // Remote changes, from the workflows that made them.
    const remote = byAction('remote.exec');
    const opening = remote.filter((r) => r.actorId === `account-opening/${reqId}`);
    expect(opening.map((r) => r.detail!.builder)).toEqual(expect.arrayContaining(['hostflow-create-user', 'hostflow-set-password']));
    for (const r of opening) {
      expect(r).toMatchObject({ actorType: 'system', actor: `system:account-opening/${reqId}`, targetType: 'host', targetId: hostId });
      expect(r.detail).toMatchObject({ exit_code: expect.any(Number), duration_ms: expect.any(Number), activity: expect.any(String), command_sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    }
    expect(remote.filter((r) => r.actorId?.startsWith(`allocation/${allocId}`)).map((r) => r.detail!.builder)).toEqual(expect.arrayContaining(['hostflow-add-authorized-keys']));
    // Read-only probes are not recorded.
    expect(remote.some((r) => ['hostflow-user-exists', 'facts', 'noop'].includes(r.detail!.builder as string))).toBe(false);

    // No secret anywhere in the trail (also not via the export).
    const exported = await (await fetch(`${p.baseUrl}/api/v1/audit-events/export?format=json`, { headers: { authorization: `Bearer ${p.tokens.admin}` } })).text();
    const trail = JSON.stringify(rows) + exported;
    for (const s of secrets) {
      expect(s.length).toBeGreaterThan(8);
      expect(trail.includes(s), `a secret (${s.slice(0, 4)}…) is in the audit trail`).toBe(false);
    }
    const v = await verifyAuditChain(p.db.em);
    expect(v, JSON.stringify(v.problem)).toMatchObject({ ok: true });
  });
});
