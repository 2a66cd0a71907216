// PATCH /api/v1/users/:id against the real app on both databases: edits with before/after audit,
// validation naming the field, the permission, no escalation, no self-service of roles, the last
// admin kept, and disabling that ends access at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { DB_KINDS, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { AuditEventSchema } from '../../db/entities/index.js';

const uniq = (p: string) => `${p}${randomBytes(3).toString('hex')}`;

describe.each(DB_KINDS)('PATCH /api/v1/users/:id on %s', (kind) => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await startTestPlatform({ db: kind, worker: false });
  });
  afterAll(async () => {
    await p?.close();
  });

  const mk = async (roles: string[], extra: Record<string, unknown> = {}) => {
    const r = await p.api('POST', '/api/v1/users', { body: { username: uniq('u'), roles, ...extra } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.data as { id: string; username: string };
  };

  it('edits e-mail, name, time zone and roles; answers the new state; one audit row with before/after', async () => {
    const u = await mk(['requester'], { email: 'old@example.com' });
    const r = await p.api('PATCH', `/api/v1/users/${u.id}`, { body: { email: 'new@example.com', full_name: 'Re Named', timezone: 'Asia/Shanghai', roles: ['requester', 'viewer'] } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.data).toMatchObject({ id: u.id, username: u.username, email: 'new@example.com', full_name: 'Re Named', timezone: 'Asia/Shanghai', roles: ['requester', 'viewer'], disabled: false });
    const listed = (await p.api('GET', '/api/v1/users?page_size=200')).body.data.items.find((x: { id: string }) => x.id === u.id);
    expect(listed).toMatchObject({ email: 'new@example.com', full_name: 'Re Named', roles: ['requester', 'viewer'] });

    const rows = await p.db.em.fork().find(AuditEventSchema, { action: 'user.update', targetId: u.id });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.before).toEqual({ email: 'old@example.com', full_name: null, timezone: null, roles: ['requester'] });
    expect(rows[0]!.after).toEqual({ email: 'new@example.com', full_name: 'Re Named', timezone: 'Asia/Shanghai', roles: ['requester', 'viewer'] });
    expect(rows[0]!.actor).toBe('admin');

    // The new role works on the next request (JWTs and keys carry no roles).
    const key = await p.tokenFor(u.id);
    expect((await p.api('GET', '/api/v1/account-openings/stats', { token: key })).status).toBe(200);
  });

  it('bad input is 40001 naming the field, and nothing changes', async () => {
    const u = await mk(['requester']);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ timezone: 'Mars/Olympus_Mons' }, 'timezone'],
      [{ email: 'not-an-email' }, 'email'],
      [{ username: 'renamed' }, 'username'], // the username is not editable: an unknown field
      [{}, 'body'],
      [{ roles: [] }, 'roles'],
      [{ roles: ['requester', 'no-such-role'] }, 'roles.1'],
      [{ roles: ['customer_member'] }, 'roles.0'], // staff do not get a customer's roles
      [{ full_name: 'a\u0007b' }, 'full_name'],
      [{ disabled: 'yes' }, 'disabled'],
    ];
    for (const [body, field] of cases) {
      const r = await p.api('PATCH', `/api/v1/users/${u.id}`, { body });
      expect(r.body.code, `${JSON.stringify(body)} → ${JSON.stringify(r.body)}`).toBe(40001);
      expect(r.body.errors?.map((e) => e.field), JSON.stringify(body)).toContain(field);
    }
    const badId = await p.api('PATCH', '/api/v1/users/not-a-uuid', { body: { full_name: 'x' } });
    expect(badId.body.errors?.map((e) => e.field)).toContain('id');
    expect((await p.api('PATCH', `/api/v1/users/${crypto.randomUUID()}`, { body: { full_name: 'x' } })).body.code).toBe(40401);
    const after = (await p.api('GET', '/api/v1/users?page_size=200')).body.data.items.find((x: { id: string }) => x.id === u.id);
    expect(after).toMatchObject({ roles: ['requester'], timezone: null, full_name: null });
    expect(await p.db.em.fork().count(AuditEventSchema, { action: 'user.update', targetId: u.id })).toBe(0);
  });

  it("a customer's person keeps customer roles", async () => {
    const c = await p.api('POST', '/api/v1/customers', { body: { name: 'Patch Co', code: uniq('pc'), contact_email: 'ops@patch.example' } });
    const cu = await p.api('POST', `/api/v1/customers/${c.body.data.id}/users`, { body: { username: uniq('cu'), email: 'cu@patch.example' } });
    expect(cu.status, JSON.stringify(cu.body)).toBe(201);
    const id = cu.body.data.id as string;
    const up = await p.api('PATCH', `/api/v1/users/${id}`, { body: { roles: ['customer_owner'] } });
    expect(up.status, JSON.stringify(up.body)).toBe(200);
    expect(up.body.data).toMatchObject({ roles: ['customer_owner'], customer_id: c.body.data.id });
    const esc = await p.api('PATCH', `/api/v1/users/${id}`, { body: { roles: ['customer_owner', 'admin'] } });
    expect(esc.body.code).toBe(40001);
    expect(esc.body.errors?.map((e) => e.field)).toEqual(['roles.1']);
  });

  it('needs user.write; nobody grants what they do not hold, changes their own roles or disables themselves; the last admin stays', async () => {
    const target = await mk(['requester']);
    for (const who of ['operator', 'approver', 'requester'] as const) {
      const r = await p.api('PATCH', `/api/v1/users/${target.id}`, { token: p.tokens[who], body: { full_name: 'x' } });
      expect(r.status, who).toBe(403);
    }
    // A user manager (user.write and user.read, nothing else) may edit, but not hand out admin.
    const role = uniq('usermgr');
    expect((await p.api('POST', '/api/v1/roles', { body: { name: role, permissions: ['user.write', 'user.read'] } })).status).toBe(201);
    const mgr = await mk([role]);
    const mgrKey = await p.tokenFor(mgr.id);
    expect((await p.api('PATCH', `/api/v1/users/${target.id}`, { token: mgrKey, body: { full_name: 'By Manager' } })).status).toBe(200);
    const esc = await p.api('PATCH', `/api/v1/users/${target.id}`, { token: mgrKey, body: { roles: ['admin'] } });
    expect(esc.status).toBe(403);
    expect(esc.body.message).toMatch(/permissions you do not hold/);

    const self = await p.api('PATCH', `/api/v1/users/${p.users.admin}`, { body: { roles: ['admin'] } });
    expect(self.status).toBe(403);
    expect((await p.api('PATCH', `/api/v1/users/${p.users.admin}`, { body: { disabled: true } })).status).toBe(403);
    expect((await p.api('PATCH', `/api/v1/users/${p.users.admin}`, { body: { full_name: 'The Admin' } })).status).toBe(200); // own profile: fine

    // The seeded admin is the only enabled admin: the manager may not take admin away from it, nor disable it.
    const last = await p.api('PATCH', `/api/v1/users/${p.users.admin}`, { token: mgrKey, body: { roles: ['approver', 'operator'] } });
    expect(last.status, JSON.stringify(last.body)).toBe(409);
    expect(last.body.message).toMatch(/last enabled admin/);
    expect((await p.api('PATCH', `/api/v1/users/${p.users.admin}`, { token: mgrKey, body: { disabled: true } })).status).toBe(409);
    expect((await p.api('GET', '/api/v1/users?page_size=200')).status).toBe(200); // the admin still works
  });

  it('disabled: true stops the user at once (API key 401, sessions ended); false lets them back in', async () => {
    const u = await mk(['requester']);
    const key = await p.tokenFor(u.id);
    expect((await p.api('GET', '/api/v1/hosts', { token: key })).status).toBe(200);
    const off = await p.api('PATCH', `/api/v1/users/${u.id}`, { body: { disabled: true } });
    expect(off.status, JSON.stringify(off.body)).toBe(200);
    expect(off.body.data.disabled).toBe(true);
    expect((await p.api('GET', '/api/v1/hosts', { token: key })).status).toBe(401);
    const on = await p.api('PATCH', `/api/v1/users/${u.id}`, { body: { disabled: false } });
    expect(on.body.data.disabled).toBe(false);
    expect((await p.api('GET', '/api/v1/hosts', { token: key })).status).toBe(200);
    const rows = await p.db.em.fork().find(AuditEventSchema, { action: 'user.update', targetId: u.id }, { orderBy: { seq: 'asc' } });
    expect(rows.map((r) => r.after)).toEqual([{ disabled: true }, { disabled: false }]);
  });
});
