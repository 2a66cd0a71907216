// Tenant isolation end to end, host-group scope, PII masking per role, role inheritance, custom
// roles, and the roles API (audited, cache invalidated) — against the real app and database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { DB_KINDS, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { createApp, routeTable } from '../../api/app.js';
import { maskEmail, maskPhone } from '../../api/authz/mask.js';
import { createLogger } from '../../config/logger.js';
import { AccountOpeningRequestSchema, AllocationSchema, AuditEventSchema, CustomerSchema, HostGroupSchema, HostSchema, NotificationSchema, RemoteSessionSchema, RoleSchema, SshKeySchema, UserSchema } from '../../db/entities/index.js';
import { BUILTIN_ROLES, BUILTIN_ROLE_NAMES, TENANT_PERMISSIONS } from '../../api/authz/permissions.js';
import { effectivePermissions } from '../../api/authz/matrix.js';
import { linkKey, newJti, signLink } from '../../activities/notify/links.js';

describe.each(DB_KINDS)('authorization on %s', (db) => {
  let p: TestPlatform;
  const t: Record<string, string> = {};
  const id: Record<string, string> = {};

  const user = async (key: string, roles: string[], customerId: string | null = null) => {
    const em = p.db.em.fork();
    id[key] = em.create(UserSchema, { username: `iso_${key}`, email: `${key}@iso.test`, roles, customerId }).id;
    await em.flush();
    t[key] = await p.tokenFor(id[key]);
  };
  const as = (key: string) => ({ token: t[key]! });

  beforeAll(async () => {
    p = await startTestPlatform({ db, worker: false });
    const em = p.db.em.fork();
    const A = em.create(CustomerSchema, { name: 'A Corp', code: 'a-corp', contactName: 'Alice', contactEmail: 'alice@a.test', contactPhone: '13812341234' });
    const B = em.create(CustomerSchema, { name: 'B Corp', code: 'b-corp', contactEmail: 'bob@b.test', contactPhone: '13912345678' });
    const east = em.create(HostGroupSchema, { name: 'east' });
    em.create(HostGroupSchema, { name: 'west' });
    await em.flush();
    Object.assign(id, { A: A.id, B: B.id, east: east.id });
    await user('ownerA', ['customer_owner'], A.id);
    await user('memberA1', ['customer_member'], A.id);
    await user('memberA2', ['customer_member'], A.id);
    await user('ownerB', ['customer_owner'], B.id);
    await user('memberB', ['customer_member'], B.id);
    await user('viewer', ['viewer']);
    const em2 = p.db.em.fork();
    const host = (slug: string, group: string) => em2.create(HostSchema, { slug, name: slug, address: '127.0.0.1', port: 22, os: 'linux', username: 'u', group, status: 'online' });
    const alloc = (h: ReturnType<typeof host>, c: string, u: string) =>
      em2.create(AllocationSchema, { host: h, customer: c, customerUser: u, osUsername: 'u', startsAt: new Date(), endsAt: new Date(Date.now() + 86_400_000), bufferSeconds: 0, graceSeconds: 0, status: 'active', createdBy: 'test' });
    const hA1 = host('iso-a1', 'east');
    const hA2 = host('iso-a2', 'west');
    const hB = host('iso-b', 'east');
    const hFree = host('iso-free', 'west');
    const aA1 = alloc(hA1, A.id, id.memberA1!);
    const aA2 = alloc(hA2, A.id, id.memberA2!);
    const aB = alloc(hB, B.id, id.memberB!);
    const key = (u: string, n: string) => em2.create(SshKeySchema, { user: u, type: 'ssh-ed25519', bits: 256, publicKey: `ssh-ed25519 AAAA${n}`, fingerprint: `SHA256:iso-${db}-${n}` });
    const kA1 = key(id.memberA1!, 'a1');
    key(id.memberA2!, 'a2');
    const kB = key(id.memberB!, 'b');
    const req = em2.create(AccountOpeningRequestSchema, { applicant: p.users.requester, contactEmail: 'carol@req.test', contactPhone: '+86 138 0013 8000', username: 'carol', fullName: 'Carol', host: hA1, status: 'pending', workflowId: 'account-opening/iso', expiresAt: new Date(Date.now() + 86_400_000) });
    await em2.flush();
    Object.assign(id, { hA1: hA1.id, hA2: hA2.id, hB: hB.id, hFree: hFree.id, aA1: aA1.id, aA2: aA2.id, aB: aB.id, kA1: kA1.id, kB: kB.id, req: req.id });
  });
  afterAll(() => p?.close());

  it("customer A's owner and member get 404 for customer B's hosts, allocations, keys, connection summaries, reveals and progress", async () => {
    for (const who of ['ownerA', 'memberA1']) {
      const probes: Array<[string, string, string]> = [
        ['GET', `/api/v1/hosts/${id.hB}`, 'host not found'],
        ['GET', `/api/v1/hosts/${id.hFree}`, 'host not found'],
        ['GET', `/api/v1/allocations/${id.aB}`, 'allocation not found'],
        ['GET', `/api/v1/allocations/${id.aB}/progress`, 'allocation not found'],
        ['GET', `/api/v1/allocations/${id.aB}/connection-summary`, 'allocation not found'],
        ['POST', `/api/v1/allocations/${id.aB}/credentials/reveal`, 'allocation not found'],
        ['POST', `/api/v1/allocations/${id.aB}/return`, 'allocation not found'],
        ['DELETE', `/api/v1/ssh-keys/${id.kB}`, 'ssh key not found'],
      ];
      for (const [method, path, message] of probes) {
        const r = await p.api(method, path, { ...as(who), body: method === 'POST' ? {} : undefined });
        expect([who, path, r.status, r.body.code, r.body.message]).toEqual([who, path, 404, 40401, message]);
      }
    }
    // The same answer as an id that does not exist: no enumeration.
    const ghost = await p.api('GET', '/api/v1/allocations/00000000-0000-4000-8000-000000000000', as('ownerA'));
    expect([ghost.status, ghost.body.message]).toEqual([404, 'allocation not found']);
    const otherCustomer = await p.api('GET', `/api/v1/customers/${id.B}`, as('ownerA'));
    expect([otherCustomer.status, otherCustomer.body.message]).toEqual([404, 'customer not found']);
    expect((await p.api('GET', `/api/v1/customers/${id.B}/users`, as('ownerA'))).status).toBe(404);
  });

  it("a member sees only their own allocation, keys and host; the owner sees the company's; each tenant only its own", async () => {
    const list = async (who: string, path: string) => (await p.api('GET', path, as(who))).body.data.items.map((x: { id: string }) => x.id).sort();
    expect(await list('memberA1', '/api/v1/allocations')).toEqual([id.aA1]);
    expect(await list('ownerA', '/api/v1/allocations')).toEqual([id.aA1, id.aA2].sort());
    expect(await list('ownerB', '/api/v1/allocations')).toEqual([id.aB]);
    expect(await list('memberA1', '/api/v1/hosts')).toEqual([id.hA1]);
    expect(await list('ownerA', '/api/v1/hosts')).toEqual([id.hA1, id.hA2].sort());
    expect((await list('memberA1', '/api/v1/ssh-keys')).length).toBe(1);
    expect((await list('ownerA', '/api/v1/ssh-keys')).length).toBe(2);
    // A member asking for someone else's keys by filter still gets only their own (none).
    expect(await list('memberA1', `/api/v1/ssh-keys?user_id=${id.memberA2}`)).toEqual([]);
    // Same tenant, not theirs: a member cannot see a colleague's allocation.
    expect((await p.api('GET', `/api/v1/allocations/${id.aA2}`, as('memberA1'))).status).toBe(404);
    expect((await p.api('GET', `/api/v1/allocations/${id.aA2}/progress`, as('ownerA'))).status).toBe(200);
    const members = await list('ownerA', `/api/v1/customers/${id.A}/users`);
    expect(members).toEqual([id.ownerA, id.memberA1, id.memberA2].sort());
    expect(await list('ownerA', '/api/v1/customers')).toEqual([id.A]);
    // The member's own allocation and host answer.
    expect((await p.api('GET', `/api/v1/allocations/${id.aA1}/connection-summary`, as('memberA1'))).status).toBe(200);
    expect((await p.api('GET', `/api/v1/hosts/${id.hA1}`, as('memberA1'))).status).toBe(200);
  });

  it('masks contact phone and e-mail for principals without pii.read, in one place for every response', async () => {
    expect(maskPhone('13812341234')).toBe('138****1234');
    expect(maskEmail('alice@a.test')).toBe('a***@a.test');
    const masked = (await p.api('GET', `/api/v1/customers/${id.A}`, as('viewer'))).body.data;
    expect(masked).toMatchObject({ contact_email: 'a***@a.test', contact_phone: '138****1234', contact_name: 'A****' });
    const listMasked = (await p.api('GET', '/api/v1/customers', as('viewer'))).body.data.items;
    expect(listMasked.map((c: { contact_phone: string }) => c.contact_phone).sort()).toEqual(['138****1234', '139****5678']);
    const clear = (await p.api('GET', `/api/v1/customers/${id.A}`, { token: p.tokens.operator })).body.data;
    expect(clear).toMatchObject({ contact_email: 'alice@a.test', contact_phone: '13812341234' });
    expect((await p.api('GET', `/api/v1/customers/${id.A}`, as('ownerA'))).body.data.contact_phone).toBe('13812341234');
    const reqMasked = (await p.api('GET', `/api/v1/account-openings/${id.req}`, as('viewer'))).body.data;
    expect([reqMasked.contact_email, reqMasked.contact_phone]).toEqual(['c***@req.test', '+861****8000']);
    expect((await p.api('GET', `/api/v1/account-openings/${id.req}`, { token: p.tokens.approver })).body.data.contact_email).toBe('carol@req.test');
    const usersMasked = (await p.api('GET', '/api/v1/users?page_size=200', { token: p.tokens.admin })).body.data.items;
    expect(usersMasked.find((u: { id: string }) => u.id === id.viewer).email).toBe('viewer@iso.test');
  });

  it('host-group scope: an East operator sees and acts on East hosts only', async () => {
    const r = await p.api('POST', '/api/v1/roles', { body: { name: 'east-operator', description: 'East region', parent: 'operator', host_group_ids: [id.east] } });
    expect(r.status).toBe(201);
    await user('eastop', ['east-operator']);
    const hosts = (await p.api('GET', '/api/v1/hosts?page_size=100', as('eastop'))).body.data.items.map((h: { group: string }) => h.group);
    expect(hosts.length).toBeGreaterThan(0);
    expect(new Set(hosts)).toEqual(new Set(['east']));
    expect((await p.api('GET', `/api/v1/hosts/${id.hA2}`, as('eastop'))).status).toBe(404);
    expect((await p.api('POST', `/api/v1/hosts/${id.hA2}/status`, { ...as('eastop'), body: { status: 'maintenance' } })).status).toBe(404);
    expect((await p.api('GET', `/api/v1/allocations/${id.aA2}`, as('eastop'))).status).toBe(404);
    expect((await p.api('GET', `/api/v1/allocations/${id.aA1}`, as('eastop'))).status).toBe(200);
    const allocs = (await p.api('GET', '/api/v1/allocations', as('eastop'))).body.data.items.map((a: { id: string }) => a.id).sort();
    expect(allocs).toEqual([id.aA1, id.aB].sort());
    const groups = (await p.api('GET', '/api/v1/host-groups', as('eastop'))).body.data.items.map((g: { name: string }) => g.name);
    expect(groups).toEqual(['east']);
  });

  it('host-group scope reaches below the handlers: stats, host retire, request submit and remote sessions', async () => {
    const em = p.db.em.fork();
    // A finished request on a West host, next to the pending East one (iso-a1) of beforeAll.
    em.create(AccountOpeningRequestSchema, { applicant: p.users.requester, contactEmail: 'w@req.test', username: 'westie', fullName: 'West', host: id.hFree!, status: 'done', workflowId: 'account-opening/iso-west', expiresAt: new Date(Date.now() + 86_400_000) });
    const session = (hostId: string, userId: string, customerId: string | null, protocol: 'ssh' | 'vnc' = 'ssh') =>
      em.create(RemoteSessionSchema, { userId, username: 'u', staff: false, allocationId: null, customerId, hostId, osUsername: 'u', protocol, sourceIp: '127.0.0.1', status: 'active', startedAt: new Date(), lastActivityAt: new Date() }).id;
    const sEast = session(id.hA1!, id.memberA1!, id.A!);
    const sWest = session(id.hA2!, id.memberA2!, id.A!, 'vnc');
    const sEastB = session(id.hB!, id.memberB!, id.B!);
    await em.flush();
    const made = await p.api('POST', '/api/v1/roles', { body: { name: 'east-desk', description: 'East region desk', permissions: ['scope.all', 'host.read', 'host.delete', 'report.read', 'account_opening.create', 'remote_session.manage'], host_group_ids: [id.east] } });
    expect(made.status).toBe(201);
    await user('eastdesk', ['east-desk']);

    const all = (await p.api('GET', '/api/v1/account-openings/stats')).body.data;
    const east = (await p.api('GET', '/api/v1/account-openings/stats', as('eastdesk'))).body.data;
    expect(all.by_host.map((h: { host_id: string }) => h.host_id).sort()).toEqual([id.hA1, id.hFree].sort());
    expect(east.by_host).toEqual([{ host_id: id.hA1, slug: 'iso-a1', total: 1 }]);
    expect(east.by_status).toEqual({ pending: 1 });
    expect(all.by_status).toMatchObject({ pending: 1, done: 1 });
    expect(east.last_30_days.reduce((n: number, d: { submitted: number }) => n + d.submitted, 0)).toBe(1);
    // A tenant's owner (report.read is a tenant capability) counts the company's requests only: none here.
    expect((await p.api('POST', '/api/v1/roles', { body: { name: 'customer-reporter', parent: 'customer_owner', permissions: ['report.read'] } })).status).toBe(201);
    await user('reporterA', ['customer-reporter'], id.A!);
    expect((await p.api('GET', '/api/v1/account-openings/stats', as('reporterA'))).body.data).toEqual({ by_status: {}, by_host: [], last_30_days: [] });

    // Retire and submit: a West host does not exist for the East desk.
    const retire = await p.api('DELETE', `/api/v1/hosts/${id.hFree}`, as('eastdesk'));
    expect([retire.status, retire.body.message]).toEqual([404, 'host not found']);
    const submit = await p.api('POST', '/api/v1/account-openings', { ...as('eastdesk'), body: { host_id: id.hFree, username: 'eastuser', full_name: 'E U', contact_email: 'e@x.test' } });
    expect([submit.status, submit.body.errors?.[0]]).toEqual([400, { field: 'host_id', message: 'host does not exist' }]);
    // …nor another tenant's host for a customer's member (no status, no slug in the answer).
    const foreign = await p.api('POST', '/api/v1/account-openings', { ...as('memberB'), body: { host_id: id.hA1, username: 'bsneak', full_name: 'B S', contact_email: 'b@x.test' } });
    expect([foreign.status, foreign.body.errors?.[0]]).toEqual([400, { field: 'host_id', message: 'host does not exist' }]);

    // Remote sessions: the East desk lists, counts and ends East sessions only.
    const listed = (await p.api('GET', '/api/v1/remote-sessions?live=true', as('eastdesk'))).body.data;
    expect(listed.items.map((x: { id: string }) => x.id).sort()).toEqual([sEast, sEastB].sort());
    expect(listed.by_protocol).toEqual({ ssh: 2 });
    const admin = (await p.api('GET', '/api/v1/remote-sessions?live=true')).body.data;
    expect(admin.by_protocol).toMatchObject({ ssh: 2, vnc: 1 });
    const end = await p.api('POST', `/api/v1/remote-sessions/${sWest}/terminate`, as('eastdesk'));
    expect([end.status, end.body.message]).toEqual([404, 'remote session not found']);
    expect((await p.api('GET', `/api/v1/remote-sessions/${sWest}/recording`, as('eastdesk'))).status).toBe(404);
    expect((await p.db.em.fork().findOneOrFail(RemoteSessionSchema, { id: sWest })).terminateRequestedAt).toBeNull();
  });

  it("the newer routes answer 404 across tenants too: command records, terminal and VNC tickets, remote access, onboarding, remote sessions, messages", async () => {
    // A tenant role holding every tenant capability (command records, remote sessions, onboarding and remote-access views).
    expect((await p.api('POST', '/api/v1/roles', { body: { name: 'customer-tech', parent: 'customer_owner', permissions: ['host.command_read', 'remote_session.manage', 'onboarding.read', 'remote_access.read'] } })).status).toBe(201);
    await user('techA', ['customer-tech'], id.A!);
    const em = p.db.em.fork();
    const sB = em.create(RemoteSessionSchema, { userId: id.memberB!, username: 'iso_memberB', staff: false, allocationId: id.aB!, customerId: id.B!, hostId: id.hB!, osUsername: 'u', protocol: 'ssh', sourceIp: null, status: 'closed', startedAt: new Date(), lastActivityAt: new Date(), endedAt: new Date() }).id;
    const sA = em.create(RemoteSessionSchema, { userId: id.memberA1!, username: 'iso_memberA1', staff: false, allocationId: id.aA1!, customerId: id.A!, hostId: id.hA1!, osUsername: 'u', protocol: 'ssh', sourceIp: null, status: 'closed', startedAt: new Date(), lastActivityAt: new Date(), endedAt: new Date() }).id;
    const msgB = em.create(NotificationSchema, { eventKey: `iso/${randomUUID()}`, recipient: `user:${id.memberB}`, channel: 'inbox', userId: id.memberB!, subject: 'for B', body: 'for B only' }).id;
    await em.flush();
    for (const who of ['techA', 'ownerA', 'memberA1']) {
      const probes: Array<[string, string, string]> = [
        ['POST', `/api/v1/allocations/${id.aB}/terminal/ticket`, 'allocation not found'],
        ['POST', `/api/v1/allocations/${id.aB}/vnc/ticket`, 'allocation not found'],
        ['POST', `/api/v1/messages/${msgB}/read`, 'message not found'],
      ];
      if (who === 'techA') {
        probes.push(
          ['GET', `/api/v1/hosts/${id.hB}/commands`, 'host not found'],
          ['GET', `/api/v1/hosts/${id.hB}/commands/${randomUUID()}`, 'host not found'],
          ['GET', `/api/v1/hosts/${id.hB}/remote-access`, 'host not found'],
          ['GET', `/api/v1/hosts/${id.hB}/onboarding`, 'host not found'],
          ['POST', `/api/v1/remote-sessions/${sB}/terminate`, 'remote session not found'],
          ['GET', `/api/v1/remote-sessions/${sB}/recording`, 'recording not found'],
        );
      }
      for (const [method, path, message] of probes) {
        const r = await p.api(method, path, { ...as(who), body: method === 'POST' ? {} : undefined });
        expect([who, path, r.status, r.body.code, r.body.message]).toEqual([who, path, 404, 40401, message]);
      }
    }
    // Their own company's rows answer.
    expect((await p.api('GET', `/api/v1/hosts/${id.hA1}/commands`, as('techA'))).status).toBe(200);
    const sessions = (await p.api('GET', '/api/v1/remote-sessions', as('techA'))).body.data.items.map((x: { id: string }) => x.id);
    expect(sessions).toContain(sA);
    expect(sessions).not.toContain(sB);
    // Fleet-wide operations stay closed to tenants (403 whatever the id: nothing to enumerate).
    expect((await p.api('POST', '/api/v1/gateway/sync', { ...as('techA'), body: { wait: false } })).status).toBe(403);
    expect((await p.api('GET', '/api/v1/notifications/log', as('techA'))).status).toBe(403);
  });

  it("a tenant's person never holds a staff capability, whatever role they are given", async () => {
    // The built-in customer roles fit in the tenant set (so the cap changes nothing for them).
    for (const r of BUILTIN_ROLE_NAMES.filter((n) => n.startsWith('customer_'))) expect([...effectivePermissions(r)].filter((x) => !TENANT_PERMISSIONS.has(x))).toEqual([]);
    await user('sneakyA', ['admin', 'customer_owner'], id.A!);
    for (const path of ['/api/v1/audit-events', '/api/v1/users', '/api/v1/notifications/log', '/api/v1/roles', '/api/v1/sessions']) {
      const r = await p.api('GET', path, as('sneakyA'));
      expect([path, r.status]).toEqual([path, 403]);
    }
    expect((await p.api('POST', '/api/v1/hosts', { ...as('sneakyA'), body: {} })).status).toBe(403);
    expect((await p.api('GET', '/api/v1/allocations', as('sneakyA'))).body.data.items.map((a: { id: string }) => a.id).sort()).toEqual([id.aA1, id.aA2].sort());
    expect((await p.api('GET', `/api/v1/hosts/${id.hB}`, as('sneakyA'))).status).toBe(404);
  });

  it('separation of duties on every path: an approve link addressed to the applicant is refused like the API refuses it', async () => {
    await user('selfish', ['approver']);
    const em = p.db.em.fork();
    const reqId = em.create(AccountOpeningRequestSchema, { applicant: id.selfish!, contactEmail: 's@req.test', username: 'selfish', fullName: 'Self Ish', host: id.hA1!, status: 'pending', workflowId: `account-opening/iso-self-${db}`, expiresAt: new Date(Date.now() + 86_400_000) }).id;
    await em.flush();
    const api = await p.api('POST', `/api/v1/account-openings/${reqId}/approve`, { ...as('selfish'), body: {} });
    expect([api.status, api.body.message]).toEqual([403, 'separation of duties: you cannot decide your own account opening request']);
    // The signed link (as the center signs it) for the applicant, who holds account_opening.approve.
    const token = signLink(await linkKey(p.db.em, p.vault), { t: 'action', j: newJti(), r: reqId, a: 'approve', u: id.selfish!, x: Date.now() + 3_600_000 });
    const link = await p.api('POST', `/api/v1/notifications/actions/${token}`, { token: null, body: {} });
    expect([link.status, link.body.message]).toEqual([403, 'separation of duties: you cannot decide your own account opening request']);
    const row = await p.db.em.fork().findOneOrFail(AccountOpeningRequestSchema, { id: reqId });
    expect(row.status).toBe('pending');
    const audit = await p.db.em.fork().find(AuditEventSchema, { action: 'account-opening.approve', targetId: reqId });
    expect(audit.some((a) => a.result === 'failure')).toBe(true);
  });

  it('masks e-mail and phone on the newer serializers too (registrations, the send log)', async () => {
    const em = p.db.em.fork();
    em.create(NotificationSchema, { eventKey: `iso-mask/${db}`, recipient: 'carol@req.test', channel: 'email', subject: 's', body: 'b' });
    await em.flush();
    expect((await p.api('POST', '/api/v1/roles', { body: { name: 'log-reader', permissions: ['notification.read'] } })).status).toBe(201);
    await user('logreader', ['log-reader']);
    const masked = (await p.api('GET', '/api/v1/notifications/log?page_size=200', as('logreader'))).body.data.items.map((x: { recipient: string }) => x.recipient);
    expect(masked).toContain('c***@req.test');
    expect(masked).not.toContain('carol@req.test');
    const clear = (await p.api('GET', '/api/v1/notifications/log?page_size=200')).body.data.items.map((x: { recipient: string }) => x.recipient);
    expect(clear).toContain('carol@req.test');
    const { maskBySchema } = await import('../../api/authz/mask.js');
    const { Registration } = await import('../../api/routes/registrations/schema.js');
    expect(maskBySchema(Registration, { email: 'dora@dept.test', phone: '13812345678', full_name: 'Dora' })).toEqual({ email: 'd***@dept.test', phone: '138****5678', full_name: 'Dora' });
    expect(maskBySchema((await import('../../api/routes/notifications/schema.js')).LogEntry, { recipient: 'user:42' })).toEqual({ recipient: 'user:42' });
  });

  it('a role-addressed subscription reaches roles inheriting that role (a custom approver), not the parent role', async () => {
    expect((await p.api('POST', '/api/v1/roles', { body: { name: `night-approver`, description: 'approves at night', parent: 'approver' } })).status).toBe(201);
    await user('nightowl', ['night-approver']);
    await user('plainviewer', ['viewer']);
    const sub = await p.api('POST', '/api/v1/notifications/subscriptions', { body: { event: 'notification.test', subject_type: 'role', subject_id: 'approver', channel: 'inbox' } });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const sent = await p.api('POST', '/api/v1/notifications/test', { body: { note: 'role fan-out' } });
    expect(sent.status).toBe(200);
    const inbox = async (who: string) => (await p.api('GET', '/api/v1/messages', as(who))).body.data.items.filter((m: { event: string }) => m.event === 'notification.test').length;
    expect(await inbox('nightowl')).toBe(1);
    expect(await inbox('plainviewer')).toBe(0);
    expect((await p.api('GET', '/api/v1/messages', { token: p.tokens.approver })).body.data.items.some((m: { event: string }) => m.event === 'notification.test')).toBe(true);
  });

  it('role inheritance: a child role has its parent’s permissions', async () => {
    expect((await p.api('POST', '/api/v1/roles', { body: { name: 'junior-viewer', parent: 'viewer' } })).status).toBe(201);
    await user('junior', ['junior-viewer']);
    expect((await p.api('GET', `/api/v1/customers/${id.A}`, as('junior'))).status).toBe(200);
    expect((await p.api('POST', '/api/v1/hosts', { ...as('junior'), body: {} })).status).toBe(403);
    const roles = (await p.api('GET', '/api/v1/roles', as('junior'))).body.data as Array<{ name: string; effective_permissions: string[] }>;
    const viewer = roles.find((x) => x.name === 'viewer')!;
    expect(roles.find((x) => x.name === 'junior-viewer')!.effective_permissions).toEqual(viewer.effective_permissions);
    expect(roles.find((x) => x.name === 'customer_owner')!.effective_permissions).toEqual(expect.arrayContaining(['allocation.read', 'ssh_key.manage', 'scope.company']));
    // No cycles.
    const cycle = await p.api('PATCH', '/api/v1/roles/viewer', { body: { parent: 'junior-viewer' } });
    expect([cycle.status, cycle.body.errors?.[0]?.field]).toEqual([400, 'parent']);
  });

  it('a custom role with one permission can do exactly that, on every route of the route table', async () => {
    expect((await p.api('POST', '/api/v1/roles', { body: { name: 'customer-reader', permissions: ['customer.read', 'scope.all'] } })).status).toBe(201);
    await user('reader', ['customer-reader']);
    const app = createApp({ em: p.db.em, vault: p.vault, logger: createLogger({ level: 'silent' }), temporal: { client: p.client, taskQueue: p.taskQueue }, settings: { accountOpeningExpiryDays: 7 }, checks: { db: async () => undefined, temporal: async () => undefined } });
    const allowed: string[] = [];
    // Routes naming a permission (public and self-service `authenticated` routes need none).
    const guarded = routeTable(app).filter((r) => r.permission !== 'public' && r.permission !== 'authenticated');
    expect(guarded.length).toBeGreaterThan(50);
    for (const r of guarded) {
      const path = r.path.replace(':id', id.A!).replace(':name', 'nope-role').replace(':batchId', id.A!);
      const res = await p.api(r.method.toUpperCase(), path, { ...as('reader'), body: r.hasBody ? {} : undefined });
      if (res.status !== 403) allowed.push(`${r.method.toUpperCase()} ${r.path}`);
      if (r.permission === 'customer.read') expect([r.path, res.status]).toEqual([r.path, 200]);
    }
    expect(allowed.sort()).toEqual(guarded.filter((r) => r.permission === 'customer.read').map((r) => `${r.method.toUpperCase()} ${r.path}`).sort());
  });

  it('roles API: unknown permissions are 40001, changes are audited with before/after and take effect at once', async () => {
    const bad = await p.api('POST', '/api/v1/roles', { body: { name: 'typo', permissions: ['host.read', 'host.reed'] } });
    expect([bad.status, bad.body.errors?.[0]?.field]).toEqual([400, 'permissions.1']);
    expect((await p.api('POST', '/api/v1/roles', { body: { name: 'lister', permissions: ['host.read'] } })).status).toBe(201);
    await user('lister', ['lister']);
    expect((await p.api('GET', '/api/v1/customers', as('lister'))).status).toBe(403);
    const patched = await p.api('PATCH', '/api/v1/roles/lister', { body: { permissions: ['host.read', 'customer.read', 'scope.all'] } });
    expect(patched.status).toBe(200);
    expect((await p.api('GET', '/api/v1/customers', as('lister'))).status).toBe(200);
    const audit = await p.db.em.fork().find(AuditEventSchema, { targetType: 'role', targetId: 'lister' }, { orderBy: { at: 'asc' } });
    expect(audit.map((a) => a.action)).toEqual(['role.create', 'role.update']);
    expect(audit[1]!.detail).toMatchObject({ before: { permissions: ['host.read'] }, after: { permissions: ['host.read', 'customer.read', 'scope.all'] } });
    // A holder of role.manage who is not an admin cannot change a built-in role's permissions.
    expect((await p.api('POST', '/api/v1/roles', { body: { name: 'role-admin', permissions: ['role.manage'] } })).status).toBe(201);
    await user('roleadmin', ['role-admin']);
    expect((await p.api('PATCH', '/api/v1/roles/viewer', { ...as('roleadmin'), body: { permissions: ['*'] } })).status).toBe(403);
    expect((await p.api('PATCH', '/api/v1/roles/lister', { ...as('roleadmin'), body: { description: 'ok' } })).status).toBe(200);
    // No escalation: nobody hands out permissions they do not hold, in a role or in a grant.
    const escalate = await p.api('POST', '/api/v1/roles', { ...as('roleadmin'), body: { name: 'sneaky', parent: 'operator' } });
    expect([escalate.status, escalate.body.message]).toEqual([403, expect.stringContaining('host.write')]);
    expect((await p.api('PATCH', '/api/v1/roles/lister', { ...as('roleadmin'), body: { permissions: ['audit.export'] } })).status).toBe(403);
    expect((await p.api('POST', '/api/v1/roles', { body: { name: 'user-admin', permissions: ['user.write', 'host.read'] } })).status).toBe(201);
    await user('useradmin', ['user-admin']);
    expect((await p.api('POST', '/api/v1/users', { ...as('useradmin'), body: { username: 'wannabe', roles: ['admin'] } })).status).toBe(403);
    expect((await p.api('POST', '/api/v1/users', { ...as('useradmin'), body: { username: 'fine', roles: ['lister'] } })).status).toBe(403);
    expect((await p.api('POST', '/api/v1/users', { ...as('useradmin'), body: { username: 'fine', roles: ['matrix-none'] } })).status).toBe(400);
    expect((await p.api('POST', '/api/v1/roles', { body: { name: 'host-reader', permissions: ['host.read'] } })).status).toBe(201);
    expect((await p.api('POST', '/api/v1/users', { ...as('useradmin'), body: { username: 'fine', roles: ['host-reader'] } })).status).toBe(201);
    expect((await p.api('DELETE', '/api/v1/roles/viewer')).status).toBe(409);
    expect((await p.api('DELETE', '/api/v1/roles/lister')).status).toBe(409); // still held
    expect((await p.api('POST', '/api/v1/roles', { body: { name: 'unused' } })).status).toBe(201);
    expect((await p.api('DELETE', '/api/v1/roles/unused')).status).toBe(200);
    expect(await p.db.em.fork().count(AuditEventSchema, { action: 'role.delete', targetId: 'unused' })).toBe(1);
  });

  it('role names on users are validated against the table; customer users are members by default, owners on request', async () => {
    const bad = await p.api('POST', '/api/v1/users', { body: { username: 'nobody', roles: ['viewer', 'emperor'] } });
    expect([bad.status, bad.body.errors?.[0]?.field]).toEqual([400, 'roles.1']);
    const member = await p.api('POST', `/api/v1/customers/${id.A}/users`, { body: { username: 'newmember', email: 'nm@a.test' } });
    expect([member.status, member.body.data.role]).toEqual([201, 'customer_member']);
    const owner = await p.api('POST', `/api/v1/customers/${id.A}/users`, { body: { username: 'newowner', email: 'no@a.test', role: 'customer_owner' } });
    expect([owner.status, owner.body.data.role]).toEqual([201, 'customer_owner']);
    expect((await p.api('GET', '/api/v1/allocations', { token: await p.tokenFor(owner.body.data.id) })).body.data.total).toBe(2);
    expect((await p.api('GET', '/api/v1/allocations', { token: await p.tokenFor(member.body.data.id) })).body.data.total).toBe(0);
  });

  it('the seeded roles table is the built-in catalogue; OpenAPI shows each operation’s permission', async () => {
    const rows = await p.db.em.fork().find(RoleSchema, { builtin: true });
    expect(rows.map((r) => ({ name: r.name, description: r.description, parent: r.parent ?? null, permissions: r.permissions })).sort((a, b) => a.name.localeCompare(b.name))).toEqual(
      BUILTIN_ROLES.map((r) => ({ name: r.name, description: r.description, parent: r.parent, permissions: r.permissions })).sort((a, b) => a.name.localeCompare(b.name)),
    );
    const doc = (await (await fetch(`${p.baseUrl}/api/openapi.json`)).json()) as { paths: Record<string, Record<string, { 'x-permission'?: string; description?: string }>> };
    expect(doc.paths['/api/v1/hosts']!.post!['x-permission']).toBe('host.write');
    expect(doc.paths['/api/v1/hosts']!.post!.description).toContain('`host.write`');
    expect(doc.paths['/api/v1/allocations/{id}/connection-summary']!.get!['x-permission']).toBe('session.connect');
  });
});
