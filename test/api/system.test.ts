import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from 'node:http';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { createApp } from '../../api/app.js';
import { createLogger } from '../../config/logger.js';
import { Vault, generateKeyring } from '../../db/vault.js';

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
    const res = await p.api('POST', '/api/v1/hosts', { body: { name: 'x', address: 'bad address!', port: 70000, username: 'ok' } });
    expect([res.status, res.body.code]).toEqual([400, 40001]);
    const fields = res.body.errors!.map((e) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['address', 'port', 'password']));
    const junk = await p.api('POST', '/api/v1/hosts', { body: '{"name": ' });
    expect(junk.body.code).toBe(40001);
    expect(junk.body.errors).toEqual([{ field: 'body', message: 'malformed JSON' }]);
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
      const r = await p.api('POST', '/api/v1/hosts', { body: { name: `page host ${i}`, address: '127.0.0.1', username: 'u', password: 'pw' } });
      expect(r.status).toBe(201);
    }
    const page = await p.api('GET', '/api/v1/hosts?page=2&page_size=2');
    expect(page.body.data).toMatchObject({ total: 5, page: 2, page_size: 2, pages: 3 });
    expect(page.body.data.items).toHaveLength(2);
    const dup = await p.api('POST', '/api/v1/hosts', { body: { name: 'page host 0', address: '127.0.0.1', username: 'u', password: 'pw' } });
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

  it('never returns credentials', async () => {
    const r = await p.api('POST', '/api/v1/hosts', { body: { name: 'secretive', address: '127.0.0.1', username: 'u', password: 'Sup3r-Secret-pw' } });
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
