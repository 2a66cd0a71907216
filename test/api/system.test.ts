import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from 'node:http';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { createApp } from '../../api/app.js';
import { createLogger } from '../../config/logger.js';
import { Vault, generateKeyring } from '../../db/vault.js';
import { AccountOpeningRequestSchema, AuditEventSchema } from '../../db/entities/index.js';

describe('API foundation: envelope, errors, OpenAPI, health', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await startTestPlatform({ worker: false });
  });
  afterAll(() => p?.close());

  it('GET /healthz is up and /readyz checks DB and Temporal', async () => {
    expect((await p.api('GET', '/healthz', { token: null })).body).toEqual({ code: 0, message: 'ok', data: { status: 'up' } });
    const ready = await p.api('GET', '/readyz', { token: null });
    expect(ready.status).toBe(200);
    expect(ready.body.data).toEqual({ status: 'ready', checks: { db: 'ok', temporal: 'ok' } });
  });

  it('serves an OpenAPI 3.1 document generated from the zod schemas, and a docs page', async () => {
    const res = await fetch(`${p.baseUrl}/api/openapi.json`);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: unknown }>>; components: { schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }> } };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/hosts', '/api/v1/hosts/{id}', '/api/v1/hosts/{id}/ping']));
    expect(JSON.stringify(doc.paths['/api/v1/hosts']!.post!.requestBody)).toContain('#/components/schemas/HostCreate');
    expect(Object.keys(doc.components.schemas.HostCreate!.properties!)).toEqual(expect.arrayContaining(['address', 'port', 'password', 'private_key']));
    expect(doc.components.schemas.HostCreate!.required).toEqual(expect.arrayContaining(['name', 'address', 'username']));
    const docs = await fetch(`${p.baseUrl}/api/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('swagger-ui');
  });

  it('the CSV import body is parsed only after authentication and authorization', async () => {
    const bad = '"unterminated,quote\nname,address\n';
    const post = (token?: string) => fetch(`${p.baseUrl}/api/v1/hosts/import`, { method: 'POST', headers: { 'content-type': 'text/csv', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: bad });
    const anon = await post();
    expect([anon.status, ((await anon.json()) as { code: number }).code]).toEqual([401, 40101]);
    const requester = await post(p.tokens.requester);
    expect([requester.status, ((await requester.json()) as { code: number }).code]).toEqual([403, 40301]);
    const admin = await post(p.tokens.admin);
    expect([admin.status, ((await admin.json()) as { errors: Array<{ field: string }> }).errors[0]!.field]).toEqual([400, 'body']);
  });

  it('401 (40101) without or with a bad token; 403 (40301) without the role', async () => {
    const none = await p.api('GET', '/api/v1/hosts', { token: null });
    expect([none.status, none.body.code]).toEqual([401, 40101]);
    const bad = await p.api('GET', '/api/v1/hosts', { token: 'hf_not-a-token' });
    expect([bad.status, bad.body.code]).toEqual([401, 40101]);
    const forbidden = await p.api('POST', '/api/v1/hosts', { token: p.tokens.requester, body: {} });
    expect([forbidden.status, forbidden.body.code]).toEqual([403, 40301]);
  });

  it('400 (40001) names every bad field; malformed JSON names the body', async () => {
    const res = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: 'x', address: 'bad address!', port: 70000, username: 'ok' } });
    expect([res.status, res.body.code]).toEqual([400, 40001]);
    const fields = res.body.errors!.map((e) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['address', 'port', 'password']));
    const junk = await p.api('POST', '/api/v1/hosts', { body: '{"name": ' });
    expect(junk.body.code).toBe(40001);
    expect(junk.body.errors).toEqual([{ field: 'body', message: 'malformed JSON' }]);
    // U+0000 cannot be stored by PostgreSQL: refused naming the field, not a 500.
    const nul = await p.api('POST', '/api/v1/env-templates', { body: { name: 'tpl', steps: [{ name: 's', check: 'true\u0000', command: 'true' }] } });
    expect([nul.status, nul.body.errors?.[0]?.field]).toEqual([400, 'steps.0.check']);
    const q = await p.api('GET', '/api/v1/hosts?page_size=0');
    expect(q.body.errors?.[0]?.field).toBe('page_size');
  });

  it('404 (40401) for unknown routes and records', async () => {
    const r = await p.api('GET', '/api/v1/nope');
    expect([r.status, r.body.code]).toEqual([404, 40401]);
    const h = await p.api('GET', '/api/v1/hosts/00000000-0000-4000-8000-000000000000');
    expect([h.status, h.body.code, h.body.message]).toEqual([404, 40401, 'host not found']);
  });

  it('paginates lists as {items,total,page,page_size,pages}', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: `page host ${i}`, address: '127.0.0.1', username: 'u', password: 'pw' } });
      expect(r.status).toBe(201);
    }
    const page = await p.api('GET', '/api/v1/hosts?page=2&page_size=2');
    expect(page.body.data).toMatchObject({ total: 5, page: 2, page_size: 2, pages: 3 });
    expect(page.body.data.items).toHaveLength(2);
    const dup = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: 'page host 0', address: '127.0.0.1', username: 'u', password: 'pw' } });
    expect([dup.status, dup.body.code]).toEqual([409, 40901]);
  });

  it('creates users with a one-time initial password that must be changed, and only admins may', async () => {
    const made = await p.api('POST', '/api/v1/users', { body: { username: 'carol', roles: ['requester'] } });
    expect(made.status).toBe(201);
    const initial = made.body.data.initial_password as string;
    expect(made.body.data).not.toHaveProperty('api_token');
    const login = await p.api('POST', '/api/v1/auth/login', { token: null, body: { username: 'carol', password: initial } });
    expect(login.status, JSON.stringify(login.body)).toBe(200);
    expect(login.body.data.restricted).toBe('password_change');
    const token = login.body.data.access_token as string;
    const blocked = await p.api('GET', '/api/v1/hosts', { token });
    expect([blocked.status, blocked.body.code]).toEqual([403, 40302]);
    expect((await p.api('POST', '/api/v1/auth/password/change', { token, body: { current_password: initial, new_password: 'Second-Pass-2024!' } })).status).toBe(200);
    expect((await p.api('GET', '/api/v1/hosts', { token })).status).toBe(200);
    expect((await p.api('POST', '/api/v1/users', { token, body: { username: 'dave', roles: ['admin'] } })).status).toBe(403);
    expect(JSON.stringify((await p.api('GET', '/api/v1/users')).body)).not.toContain(initial);
    expect((await p.api('POST', '/api/v1/users', { body: { username: 'carol', roles: ['requester'] } })).status).toBe(409);
  });

  it('POST /hosts refuses unknown fields, a private_key that is not a key, and the same machine twice (409 naming it)', async () => {
    const unknown = await p.api('POST', '/api/v1/hosts', { body: { name: 'strict', address: '10.9.9.9', username: 'u', password: 'pw', colour: 'red' } });
    expect([unknown.status, unknown.body.code, unknown.body.errors]).toEqual([400, 40001, [{ field: 'colour', message: 'unknown field' }]]);
    const notKey = await p.api('POST', '/api/v1/hosts', { body: { name: 'notkey', address: '10.9.9.9', username: 'u', private_key: 'not a key' } });
    expect([notKey.status, notKey.body.errors?.[0]?.field]).toEqual([400, 'private_key']);
    const first = await p.api('POST', '/api/v1/hosts', { body: { name: 'machine a', address: '10.9.9.9', port: 2200, username: 'u', password: 'pw' } });
    expect(first.status).toBe(201);
    const again = await p.api('POST', '/api/v1/hosts', { body: { name: 'machine b', address: '10.9.9.9', port: 2200, username: 'u', password: 'pw' } });
    expect([again.status, again.body.code]).toEqual([409, 40901]);
    expect(again.body.message).toContain('already registered as host "machine-a"');
    expect(again.body.data).toEqual({ existing_host_id: first.body.data.id, existing_host_slug: 'machine-a' });
    const otherPort = await p.api('POST', '/api/v1/hosts', { body: { name: 'machine c', address: '10.9.9.9', port: 2201, username: 'u', password: 'pw' } });
    expect(otherPort.status).toBe(201);
    const forced = await p.api('POST', '/api/v1/hosts', { body: { name: 'machine d', address: '10.9.9.9', port: 2200, username: 'u', password: 'pw', allow_duplicate_address: true } });
    expect(forced.status).toBe(201);
    const imp = await p.api('POST', '/api/v1/hosts/import', { body: { hosts: [{ name: 'imp 1', address: '10.9.9.9', port: 2200, username: 'u', password: 'pw' }] } });
    expect([imp.status, imp.body.code]).toEqual([409, 40901]);
    expect(imp.body.message).toContain('hosts.0: 10.9.9.9:2200 is already registered');
  });

  it('an unsupported method on a served path answers 405 with Allow, not 404', async () => {
    const res = await fetch(`${p.baseUrl}/api/v1/hosts`, { method: 'PUT', headers: { authorization: `Bearer ${p.tokens.admin}` } });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, POST');
    expect(((await res.json()) as { code: number }).code).toBe(40501);
    const byId = await fetch(`${p.baseUrl}/api/v1/hosts/00000000-0000-4000-8000-000000000000`, { method: 'PUT', headers: { authorization: `Bearer ${p.tokens.admin}` } });
    expect(byId.status).toBe(405);
    expect(byId.headers.get('allow')).toContain('GET');
    expect((await p.api('GET', '/api/v1/nope')).status).toBe(404);
    // A literal path is not taken for `/hosts/{id}`: GET /hosts/onboard is 405 (Allow: POST), not a 400 about a uuid.
    const onboard = await fetch(`${p.baseUrl}/api/v1/hosts/onboard`, { headers: { authorization: `Bearer ${p.tokens.admin}` } });
    expect([onboard.status, onboard.headers.get('allow')]).toEqual([405, 'POST']);
    const options = await fetch(`${p.baseUrl}/api/v1/hosts/import`, { method: 'OPTIONS' });
    expect([options.status, options.headers.get('allow')]).toEqual([204, 'POST']);
  });

  it('the OpenAPI document is honest: valid patterns, required bodies, 404/409 documented, closed bodies, bounded page', async () => {
    type Op = { requestBody?: { required?: boolean }; responses: Record<string, unknown>; parameters?: Array<{ name: string; in: string; schema: { maximum?: number } }> };
    const doc = (await (await fetch(`${p.baseUrl}/api/openapi.json`)).json()) as { paths: Record<string, Record<string, Op>>; components: { schemas: Record<string, Record<string, unknown>> } };
    const patterns: string[] = [];
    JSON.stringify(doc, (k, v) => (k === 'pattern' && typeof v === 'string' && patterns.push(v), v));
    expect(patterns.length).toBeGreaterThan(10);
    for (const pat of patterns) {
      expect(pat, pat).not.toMatch(/\/[a-z]+$/);
      expect(() => new RegExp(pat, 'u'), pat).not.toThrow();
    }
    expect(doc.paths['/api/v1/hosts']!.post!.requestBody!.required).toBe(true);
    expect(doc.paths['/api/v1/account-openings/{id}/approve']!.post!.requestBody!.required).toBe(false); // notes are optional
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (path.includes('{')) expect(Object.keys(op.responses), `${method} ${path}`).toContain('404');
        if (method !== 'get') expect(Object.keys(op.responses), `${method} ${path}`).toContain('409');
      }
    }
    expect(doc.components.schemas.HostCreate).toMatchObject({ additionalProperties: false, anyOf: [{ required: ['password'] }, { required: ['private_key'] }] });
    expect(doc.components.schemas.HostImport).toMatchObject({ properties: { hosts: { items: { $ref: '#/components/schemas/HostCreate' } } } });
    const page = doc.paths['/api/v1/hosts']!.get!.parameters!.find((x) => x.name === 'page')!;
    expect(page.schema.maximum).toBe(1_000_000);
    const tooFar = await p.api('GET', '/api/v1/hosts?page=1000001');
    expect([tooFar.status, tooFar.body.errors?.[0]?.field]).toEqual([400, 'page']);
  });

  it('GET /customers/<unknown>/users answers 40401, as POST does', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    const get = await p.api('GET', `/api/v1/customers/${unknown}/users`);
    const post = await p.api('POST', `/api/v1/customers/${unknown}/users`, { body: { username: 'nobody', email: 'n@example.com' } });
    expect([get.status, get.body.code, get.body.message]).toEqual([404, 40401, 'customer not found']);
    expect(post.body.code).toBe(40401);
  });

  it('PATCH /hosts/:id edits and audits before/after; DELETE retires (refused while a request is open), deletes credentials, audited', async () => {
    const h = await p.api('POST', '/api/v1/hosts', { body: { name: 'to retire', address: '10.8.8.8', username: 'u', password: 'pw' } });
    const id = h.body.data.id as string;
    const edit = await p.api('PATCH', `/api/v1/hosts/${id}`, { body: { name: 'renamed', tags: ['x'] } });
    expect([edit.status, edit.body.data.name, edit.body.data.tags]).toEqual([200, 'renamed', ['x']]);
    expect((await p.api('PATCH', `/api/v1/hosts/${id}`, { body: { name: 'renamed', address: '1.2.3.4' } })).body.errors).toEqual([{ field: 'address', message: 'unknown field' }]);
    const audits = await p.db.em.fork().find(AuditEventSchema, { targetId: id, action: 'host.update' });
    expect(audits[0]!.detail).toEqual({ before: { name: 'to retire', tags: [] }, after: { name: 'renamed', tags: ['x'] } });

    const em = p.db.em.fork();
    const req = em.create(AccountOpeningRequestSchema, { applicant: p.users.requester, contactEmail: 'a@example.com', username: 'someone', fullName: 'S', host: id, groups: [], isAdmin: false, workflowId: 'account-opening/x', expiresAt: new Date(Date.now() + 86_400_000) });
    await em.flush();
    const refused = await p.api('DELETE', `/api/v1/hosts/${id}`);
    expect([refused.status, refused.body.code]).toEqual([409, 40901]);
    expect(refused.body.message).toContain('open account request');
    await p.db.em.fork().nativeUpdate(AccountOpeningRequestSchema, { id: req.id }, { status: 'withdrawn' });
    const retired = await p.api('DELETE', `/api/v1/hosts/${id}`);
    expect([retired.status, retired.body.data]).toEqual([200, { id, slug: 'to-retire', deleted: false }]); // history refers to it: kept, offline
    expect((await p.api('GET', `/api/v1/hosts/${id}`)).body.data).toMatchObject({ status: 'offline', has_credentials: false });
    const lone = await p.api('POST', '/api/v1/hosts', { body: { name: 'lone', address: '10.8.8.9', username: 'u', password: 'pw' } });
    expect((await p.api('DELETE', `/api/v1/hosts/${lone.body.data.id}`)).body.data.deleted).toBe(true);
    expect((await p.api('GET', `/api/v1/hosts/${lone.body.data.id}`)).status).toBe(404);
    expect(await p.db.em.fork().count(AuditEventSchema, { action: 'host.retire' })).toBe(2);
    expect((await p.api('DELETE', `/api/v1/hosts/${lone.body.data.id}`, { token: p.tokens.operator })).status).toBe(403);
  });

  it('PATCH /customers/:id edits (not the code) and audits before/after', async () => {
    const c = await p.api('POST', '/api/v1/customers', { body: { name: 'Acme', code: 'acme-edit' } });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    const edit = await p.api('PATCH', `/api/v1/customers/${c.body.data.id}`, { body: { name: 'Acme AI', contact_email: 'ops@acme.example' } });
    expect([edit.status, edit.body.data.name, edit.body.data.contact_email, edit.body.data.code]).toEqual([200, 'Acme AI', 'ops@acme.example', 'acme-edit']);
    expect((await p.api('PATCH', `/api/v1/customers/${c.body.data.id}`, { body: { name: 'Acme AI', code: 'other' } })).body.errors).toEqual([{ field: 'code', message: 'unknown field' }]);
    expect((await p.api('PATCH', '/api/v1/customers/00000000-0000-4000-8000-000000000000', { body: { name: 'x' } })).status).toBe(404);
    const [audit] = await p.db.em.fork().find(AuditEventSchema, { targetId: c.body.data.id, action: 'customer.update' });
    expect(audit!.detail).toEqual({ before: { name: 'Acme', contact_email: null }, after: { name: 'Acme AI', contact_email: 'ops@acme.example' } });
  });

  it('never returns credentials', async () => {
    const r = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: 'secretive', address: '127.0.0.1', username: 'u', password: 'Sup3r-Secret-pw' } });
    const text = JSON.stringify(r.body) + JSON.stringify((await p.api('GET', `/api/v1/hosts/${r.body.data.id}`)).body) + JSON.stringify((await p.api('GET', '/api/v1/hosts')).body);
    expect(text).not.toContain('Sup3r-Secret-pw');
    expect(r.body.data.has_credentials).toBe(true);
  });
});

describe('50001', () => {
  it('answers an internal error with a request id and no stack or message detail', async () => {
    const lines: string[] = [];
    const app = createApp({
      em: { fork: () => { throw new Error('db exploded at /secret/path'); } } as never,
      vault: new Vault(generateKeyring()),
      logger: createLogger({ level: 'error', destination: { write: (l: string) => void lines.push(l) } }),
      temporal: { client: {} as never, taskQueue: 'x' },
      settings: { accountOpeningExpiryDays: 7 },
      checks: { db: async () => undefined, temporal: async () => undefined },
    });
    const server = await new Promise<Server>((r) => { const s = app.listen(0, '127.0.0.1', () => r(s)); });
    const { port } = server.address() as { port: number };
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/hosts`, { headers: { authorization: 'Bearer hf_whatever' } });
    const body = (await res.json()) as { code: number; message: string; request_id: string };
    server.close();
    expect(res.status).toBe(500);
    expect(body.code).toBe(50001);
    expect(body.request_id).toMatch(/[0-9a-f-]{36}/);
    expect(JSON.stringify(body)).not.toMatch(/exploded|secret|at /);
    expect(lines.join('')).toContain(body.request_id);
    expect(lines.join('')).not.toContain('hf_whatever');
  });

  it('/readyz is public and answers status words only: a failing probe is "unreachable", its raw error only in the log', async () => {
    const lines: string[] = [];
    const app = createApp({
      em: {} as never,
      vault: new Vault(generateKeyring()),
      logger: createLogger({ level: 'warn', destination: { write: (l: string) => void lines.push(l) } }),
      temporal: { client: {} as never, taskQueue: 'x' },
      settings: { accountOpeningExpiryDays: 7 },
      checks: {
        db: async () => {
          throw new Error('connect ECONNREFUSED 10.1.2.3:5432 postgres://hostflow:s3cret-pw@db.internal/hostflow');
        },
        temporal: async () => undefined,
      },
    });
    const server = await new Promise<Server>((r) => { const s = app.listen(0, '127.0.0.1', () => r(s)); });
    const { port } = server.address() as { port: number };
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    const body = (await res.json()) as { code: number; data: unknown };
    server.close();
    expect(res.status).toBe(503);
    expect(body.data).toEqual({ status: 'not-ready', checks: { db: 'unreachable', temporal: 'ok' } });
    expect(JSON.stringify(body)).not.toMatch(/ECONNREFUSED|s3cret|10\.1\.2\.3|db\.internal/);
    expect(lines.join('')).toContain('ECONNREFUSED');
  });
});
