// Tenant isolation end to end, host-group scope, PII masking per role, role inheritance, custom
// roles, and the roles API (audited, cache invalidated) — against the real app and database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { createApp, routeTable } from '../../api/app.js';
import { BUILTIN_ROLES } from '../../api/authz/permissions.js';
import { maskEmail, maskPhone } from '../../api/authz/mask.js';
import { createLogger } from '../../config/logger.js';
import { AccountOpeningRequestSchema, AllocationSchema, AuditEventSchema, CustomerSchema, HostGroupSchema, HostSchema, RoleSchema, SshKeySchema, UserSchema } from '../../db/entities/index.js';

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
