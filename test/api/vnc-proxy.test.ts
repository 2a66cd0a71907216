import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { freePort } from '../helpers/sshd.js';
import { Rfb } from '../helpers/rfb.js';
import { AllocationSchema, AuditEventSchema, CustomerSchema, HostSchema, RemoteAccessSchema, RemoteSessionSchema, UserSchema } from '../../db/entities/index.js';

describe('VNC in the browser: WebSocket-to-TCP proxy to a real Xvnc (RFB handshake through the API)', () => {
  let p: TestPlatform;
  let xvnc: ChildProcess;
  let rfbPort: number;
  const ids = { alloc: '', member: '', other: '', owner: '' };
  const tok = { member: '', other: '' };

  beforeAll(async () => {
    rfbPort = await freePort();
    const display = 40 + Math.floor(Math.random() * 500);
    xvnc = spawn('Xvnc', [`:${display}`, '-rfbport', String(rfbPort), '-SecurityTypes', 'None', '-localhost', '-geometry', '640x480', '-depth', '24', '-nolisten', 'tcp'], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      const up = await new Promise<boolean>((r) => {
        const s = connect(rfbPort, '127.0.0.1');
        s.once('connect', () => (s.destroy(), r(true)));
        s.once('error', () => r(false));
      });
      if (up) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    p = await startTestPlatform({ worker: false });
    const em = p.db.em.fork();
    const tag = randomBytes(3).toString('hex');
    const A = em.create(CustomerSchema, { name: 'Vnc A', code: `va${tag}` });
    const B = em.create(CustomerSchema, { name: 'Vnc B', code: `vb${tag}` });
    const member = em.create(UserSchema, { username: `vm-${tag}`, customerId: A.id, roles: ['customer_member'] });
    const other = em.create(UserSchema, { username: `vo-${tag}`, customerId: B.id, roles: ['customer_member'] });
    const owner = em.create(UserSchema, { username: `vw-${tag}`, customerId: A.id, roles: ['customer_owner'] });
    const host = em.create(HostSchema, { slug: `vnc-${tag}`, name: 'vnc', address: '127.0.0.1', port: 22, os: 'linux', username: 'admin', status: 'online' });
    em.create(RemoteAccessSchema, { host, gateway: 'gw', protocol: 'vnc', publicDomain: `vnc-${tag}.hosts.test`, publicPort: 20000, targetPort: rfbPort });
    const a = em.create(AllocationSchema, { host, customer: A, customerUser: member, osUsername: 'u', startsAt: new Date(), endsAt: new Date(Date.now() + 86_400_000), bufferSeconds: 0, graceSeconds: 0, status: 'active', createdBy: 'test' });
    await em.flush();
    Object.assign(ids, { alloc: a.id, member: member.id, other: other.id, owner: owner.id });
    tok.member = await p.tokenFor(member.id);
    tok.other = await p.tokenFor(other.id);
  }, 120_000);

  afterAll(async () => {
    xvnc?.kill('SIGTERM');
    await p?.close();
  }, 60_000);

  it('a member speaks RFB to Xvnc through the proxy (ProtocolVersion, security None, ServerInit, a framebuffer update); another company gets 404; admin force-disconnect closes it', { timeout: 60_000 }, async () => {
    expect((await p.api('POST', `/api/v1/allocations/${ids.alloc}/vnc/ticket`, { token: tok.other })).status).toBe(404);
    const t = await p.api('POST', `/api/v1/allocations/${ids.alloc}/vnc/ticket`, { token: tok.member });
    expect(t.status, JSON.stringify(t.body)).toBe(200);
    expect(t.body.data.path).toBe('/api/v1/vnc');
    // A terminal path does not take a VNC ticket.
    const wrong = new WebSocket(`${p.baseUrl.replace('http', 'ws')}/api/v1/terminal`, ['hostflow.terminal', `ticket.${t.body.data.ticket}`]);
    expect(await new Promise((r) => wrong.once('unexpected-response', (_q, res) => r(res.statusCode)))).toBe(401);
    const t2 = await p.api('POST', `/api/v1/allocations/${ids.alloc}/vnc/ticket`, { token: tok.member });
    const ws = new WebSocket(`${p.baseUrl.replace('http', 'ws')}/api/v1/vnc`, t2.body.data.protocols);
    const rfb = new Rfb(ws);
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));

    expect((await rfb.read(12)).toString()).toMatch(/^RFB 003\.00[3-8]\n$/);
    rfb.send(Buffer.from('RFB 003.008\n'));
    const n = (await rfb.read(1))[0]!;
    const types = [...(await rfb.read(n))];
    expect(types).toContain(1); // None
    rfb.send(Buffer.from([1]));
    expect((await rfb.read(4)).readUInt32BE(0)).toBe(0); // SecurityResult OK
    rfb.send(Buffer.from([1])); // ClientInit: shared
    const init = await rfb.read(24);
    const [w, h] = [init.readUInt16BE(0), init.readUInt16BE(2)];
    expect([w, h]).toEqual([640, 480]);
    await rfb.read(init.readUInt32BE(20)); // desktop name
    const req = Buffer.alloc(10);
    req.writeUInt8(3, 0); // FramebufferUpdateRequest, non-incremental, whole screen
    req.writeUInt16BE(w, 6);
    req.writeUInt16BE(h, 8);
    rfb.send(req);
    const update = await rfb.read(4);
    expect(update[0]).toBe(0); // FramebufferUpdate
    expect(update.readUInt16BE(2)).toBeGreaterThan(0); // rectangles

    const list = await p.api('GET', '/api/v1/remote-sessions?live=true&protocol=vnc');
    const row = list.body.data.items.find((s: { user_id: string }) => s.user_id === ids.member);
    expect(row).toMatchObject({ protocol: 'vnc', status: 'active', recording: null });
    const t0 = Date.now();
    expect((await p.api('POST', `/api/v1/remote-sessions/${row.id}/terminate`)).status).toBe(200);
    while (!rfb.closed && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 10));
    expect(rfb.closed).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1000);
    const ended = await p.db.em.fork().findOneOrFail(RemoteSessionSchema, { id: row.id });
    expect(ended).toMatchObject({ status: 'terminated', endReason: 'admin_force' });
    expect(Number(ended.bytesReceived)).toBeGreaterThan(100);
  });
  it('a staff VNC connection is announced in the tenant\'s inbox (member and owner), not in another company\'s', { timeout: 60_000 }, async () => {
    const t = await p.api('POST', `/api/v1/allocations/${ids.alloc}/vnc/ticket`);
    expect(t.status, JSON.stringify(t.body)).toBe(200);
    const ws = new WebSocket(`${p.baseUrl.replace('http', 'ws')}/api/v1/vnc`, t.body.data.protocols);
    const rfb = new Rfb(ws);
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    expect((await rfb.read(12)).toString()).toMatch(/^RFB 003\.00[3-8]\n$/);
    const row = (await p.api('GET', '/api/v1/remote-sessions?live=true&protocol=vnc')).body.data.items.find((s: { staff: boolean; allocation_id: string }) => s.staff && s.allocation_id === ids.alloc);
    expect(row, 'the staff VNC session is listed').toBeDefined();
    const announced = await p.db.em.fork().find(AuditEventSchema, { action: 'remote_session.staff_connected' });
    expect(announced.some((e) => (e.detail as { session?: string; protocol?: string } | null)?.session === row.id && (e.detail as { protocol?: string }).protocol === 'vnc')).toBe(true);
    for (const userId of [ids.member, ids.owner]) {
      const inbox = await p.api('GET', '/api/v1/messages', { token: await p.tokenFor(userId) });
      expect(inbox.status).toBe(200);
      const m = (inbox.body.data.items as Array<{ event: string; subject: string; body: string }>).filter((x) => x.event === 'remote_session.staff_connected');
      expect(m, JSON.stringify(inbox.body.data)).toHaveLength(1);
      expect(m[0]!.body).toContain('admin');
      expect(m[0]!.body).toContain('VNC');
      expect(m[0]!.body).toContain(row.id);
    }
    const otherInbox = await p.api('GET', '/api/v1/messages', { token: tok.other });
    expect((otherInbox.body.data.items as Array<{ event: string }>).filter((x) => x.event === 'remote_session.staff_connected')).toEqual([]);
    ws.close();
    while (!rfb.closed) await new Promise((r) => setTimeout(r, 20));
  });
});
