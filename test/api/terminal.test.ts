import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startSshd, type SshTestHost } from '../helpers/sshd.js';
import { AllocationSchema, AuditEventSchema, CustomerSchema, HostSchema, RemoteSessionSchema, UserSchema } from '../../db/entities/index.js';
import { ensureTerminalKey } from '../../db/terminal-keys.js';
import { createRemoteSessionActivities } from '../../activities/db/remote-session.activities.js';
import { TermClient } from '../helpers/term-client.js';

describe('web terminal: ticketed WebSocket → ssh2 as the tenant, recorded (real sshd)', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  const tenant = `wt${randomBytes(3).toString('hex')}`;
  const ids = { alloc: '', host: '', member: '', other: '', peer: '' };
  const tok = { member: '', other: '' };

  beforeAll(async () => {
    p = await startTestPlatform({ worker: false });
    const em = p.db.em.fork();
    const A = em.create(CustomerSchema, { name: 'Term A', code: `ta${randomBytes(3).toString('hex')}` });
    const B = em.create(CustomerSchema, { name: 'Term B', code: `tb${randomBytes(3).toString('hex')}` });
    const member = em.create(UserSchema, { username: `m-${tenant}`, customerId: A.id, roles: ['customer_member'] });
    const other = em.create(UserSchema, { username: `o-${tenant}`, customerId: B.id, roles: ['customer_member'] });
    const peer = em.create(UserSchema, { username: `p-${tenant}`, customerId: A.id, roles: ['customer_owner'] });
    const host = em.create(HostSchema, { slug: `term-${tenant}`, name: 'term', address: '127.0.0.1', port: 22, os: 'linux', username: 'admin', status: 'online' });
    const a = em.create(AllocationSchema, { host, customer: A, customerUser: member, osUsername: tenant, startsAt: new Date(), endsAt: new Date(Date.now() + 86_400_000), bufferSeconds: 0, graceSeconds: 0, status: 'active', createdBy: 'test' });
    await em.flush();
    Object.assign(ids, { alloc: a.id, host: host.id, member: member.id, other: other.id, peer: peer.id });
    // What the allocation's inject-keys step does: the platform key goes into the tenant's authorized_keys.
    const pub = await ensureTerminalKey(p.db.em, p.vault, a.id);
    expect(await ensureTerminalKey(p.db.em, p.vault, a.id)).toBe(pub);
    sshd = await startSshd({ users: [{ name: tenant, authorizedKeys: [pub] }] });
    await p.db.em.fork().nativeUpdate(HostSchema, { id: host.id }, { port: sshd.port, hostKeyFingerprint: sshd.hostKeyFingerprintSha256 });
    tok.member = await p.tokenFor(member.id);
    tok.other = await p.tokenFor(other.id);
  }, 120_000);

  afterAll(async () => {
    await sshd?.stop();
    await p?.close();
  }, 60_000);

  const ticket = async (token: string) => p.api('POST', `/api/v1/allocations/${ids.alloc}/terminal/ticket`, { token });

  it('the member gets a single-use ticket (another company gets 404), logs in as the OS account, resizes; the ticket is not reusable', { timeout: 60_000 }, async () => {
    expect((await ticket(tok.other)).status).toBe(404);
    const t = await ticket(tok.member);
    expect(t.status, JSON.stringify(t.body)).toBe(200);
    expect(t.body.data.protocols).toEqual(['hostflow.terminal', `ticket.${t.body.data.ticket}`]);
    const c = await TermClient.open(p.baseUrl, t.body.data.ticket);
    c.send('echo "hello-$((6*7))"; id -un\n');
    await c.waitFor(new RegExp(`hello-42\\r?\\n${tenant}`));
    c.ws.send(JSON.stringify({ type: 'resize', cols: 120, rows: 40 }));
    await new Promise((r) => setTimeout(r, 200));
    c.send('stty size\n');
    await c.waitFor(/40 120/);
    // A password prompt: what is typed next does not reach the recording.
    c.send('read -s -p "Password: " secret; echo; echo "len=${#secret}"\n');
    await c.waitFor(/Password: $/);
    c.send('hunter2-not-recorded\n');
    await c.waitFor(/len=20/);
    await expect(TermClient.open(p.baseUrl, t.body.data.ticket)).rejects.toThrow(/refused: 401/);

    // The admin sees it live and ends it: the WebSocket closes within a second.
    const list = await p.api('GET', '/api/v1/remote-sessions?live=true');
    expect(list.status).toBe(200);
    const row = list.body.data.items.find((s: { id: string }) => s.id === c.sessionId);
    expect(row).toMatchObject({ protocol: 'ssh', status: 'active', os_username: tenant, user_id: ids.member, staff: false });
    expect(list.body.data.by_protocol.ssh).toBeGreaterThanOrEqual(1);
    const t0 = Date.now();
    const killed = await p.api('POST', `/api/v1/remote-sessions/${c.sessionId}/terminate`);
    expect(killed.status, JSON.stringify(killed.body)).toBe(200);
    const closed = await c.waitClosed(1000);
    expect(closed.at - t0).toBeLessThan(1000);
    expect(closed.reason).toBe('admin_force');
    const ended = await p.db.em.fork().findOneOrFail(RemoteSessionSchema, { id: c.sessionId });
    expect(ended).toMatchObject({ status: 'terminated', endReason: 'admin_force' });
    expect(Number(ended.bytesReceived)).toBeGreaterThan(0);
    expect(Number(ended.bytesSent)).toBeGreaterThan(0);
    // The SSH side is gone too: no shell of the tenant is left on the host.
    const { sshExec } = await import('../helpers/sshd.js');
    let shells = '1';
    for (let i = 0; i < 30 && shells !== '0'; i++) {
      shells = (await sshExec(sshd, `pgrep -u ${tenant} -c bash || true`)).stdout.trim();
      if (shells !== '0') await new Promise((r) => setTimeout(r, 100));
    }
    expect(shells, 'the tenant shell outlived the forced disconnect').toBe('0');

    // Playback: asciicast v2 with input and output; the secret typed after the prompt is masked; the file at rest is ciphertext.
    const rec = await fetch(`${p.baseUrl}/api/v1/remote-sessions/${c.sessionId}/recording`, { headers: { authorization: `Bearer ${p.tokens.admin}` } });
    expect(rec.status).toBe(200);
    expect(rec.headers.get('content-type')).toMatch(/asciicast/);
    const cast = (await rec.text()).trim().split('\n');
    expect(JSON.parse(cast[0]!)).toMatchObject({ version: 2, width: 100, height: 30 });
    const events = cast.slice(1).map((l) => JSON.parse(l) as [number, string, string]);
    expect(events.every(([time], i) => i === 0 || time >= events[i - 1]![0])).toBe(true);
    expect(events.filter((e) => e[1] === 'o').map((e) => e[2]).join('')).toContain('hello-42');
    expect(events.filter((e) => e[1] === 'i').map((e) => e[2]).join('')).toContain('echo "hello-$((6*7))"');
    expect(events).toContainEqual([expect.any(Number), 'r', '120x40']);
    expect(cast.join('\n')).not.toContain('hunter2');
    const atRest = await readFile(ended.recordingPath!, 'utf8');
    expect(atRest).not.toContain('hello');
    expect(atRest.startsWith('v1.')).toBe(true);
    // Member may not list sessions or play recordings.
    expect((await p.api('GET', '/api/v1/remote-sessions', { token: tok.member })).status).toBe(403);

    const audit = await p.db.em.fork().find(AuditEventSchema, { action: { $in: ['remote_session.established', 'remote_session.closed', 'remote_session.terminate'] } });
    expect(audit.map((a) => a.action).sort()).toEqual(['remote_session.closed', 'remote_session.established', 'remote_session.terminate']);
  });

  it('staff connecting is announced; reclaim ends the tenant\'s sessions within a second', { timeout: 60_000 }, async () => {
    const t = await ticket(p.tokens.admin);
    expect(t.status, JSON.stringify(t.body)).toBe(200);
    const c = await TermClient.open(p.baseUrl, t.body.data.ticket);
    const announced = await p.db.em.fork().findOne(AuditEventSchema, { action: 'remote_session.staff_connected' });
    expect(announced).not.toBeNull();
    // The tenant's users (the allocation's member and the company's owner) find it in their inbox,
    // naming the staff member, the host and the session; another company's user gets nothing.
    for (const token of [tok.member, await p.tokenFor(ids.peer)]) {
      const inbox = await p.api('GET', '/api/v1/messages', { token });
      expect(inbox.status).toBe(200);
      const m = (inbox.body.data.items as Array<{ event: string; subject: string; body: string }>).filter((x) => x.event === 'remote_session.staff_connected');
      expect(m, JSON.stringify(inbox.body.data)).toHaveLength(1);
      expect(m[0]!.subject).toContain('term');
      expect(m[0]!.body).toContain('admin');
      expect(m[0]!.body).toContain(c.sessionId);
      expect(m[0]!.body).toContain('SSH terminal');
    }
    const otherInbox = await p.api('GET', '/api/v1/messages', { token: tok.other });
    expect((otherInbox.body.data.items as Array<{ event: string }>).filter((x) => x.event === 'remote_session.staff_connected')).toEqual([]);
    const t0 = Date.now();
    expect(await createRemoteSessionActivities({ em: p.db.em }).endAllocationSessions(ids.alloc)).toEqual({ requested: 1 });
    const closed = await c.waitClosed(1500);
    expect(closed.reason).toBe('reclaim');
    expect(closed.at - t0).toBeLessThan(1000);
    expect(await p.db.em.fork().findOneOrFail(RemoteSessionSchema, { id: c.sessionId })).toMatchObject({ status: 'terminated', endReason: 'reclaim', staff: true });
  });
});
