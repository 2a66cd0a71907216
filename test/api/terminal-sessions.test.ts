// The web terminal's session rules against a real sshd: SFTP upload/download with its size limit
// (audited transfers), reconnect within the grace period (same row, same recording), the
// per-user limit, the idle timeout and the maximum duration — with short limits so they trip here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { sshExec, startSshd, type SshTestHost } from '../helpers/sshd.js';
import { TermClient } from '../helpers/term-client.js';
import { AllocationSchema, AuditEventSchema, CustomerSchema, HostSchema, RemoteAccessSchema, RemoteSessionSchema, UserSchema } from '../../db/entities/index.js';
import { ensureTerminalKey } from '../../db/terminal-keys.js';

const LIMITS = { idleTimeoutMs: 2500, maxDurationMs: 5000, maxPerUser: 2, reconnectGraceMs: 2000, sftpMaxBytes: 1024 * 1024 };

describe('web terminal session rules: SFTP, reconnect grace, per-user limit, idle timeout, max duration (real sshd)', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  const tenant = `ws${randomBytes(3).toString('hex')}`;
  const ids = { alloc: '', host: '', member: '', other: '' };
  const tok = { member: '', other: '', peer: '' };

  beforeAll(async () => {
    p = await startTestPlatform({ worker: false, terminal: LIMITS });
    const em = p.db.em.fork();
    const A = em.create(CustomerSchema, { name: 'Rules A', code: `ra${randomBytes(3).toString('hex')}` });
    const B = em.create(CustomerSchema, { name: 'Rules B', code: `rb${randomBytes(3).toString('hex')}` });
    const member = em.create(UserSchema, { username: `m-${tenant}`, customerId: A.id, roles: ['customer_member'] });
    const peer = em.create(UserSchema, { username: `p-${tenant}`, customerId: A.id, roles: ['customer_owner'] });
    const other = em.create(UserSchema, { username: `o-${tenant}`, customerId: B.id, roles: ['customer_member'] });
    const host = em.create(HostSchema, { slug: `rules-${tenant}`, name: 'rules', address: '127.0.0.1', port: 22, os: 'linux', username: 'admin', status: 'online' });
    const a = em.create(AllocationSchema, { host, customer: A, customerUser: member, osUsername: tenant, startsAt: new Date(), endsAt: new Date(Date.now() + 86_400_000), bufferSeconds: 0, graceSeconds: 0, status: 'active', createdBy: 'test' });
    await em.flush();
    Object.assign(ids, { alloc: a.id, host: host.id, member: member.id, other: other.id });
    const pub = await ensureTerminalKey(p.db.em, p.vault, a.id);
    sshd = await startSshd({ users: [{ name: tenant, authorizedKeys: [pub] }] });
    await p.db.em.fork().nativeUpdate(HostSchema, { id: host.id }, { port: sshd.port, hostKeyFingerprint: sshd.hostKeyFingerprintSha256 });
    tok.member = await p.tokenFor(member.id);
    tok.other = await p.tokenFor(other.id);
    tok.peer = await p.tokenFor(peer.id);
  }, 120_000);

  afterAll(async () => {
    await sshd?.stop();
    await p?.close();
  }, 60_000);

  const ticket = async (token: string) => {
    const t = await p.api('POST', `/api/v1/allocations/${ids.alloc}/terminal/ticket`, { token });
    expect(t.status, JSON.stringify(t.body)).toBe(200);
    return t.body.data.ticket as string;
  };
  const upload = (path: string, body: Buffer, token = tok.member) =>
    fetch(`${p.baseUrl}/api/v1/allocations/${ids.alloc}/files?path=${encodeURIComponent(path)}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body });
  const download = (path: string, token = tok.member) => fetch(`${p.baseUrl}/api/v1/allocations/${ids.alloc}/files?path=${encodeURIComponent(path)}`, { headers: { authorization: `Bearer ${token}` } });
  const waitEnded = async (id: string, ms = 8000) => {
    const until = Date.now() + ms;
    for (;;) {
      const row = await p.db.em.fork().findOneOrFail(RemoteSessionSchema, { id });
      if (row.endedAt || Date.now() > until) return row;
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it('SFTP: upload lands as the tenant (atomically), download returns the bytes, both audited; over the limit → 40001 and nothing left behind; another company → 404', { timeout: 60_000 }, async () => {
    const data = randomBytes(200 * 1024);
    const up = await upload('upload-test.bin', data);
    const upBody = (await up.json()) as { code: number; data: { path: string; bytes: number } };
    expect(up.status, JSON.stringify(upBody)).toBe(201);
    expect(upBody.data).toEqual({ path: 'upload-test.bin', bytes: data.length });
    // On the host: in the tenant's home, owned by the tenant, same content.
    const onHost = (await sshExec(sshd, `sudo -n stat -c '%U %s' ~${tenant}/upload-test.bin && sudo -n sha256sum ~${tenant}/upload-test.bin`)).stdout;
    expect(onHost).toContain(`${tenant} ${data.length}`);
    const { createHash } = await import('node:crypto');
    expect(onHost).toContain(createHash('sha256').update(data).digest('hex'));

    const down = await download('upload-test.bin');
    expect(down.status).toBe(200);
    expect(down.headers.get('content-disposition')).toContain('upload-test.bin');
    expect(Buffer.from(await down.arrayBuffer()).equals(data)).toBe(true);

    // Over the limit: refused with the field named, whether the length is declared or streamed.
    const big = randomBytes(LIMITS.sftpMaxBytes + 1);
    const tooBig = await upload('too-big.bin', big);
    const tooBigBody = (await tooBig.json()) as { code: number; errors: Array<{ field: string }> };
    expect(tooBig.status).toBe(400);
    expect(tooBigBody.code).toBe(40001);
    expect(tooBigBody.errors[0]!.field).toBe('body');
    async function* chunks() {
      for (let i = 0; i < 5; i++) yield randomBytes(LIMITS.sftpMaxBytes / 4);
    }
    const streamed = await fetch(`${p.baseUrl}/api/v1/allocations/${ids.alloc}/files?path=streamed.bin`, { method: 'POST', headers: { authorization: `Bearer ${tok.member}`, 'content-type': 'application/octet-stream' }, body: ReadableStream.from(chunks()), duplex: 'half' } as RequestInit);
    expect(streamed.status).toBe(400);
    expect(((await streamed.json()) as { errors: Array<{ field: string }> }).errors[0]!.field).toBe('body');
    const left = (await sshExec(sshd, `sudo -n ls -a ~${tenant}/`)).stdout;
    expect(left).not.toMatch(/too-big|streamed|hostflow-part/);
    // A big file on the host is refused for download, naming `path`; so is a directory.
    await sshExec(sshd, `sudo -n -u ${tenant} head -c ${LIMITS.sftpMaxBytes + 10} /dev/zero > /tmp/${tenant}-big && sudo -n mv /tmp/${tenant}-big ~${tenant}/big.bin && sudo -n chown ${tenant} ~${tenant}/big.bin`);
    for (const path of ['big.bin', '.', 'no-such-file']) {
      const r = await download(path);
      const b = (await r.json()) as { code: number; errors: Array<{ field: string }> };
      expect([r.status, b.code, b.errors[0]!.field], path).toEqual([400, 40001, 'path']);
    }
    expect((await upload('x.bin', Buffer.from('x'), tok.other)).status).toBe(404);
    expect((await download('upload-test.bin', tok.other)).status).toBe(404);
    // The company's owner may move files too.
    expect((await download('upload-test.bin', tok.peer)).status).toBe(200);

    // A download's event is written once the last byte left (the client may read it first).
    let transfers: Array<{ detail: unknown; actorId?: string | null }> = [];
    for (let i = 0; i < 40 && transfers.length < 3; i++) {
      transfers = await p.db.em.fork().find(AuditEventSchema, { action: 'remote_session.transfer' });
      if (transfers.length < 3) await new Promise((r) => setTimeout(r, 50));
    }
    const d = (t: { detail: unknown }) => t.detail as { direction: string; path: string; bytes: number };
    expect(transfers.map((t) => [d(t).direction, d(t).path, d(t).bytes]).sort()).toEqual([
      ['download', 'upload-test.bin', data.length],
      ['download', 'upload-test.bin', data.length],
      ['upload', 'upload-test.bin', data.length],
    ]);
  });

  it('a dropped socket resumes within the grace period: same session row, output typed meanwhile, one recording; another user cannot take it; after the grace it ends as disconnected', { timeout: 60_000 }, async () => {
    const c = await TermClient.open(p.baseUrl, await ticket(tok.member));
    expect(c.resumeToken).toMatch(/^[\w-]{20,}$/);
    c.send('echo before-$((1+1))\n');
    await c.waitFor(/before-2/);
    // The network drops (no close message): the shell keeps running and keeps printing.
    c.send('sleep 0.5; echo while-away-$((2+2))\n');
    c.ws.terminate();
    await new Promise((r) => setTimeout(r, 1000));
    expect((await p.db.em.fork().findOneOrFail(RemoteSessionSchema, { id: c.sessionId })).endedAt).toBeFalsy();

    // Another user's ticket with the stolen token is refused.
    const thief = await TermClient.open(p.baseUrl, await ticket(tok.peer), 100, 30, { sessionId: c.sessionId, token: c.resumeToken }).catch((e: Error) => e);
    expect(String(thief)).toMatch(/closed 4404/);
    // The same user with a fresh ticket and the token: the same session, with what was printed meanwhile.
    const r = await TermClient.open(p.baseUrl, await ticket(tok.member), 100, 30, { sessionId: c.sessionId, token: c.resumeToken });
    expect(r.sessionId).toBe(c.sessionId);
    await r.waitFor(/while-away-4/);
    r.send('echo after-$((3+3))\n');
    await r.waitFor(/after-6/);

    // Dropped again and not resumed: after the grace period the row ends as disconnected.
    r.ws.terminate();
    const ended = await waitEnded(c.sessionId, LIMITS.reconnectGraceMs + 4000);
    expect(ended).toMatchObject({ status: 'disconnected', endReason: 'error' });
    // One recording with both halves.
    const rec = await fetch(`${p.baseUrl}/api/v1/remote-sessions/${c.sessionId}/recording`, { headers: { authorization: `Bearer ${p.tokens.admin}` } });
    const out = (await rec.text()).split('\n').slice(1).filter(Boolean).map((l) => JSON.parse(l) as [number, string, string]).filter((e) => e[1] === 'o').map((e) => e[2]).join('');
    expect(out).toMatch(/before-2[\s\S]*while-away-4[\s\S]*after-6/);
    const resumed = await p.db.em.fork().find(AuditEventSchema, { action: 'remote_session.resumed' });
    expect(resumed.map((a) => (a.detail as { session: string }).session)).toEqual([c.sessionId]);
  });

  it('per-user limit: a third live session is refused (4429, audited), the first two work', { timeout: 60_000 }, async () => {
    const a = await TermClient.open(p.baseUrl, await ticket(tok.member));
    const b = await TermClient.open(p.baseUrl, await ticket(tok.member));
    const third = await TermClient.open(p.baseUrl, await ticket(tok.member)).catch((e: Error) => e);
    expect(String(third)).toMatch(/closed 4429 .*session limit reached \(2 live sessions per user\)/);
    expect(await p.db.em.fork().count(AuditEventSchema, { action: 'remote_session.failed', actorId: ids.member })).toBe(1);
    b.send('echo still-$((5*5))\n');
    await b.waitFor(/still-25/);
    for (const c of [a, b]) c.ws.send(JSON.stringify({ type: 'close' }));
    for (const c of [a, b]) expect((await waitEnded(c.sessionId)).endReason).toBe('user_close');
  });

  it('idle timeout ends a quiet session; max duration ends a busy one', { timeout: 60_000 }, async () => {
    const tq = await ticket(tok.member);
    const t0 = Date.now();
    const quiet = await TermClient.open(p.baseUrl, tq);
    const busy = await TermClient.open(p.baseUrl, await ticket(tok.member));
    const keepBusy = setInterval(() => busy.send('\n'), 400);
    try {
      const q = await quiet.waitClosed(LIMITS.idleTimeoutMs + 3000);
      expect(q.reason).toBe('idle_timeout');
      expect(q.at - t0).toBeGreaterThanOrEqual(LIMITS.idleTimeoutMs - 200);
      expect(busy.closed).toBeNull();
      const b = await busy.waitClosed(LIMITS.maxDurationMs + 3000);
      expect(b.reason).toBe('max_duration');
      expect(b.at - t0).toBeGreaterThanOrEqual(LIMITS.maxDurationMs - 200);
    } finally {
      clearInterval(keepBusy);
    }
    expect(await p.db.em.fork().findOneOrFail(RemoteSessionSchema, { id: quiet.sessionId })).toMatchObject({ status: 'terminated', endReason: 'idle_timeout' });
    expect(await p.db.em.fork().findOneOrFail(RemoteSessionSchema, { id: busy.sessionId })).toMatchObject({ status: 'terminated', endReason: 'max_duration' });
  });

  it('.rdp file: the host\'s published RDP entry and the tenant\'s account, no password; 409 without an entry; another company 404', async () => {
    const get = (token: string) => fetch(`${p.baseUrl}/api/v1/allocations/${ids.alloc}/rdp`, { headers: { authorization: `Bearer ${token}` } });
    const none = await get(tok.member);
    expect(none.status).toBe(409);
    const em = p.db.em.fork();
    em.create(RemoteAccessSchema, { host: ids.host, gateway: 'gw.test', protocol: 'rdp', publicDomain: `rules-${tenant}.hosts.test`, publicPort: 23389, targetPort: 3389 });
    await em.flush();
    const res = await get(tok.member);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/x-rdp/);
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="rules-${tenant}.rdp"`);
    const lines = (await res.text()).split('\r\n');
    expect(lines).toContain(`full address:s:rules-${tenant}.hosts.test:23389`);
    expect(lines).toContain(`username:s:${tenant}`);
    expect(lines).toContain('prompt for credentials:i:1');
    expect(lines.join('\n')).not.toMatch(/password/i);
    expect((await get(tok.other)).status).toBe(404);
  });
});
