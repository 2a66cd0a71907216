// The audit trail against real databases (PGlite and PostgreSQL) and the real API: the hash chain
// and its triggers, `verify` naming an edited row and a deleted one, the request middleware,
// keyset pagination, streamed CSV/JSON export and the security alert rules.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { appendAudit, recordAudit } from '../../db/audit.js';
import { verifyAuditChain } from '../../db/audit/verify.js';
import { AuditEventSchema, SecurityEventSchema } from '../../db/entities/index.js';

describe.each(DB_KINDS)('audit trail on %s', (kind) => {
  let p: TestPlatform;
  const sql = (q: string, params: unknown[] = []) => p.db.em.fork().getConnection().execute(q, params);

  beforeAll(async () => {
    p = await startTestPlatform({ db: kind, worker: false });
  });
  afterAll(async () => {
    await p?.close();
  });

  it('concurrent appends form one unforked chain that verifies', async () => {
    await Promise.all(Array.from({ length: 40 }, (_, i) => appendAudit(p.db.em, { actor: 'tester', actorType: 'user', actorId: null, action: 'test.concurrent', targetType: 'test', targetId: String(i), detail: { i } })));
    // A data change and its audit row in one transaction: both roll back together (and no seq is burnt).
    await expect(p.db.em.fork().transactional(async (em) => {
      recordAudit(em, { actor: 'tester', action: 'test.rolled-back', targetType: 'test', targetId: 'x' });
      await em.flush();
      throw new Error('boom');
    })).rejects.toThrow('boom');
    const rows = await p.db.em.fork().find(AuditEventSchema, {}, { orderBy: { seq: 'asc' } });
    expect(rows.filter((r) => r.action === 'test.concurrent')).toHaveLength(40);
    expect(rows.some((r) => r.action === 'test.rolled-back')).toBe(false);
    expect(rows.map((r) => Number(r.seq))).toEqual(rows.map((_, i) => i + 1));
    const v = await verifyAuditChain(p.db.em);
    expect(v, JSON.stringify(v.problem)).toMatchObject({ ok: true, checked: rows.length });
  });

  it('the triggers refuse UPDATE, DELETE and TRUNCATE of audit rows and of the chain head', async () => {
    await expect(sql(`update "audit_events" set "actor" = 'mallory'`)).rejects.toThrow(/append-only: UPDATE refused/);
    await expect(sql(`delete from "audit_events"`)).rejects.toThrow(/append-only: DELETE refused/);
    await expect(sql(`truncate "audit_events"`)).rejects.toThrow(/TRUNCATE refused/);
    await expect(sql(`update "audit_chain" set "seq" = 0`)).rejects.toThrow(/audit_chain: UPDATE refused/);
    // The archive switch alone does not open the door: only rows already archived may go.
    await expect(p.db.em.fork().transactional(async (em) => {
      await em.getConnection().execute(`select set_config('hostflow.audit_archive', 'on', true)`, [], 'all', em.getTransactionContext());
      await em.getConnection().execute(`delete from "audit_events"`, [], 'run', em.getTransactionContext());
    })).rejects.toThrow(/DELETE refused/);
    expect((await verifyAuditChain(p.db.em)).ok).toBe(true);
  });

  it('every mutating request is recorded with route template, status and actor; handler rows add before/after; no body, no secret', async () => {
    const made = await p.api('POST', '/api/v1/users', { body: { username: `aud${kind}`, roles: ['requester'] } });
    expect(made.status).toBe(201);
    const denied = await p.api('POST', '/api/v1/users', { body: { username: 'nope', roles: ['admin'] }, token: p.tokens.requester });
    expect(denied.status).toBe(403);
    const badLogin = await p.api('POST', '/api/v1/auth/login', { body: { username: `aud${kind}`, password: 'Not-The-Password-9!' }, token: null });
    expect(badLogin.status).toBe(401);
    const rows = await p.db.em.fork().find(AuditEventSchema, { action: { $like: 'http.%' } }, { orderBy: { seq: 'asc' } });
    const ok = rows.find((r) => r.requestId === made.body.request_id || (r.targetId === 'POST /api/v1/users' && r.result === 'success'))!;
    expect(ok).toMatchObject({ action: 'http.post', targetType: 'route', targetId: 'POST /api/v1/users', result: 'success', actor: 'admin', actorType: 'api_key' });
    expect(ok.detail).toMatchObject({ status: 201, route: '/api/v1/users' });
    expect(ok.userAgent).toBeTruthy();
    expect(ok.ip).toBeTruthy();
    const no = rows.find((r) => r.targetId === 'POST /api/v1/users' && r.result === 'failure')!;
    expect(no).toMatchObject({ actor: 'requester', actorType: 'api_key' });
    expect(no.reason).toMatch(/^403 40301/);
    const login = rows.find((r) => r.targetId === 'POST /api/v1/auth/login')!;
    expect(login).toMatchObject({ actorType: 'anonymous', result: 'failure' });
    // The handler's own row, same request: actor id from the request scope, the created user as `after`.
    const domain = await p.db.em.fork().findOneOrFail(AuditEventSchema, { action: 'user.create', targetId: made.body.data.id });
    expect(domain.actorId).toBe(ok.actorId);
    expect(domain.requestId).toBe(ok.requestId);
    const all = JSON.stringify(await p.db.em.fork().find(AuditEventSchema, {}));
    expect(all).not.toContain(made.body.data.initial_password);
    expect(all).not.toContain('Not-The-Password-9!');
    for (const t of Object.values(p.tokens)) expect(all).not.toContain(t);
  });

  it('repeated 403s raise one repeated_forbidden security event, visible through the API', async () => {
    for (let i = 0; i < 5; i++) expect((await p.api('POST', '/api/v1/users', { body: { username: `x${i}`, roles: ['admin'] }, token: p.tokens.operator })).status).toBe(403);
    const ev = await p.db.em.fork().find(SecurityEventSchema, { kind: 'repeated_forbidden' });
    expect(ev).toHaveLength(1);
    expect(ev[0]).toMatchObject({ username: 'operator', severity: 'medium' });
    const api = await p.api('GET', '/api/v1/security-events?kind=repeated_forbidden');
    expect(api.status).toBe(200);
    expect(api.body.data.items.map((e: { id: string }) => e.id)).toEqual([ev[0]!.id]);
  });

  it('repeated login failures raise login_failures; the login log is listed at /login-events', async () => {
    const made = await p.api('POST', '/api/v1/users', { body: { username: `lf${kind}`, roles: ['requester'] } });
    for (let i = 0; i < 5; i++) await p.api('POST', '/api/v1/auth/login', { body: { username: `lf${kind}`, password: `Wrong-${i}-Password!` }, token: null });
    const ev = await p.db.em.fork().find(SecurityEventSchema, { kind: 'login_failures', username: `lf${kind}` });
    expect(ev).toHaveLength(1);
    expect(ev[0]!.userId).toBe(made.body.data.id);
    const log = await p.api('GET', `/api/v1/login-events?username=lf${kind}&limit=3`);
    expect(log.status).toBe(200);
    expect(log.body.data.items).toHaveLength(3);
    expect(log.body.data.next_cursor).toBeTruthy();
    const rest = await p.api('GET', `/api/v1/login-events?username=lf${kind}&limit=3&cursor=${log.body.data.next_cursor}`);
    expect(rest.body.data.items).toHaveLength(2);
    expect(rest.body.data.next_cursor).toBeNull();
    expect([...log.body.data.items, ...rest.body.data.items].every((e: { kind: string }) => ['login_failure', 'login_locked'].includes(e.kind))).toBe(true);
    expect(new Set([...log.body.data.items, ...rest.body.data.items].map((e: { id: string }) => e.id)).size).toBe(log.body.data.items.length + rest.body.data.items.length);
    expect((await p.api('GET', '/api/v1/login-events', { token: p.tokens.requester })).status).toBe(403);
  });

  it('keyset pagination walks every matching row once, newest first; a bad cursor is 40001', async () => {
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const r: { status: number; body: { data: { items: Array<{ target_id: string }>; next_cursor: string | null } } } = await p.api('GET', `/api/v1/audit-events?action=test.concurrent&limit=7${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      all.push(...r.body.data.items.map((e) => e.target_id));
      cursor = r.body.data.next_cursor;
    } while (cursor);
    expect(all).toHaveLength(40);
    expect(new Set(all).size).toBe(40);
    const prefix = await p.api('GET', '/api/v1/audit-events?action=test.*&result=success&limit=500');
    expect(prefix.body.data.items.length).toBe(40);
    const bad = await p.api('GET', '/api/v1/audit-events?cursor=nonsense');
    expect(bad.status).toBe(400);
    expect(bad.body.errors?.[0]?.field).toBe('cursor');
  });

  it('export streams CSV and JSON (oldest first) and is itself audited', async () => {
    const csv = await fetch(`${p.baseUrl}/api/v1/audit-events/export?format=csv&action=test.concurrent`, { headers: { authorization: `Bearer ${p.tokens.admin}` } });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/text\/csv/);
    const lines = (await csv.text()).trim().split('\n');
    expect(lines[0]).toMatch(/^seq,at,actor,/);
    expect(lines).toHaveLength(41);
    const json = await fetch(`${p.baseUrl}/api/v1/audit-events/export?format=json&action=test.concurrent`, { headers: { authorization: `Bearer ${p.tokens.admin}` } });
    const arr = (await json.json()) as Array<{ at: string; target_id: string; hash: string }>;
    expect(arr).toHaveLength(40);
    expect(arr.map((e) => e.at)).toEqual([...arr.map((e) => e.at)].sort());
    expect(arr.every((e) => /^[0-9a-f]{64}$/.test(e.hash))).toBe(true);
    expect(await p.db.em.fork().count(AuditEventSchema, { action: 'audit.export', actor: 'admin' })).toBe(2);
  });

  it('verify names an edited row, then (after the edit is undone) the gap left by a deleted row', async () => {
    const conn = p.db.em.fork().getConnection();
    const target = await p.db.em.fork().findOneOrFail(AuditEventSchema, { action: 'test.concurrent', targetId: '7' });
    // As the database superuser (the app role in production would lack this right: see the README).
    await conn.execute(`alter table "audit_events" disable trigger "audit_events_guard"`);
    try {
      await conn.execute(`update "audit_events" set "detail" = '{"i": 700}' where "id" = ?`, [target.id]);
      const edited = await verifyAuditChain(p.db.em);
      expect(edited.ok).toBe(false);
      expect(edited.problem).toMatchObject({ kind: 'content_mismatch', seq: Number(target.seq), id: target.id });
      expect(edited.problem!.message).toContain(`row seq ${target.seq}`);
      await conn.execute(`update "audit_events" set "detail" = '{"i": 7}' where "id" = ?`, [target.id]);
      expect((await verifyAuditChain(p.db.em)).ok).toBe(true);

      await conn.execute(`delete from "audit_events" where "id" = ?`, [target.id]);
      const deleted = await verifyAuditChain(p.db.em);
      expect(deleted.problem).toMatchObject({ kind: 'gap', seq: Number(target.seq) });
      expect(deleted.problem!.message).toContain(`row seq ${target.seq} is missing`);
    } finally {
      await conn.execute(`alter table "audit_events" enable trigger "audit_events_guard"`);
    }
  });
});
