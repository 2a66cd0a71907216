// The previews the console shows before anything happens, against the real platform (real
// Temporal worker, real sshd host): the host import checked row by row without writing, and an
// account opening's plan — the commands approval will run, from the same builders — compared with
// what the workflow then ran (the audit's remote.exec command_sha256, in order).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startSshd, sshExec, type SshTestHost } from '../helpers/sshd.js';
import { AuditEventSchema, HostSchema } from '../../db/entities/index.js';

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('console previews: host import and account-opening plan', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  let hostId = '';
  const osUsers: string[] = [];

  beforeAll(async () => {
    [p, sshd] = await Promise.all([startTestPlatform(), startSshd()]);
    const h = await p.api('POST', '/api/v1/hosts', { body: { name: 'plan-host', address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
    expect(h.status, JSON.stringify(h.body)).toBe(201);
    hostId = h.body.data.id;
    for (const status of ['onboarding', 'online']) expect((await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status } })).status).toBe(200);
    expect((await p.api('POST', '/api/v1/host-groups', { body: { name: 'gpu-a' } })).status).toBe(201);
  }, 120_000);
  afterAll(async () => {
    for (const u of osUsers) await sshExec(sshd, `sudo -n pkill -KILL -u ${u}; sudo -n userdel -r -f ${u}; sudo -n rm -f /var/lib/hostflow/accounts/${u}`).catch(() => undefined);
    await p?.close();
    await sshd?.stop();
  });

  it('import preview: every row checked (schema, duplicates in the file, taken slug, unknown group, machine already registered) with errors per row and field; nothing written; the valid rows then import', async () => {
    const before = await p.db.em.fork().count(HostSchema, {});
    const rows = [
      { name: 'gpu 01', address: '10.20.0.1', port: 22, username: 'root', password: 'pw-1', group: 'gpu-a', tags: ['a100'] },
      { name: 'gpu 02', address: '10.20.0.2', port: 70000, username: 'root', password: 'pw-2' },
      { name: 'gpu 03', address: '10.20.0.3', username: 'root' },
      { name: 'gpu 01', address: '10.20.0.4', username: 'root', password: 'pw-4' },
      { name: 'gpu 05', address: '10.20.0.5', username: 'root', password: 'pw-5', group: 'no-such-group' },
      { name: 'again', slug: 'plan-host', address: sshd.host, port: sshd.port, username: 'root', password: 'pw-6' },
      { name: 'gpu 07', address: '10.20.0.1', port: 22, username: 'root', password: 'pw-7' },
    ];
    const res = await p.api('POST', '/api/v1/hosts/import/preview', { token: p.tokens.operator, body: { hosts: rows } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const d = res.body.data;
    expect({ total: d.total, valid: d.valid, invalid: d.invalid }).toEqual({ total: 7, valid: 1, invalid: 6 });
    const fields = (i: number) => d.rows[i].errors.map((e: { field: string }) => e.field).sort();
    expect(d.rows[0]).toMatchObject({ row: 0, name: 'gpu 01', slug: 'gpu-01', address: '10.20.0.1', port: 22, os: 'linux', group: 'gpu-a', errors: [] });
    expect(fields(1)).toEqual(['hosts.1.port']);
    expect(fields(2)).toEqual(['hosts.2.password']);
    expect(d.rows[3].errors).toEqual([{ field: 'hosts.3.slug', message: 'duplicate slug "gpu-01" (also row 0)' }]);
    expect(d.rows[4].errors).toEqual([{ field: 'hosts.4.group', message: 'host group "no-such-group" does not exist' }]);
    expect(fields(5)).toEqual(['hosts.5.address', 'hosts.5.slug']);
    expect(d.rows[5].errors.find((e: { field: string }) => e.field === 'hosts.5.address').message).toMatch(/already registered as host "plan-host"/);
    expect(d.rows[6].errors).toEqual([{ field: 'hosts.6.address', message: '10.20.0.1:22 is also row 0' }]);
    // secrets are validated, never echoed
    expect(JSON.stringify(d)).not.toMatch(/pw-\d/);
    expect(await p.db.em.fork().count(HostSchema, {})).toBe(before);

    // the same file is refused by the import (all or nothing), and the rows the preview passed import
    expect((await p.api('POST', '/api/v1/hosts/import', { token: p.tokens.operator, body: { hosts: rows } })).status).toBe(400);
    expect(await p.db.em.fork().count(HostSchema, {})).toBe(before);
    const ok = await p.api('POST', '/api/v1/hosts/import', { token: p.tokens.operator, body: { hosts: [rows[0]] } });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    expect(ok.body.data.imported).toBe(1);

    // CSV, as the import takes it; the row just imported is now taken
    const csv = 'name,address,port,username,password,tags\ngpu 01,10.20.0.1,22,root,pw-1,a100;x\ngpu 08,10.20.0.8,2222,root,pw-8,\n';
    const c = await fetch(`${p.baseUrl}/api/v1/hosts/import/preview`, { method: 'POST', headers: { 'content-type': 'text/csv', authorization: `Bearer ${p.tokens.operator}` }, body: csv });
    expect(c.status).toBe(200);
    const cd = ((await c.json()) as { data: typeof d }).data;
    expect(cd.rows.map((r: { errors: Array<{ field: string }> }) => r.errors.map((e) => e.field).sort())).toEqual([['hosts.0.address', 'hosts.0.slug'], []]);
    expect(cd.rows[1]).toMatchObject({ slug: 'gpu-08', port: 2222 });

    // a requester may not preview imports
    expect((await p.api('POST', '/api/v1/hosts/import/preview', { token: p.tokens.requester, body: { hosts: rows } })).status).toBe(403);
  });

  it('plan preview: the commands approval runs, from the same builders, password as a placeholder — equal to what the workflow executed (audit command_sha256, in order)', { timeout: 150_000 }, async () => {
    const username = `pl${randomBytes(3).toString('hex')}`;
    osUsers.push(username);
    const sub = await p.api('POST', '/api/v1/account-openings', { token: p.tokens.requester, body: { host_id: hostId, username, full_name: 'Plan User', contact_email: 'p@example.com', groups: ['users'] } });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const reqId = sub.body.data.id as string;

    const planRes = await p.api('GET', `/api/v1/account-openings/${reqId}/plan`, { token: p.tokens.approver });
    expect(planRes.status, JSON.stringify(planRes.body)).toBe(200);
    const plan = planRes.body.data;
    expect(plan).toMatchObject({ request_id: reqId, status: 'pending', username, groups: ['users'], host: { id: hostId, slug: 'plan-host', os: 'linux' } });
    expect(plan.commands.map((c: { step: string; builder: string }) => `${c.step}:${c.builder}`)).toEqual([
      'check-existing:hostflow-user-exists', 'create:hostflow-create-user', 'create:hostflow-set-password', 'groups:hostflow-add-to-groups',
    ]);
    const pw = plan.commands.find((c: { builder: string }) => c.builder === 'hostflow-set-password');
    expect(pw.stdin).toBe(`${username}:<generated password, 20 chars>\n`);
    expect(plan.verify).toContain(`as ${username}`);
    // the requester sees the plan of their own request too; the plan changes nothing
    expect((await p.api('GET', `/api/v1/account-openings/${reqId}/plan`, { token: p.tokens.requester })).status).toBe(200);
    expect((await sshExec(sshd, `id -u ${username} >/dev/null 2>&1 && echo present || echo absent`)).stdout.trim()).toBe('absent');

    expect((await p.api('POST', `/api/v1/account-openings/${reqId}/approve`, { token: p.tokens.approver, body: { notes: 'plan read' } })).status).toBe(200);
    await until('account opened', async () => {
      const s = (await p.api('GET', `/api/v1/account-openings/${reqId}`)).body.data.status;
      if (s === 'failed') throw new Error('account opening failed');
      return s === 'done';
    });
    const executed = (await p.db.em.fork().find(AuditEventSchema, { action: 'remote.exec', actorId: `account-opening/${reqId}` }, { orderBy: { seq: 'asc' } }))
      .map((r) => ({ builder: r.detail!.builder, sha256: r.detail!.command_sha256 }));
    const planned = plan.commands.filter((c: { change: boolean }) => c.change).map((c: { builder: string; sha256: string }) => ({ builder: c.builder, sha256: c.sha256 }));
    expect(planned.length).toBe(3);
    expect(executed).toEqual(planned);
    // the placeholder stood for the real password
    const rev = await p.api('POST', `/api/v1/account-openings/${reqId}/credentials/reveal`, { token: p.tokens.requester });
    expect(rev.status).toBe(200);
    expect(rev.body.data.password).toHaveLength(20);
    expect(JSON.stringify(plan)).not.toContain(rev.body.data.password);
  });
});
