// The Temporal Web UI's codec cookie against the real app and the suite's Temporal dev server: a
// console session with temporal.decode sets it (POST /api/v1/temporal/codec/session), the codec
// accepts it only from a Temporal UI origin and only while that login session lives, answers CORS
// with credentials for that exact origin, and every decode through it is audited with the user.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, TEST_UI_ORIGIN, type TestPlatform } from '../helpers/platform.js';
import { AuditEventSchema } from '../../db/entities/index.js';

const CODEC = '/api/v1/temporal/codec';
const secret = 'Alice Codec-Cookie Example';

describe('Temporal Web UI codec cookie', { timeout: 120_000 }, () => {
  let p: TestPlatform;
  let encrypted: unknown;
  const passwords: Record<string, string> = {};

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- loosely typed JSON
  async function call(method: string, path: string, o: { token?: string; cookie?: string; origin?: string; body?: unknown } = {}): Promise<{ status: number; body: any; headers: Headers }> {
    const res = await fetch(p.baseUrl + path, {
      method,
      headers: {
        'content-type': 'application/json',
        ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
        ...(o.cookie ? { cookie: o.cookie } : {}),
        ...(o.origin ? { origin: o.origin } : {}),
      },
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
  }
  async function login(username: string): Promise<string> {
    const r = await call('POST', '/api/v1/auth/login', { body: { username, password: passwords[username] } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.data.access_token as string;
  }
  const cookieFrom = (h: Headers) => h.getSetCookie().find((c) => c.startsWith('hf_codec='));
  const decode = (o: { cookie?: string; origin?: string; token?: string }) => call('POST', `${CODEC}/decode`, { ...o, body: encrypted });

  beforeAll(async () => {
    p = await startTestPlatform({ worker: false });
    for (const [username, role] of [['ui-auditor', 'auditor'], ['ui-viewer', 'viewer']] as const) {
      const made = await p.api('POST', '/api/v1/users', { body: { username, roles: [role] } });
      expect(made.status, JSON.stringify(made.body)).toBe(201);
      const initial = made.body.data.initial_password as string;
      const first = await call('POST', '/api/v1/auth/login', { body: { username, password: initial } });
      passwords[username] = `Codec-Pw-9!${role}-zq`;
      const ch = await call('POST', '/api/v1/auth/password/change', { token: first.body.data.access_token, body: { current_password: initial, new_password: passwords[username] } });
      expect(ch.status, JSON.stringify(ch.body)).toBe(200);
    }
    const plain = { metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: Buffer.from(JSON.stringify({ fullName: secret })).toString('base64') };
    const enc = await call('POST', `${CODEC}/encode`, { token: p.tokens.admin, body: { payloads: [plain] } });
    expect(enc.status).toBe(200);
    expect(Buffer.from(enc.body.payloads[0].data, 'base64').toString('latin1')).not.toContain(secret);
    encrypted = enc.body;
  });
  afterAll(() => p?.close());

  it('a session with temporal.decode gets an httpOnly, SameSite=Strict cookie on the codec path; the UI origin decodes with it (CORS with credentials), audited as the user', async () => {
    const access = await login('ui-auditor');
    const s = await call('POST', `${CODEC}/session`, { token: access });
    expect(s.status, JSON.stringify(s.body)).toBe(200);
    const set = cookieFrom(s.headers)!;
    expect(set).toMatch(/HttpOnly/i);
    expect(set).toMatch(/SameSite=Strict/i);
    expect(set).toMatch(/Path=\/api\/v1\/temporal\/codec(;|$)/);
    expect(new Date(s.body.data.expires_at).getTime()).toBeGreaterThan(Date.now());
    const cookie = set.split(';')[0]!;

    const before = await p.db.em.fork().count(AuditEventSchema, { action: 'temporal.decode', actor: 'ui-auditor' });
    const ok = await decode({ cookie, origin: TEST_UI_ORIGIN });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(JSON.parse(Buffer.from(ok.body.payloads[0].data, 'base64').toString())).toEqual({ fullName: secret });
    expect(ok.headers.get('access-control-allow-origin')).toBe(TEST_UI_ORIGIN);
    expect(ok.headers.get('access-control-allow-credentials')).toBe('true');
    const rows = await p.db.em.fork().find(AuditEventSchema, { action: 'temporal.decode', actor: 'ui-auditor' });
    expect(rows.length).toBe(before + 1);
    expect(rows.at(-1)!.actorType).toBe('user');
    expect(JSON.stringify(rows.at(-1)!.detail)).not.toContain(secret);
    // encode with the cookie too (the UI encodes what it sends in a signal)
    const enc = await call('POST', `${CODEC}/encode`, { cookie, origin: TEST_UI_ORIGIN, body: { payloads: [] } });
    expect(enc.status).toBe(200);
  });

  it('the cookie is refused from another origin, without an Origin, and as an access token; no cookie at all: 401', async () => {
    const access = await login('ui-auditor');
    const cookie = cookieFrom((await call('POST', `${CODEC}/session`, { token: access })).headers)!.split(';')[0]!;
    for (const origin of ['http://evil.test', undefined]) {
      const r = await decode({ cookie, origin });
      expect([r.status, r.body.code], String(origin)).toEqual([401, 40101]);
      expect(r.body.message).toMatch(/Temporal Web UI origin/);
    }
    const none = await decode({ origin: TEST_UI_ORIGIN });
    expect([none.status, none.body.code]).toEqual([401, 40101]);
    // An access token in the cookie is not a codec token (other type and audience), nor the reverse.
    const forged = await decode({ cookie: `hf_codec=${access}`, origin: TEST_UI_ORIGIN });
    expect(forged.status).toBe(401);
    const codecAsBearer = await decode({ token: decodeURIComponent(cookie.slice('hf_codec='.length)) });
    expect(codecAsBearer.status).toBe(401);
    // The cookie does not authenticate anything else on its path (setting a new one needs the session's Bearer).
    const other = await call('POST', `${CODEC}/session`, { cookie, origin: TEST_UI_ORIGIN });
    expect(other.status).toBe(401);
  });

  it('logout and session revocation end the cookie; logout also clears it in the browser', async () => {
    const access = await login('ui-auditor');
    const cookie = cookieFrom((await call('POST', `${CODEC}/session`, { token: access })).headers)!.split(';')[0]!;
    expect((await decode({ cookie, origin: TEST_UI_ORIGIN })).status).toBe(200);
    const out = await call('POST', '/api/v1/auth/logout', { token: access });
    expect(out.status).toBe(200);
    expect(cookieFrom(out.headers)).toMatch(/^hf_codec=;.*Expires=Thu, 01 Jan 1970/);
    const after = await decode({ cookie, origin: TEST_UI_ORIGIN });
    expect([after.status, after.body.code]).toEqual([401, 40101]);

    // Kicked out by an admin (session.manage): the same.
    const access2 = await login('ui-auditor');
    const me = await call('GET', '/api/v1/auth/me', { token: access2 });
    const cookie2 = cookieFrom((await call('POST', `${CODEC}/session`, { token: access2 })).headers)!.split(';')[0]!;
    expect((await decode({ cookie: cookie2, origin: TEST_UI_ORIGIN })).status).toBe(200);
    const kick = await call('DELETE', `/api/v1/sessions/${me.body.data.session_id}`, { token: p.tokens.admin });
    expect(kick.status, JSON.stringify(kick.body)).toBe(200);
    expect((await decode({ cookie: cookie2, origin: TEST_UI_ORIGIN })).status).toBe(401);

    // DELETE clears it without needing the (possibly ended) session.
    const cleared = await call('DELETE', `${CODEC}/session`);
    expect(cleared.status).toBe(200);
    expect(cookieFrom(cleared.headers)).toMatch(/^hf_codec=;/);
  });

  it('a viewer (no temporal.decode) gets no cookie (403); an API key gets 40001 naming authorization', async () => {
    const viewer = await login('ui-viewer');
    const r = await call('POST', `${CODEC}/session`, { token: viewer });
    expect([r.status, r.body.code]).toEqual([403, 40301]);
    expect(cookieFrom(r.headers)).toBeUndefined();
    const key = await call('POST', `${CODEC}/session`, { token: p.tokens.admin });
    expect([key.status, key.body.code, key.body.errors[0].field]).toEqual([400, 40001, 'authorization']);
  });
});
