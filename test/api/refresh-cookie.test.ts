// The console's refresh token as an httpOnly, SameSite=Strict cookie on the refresh path, against
// the real app: opt-in per request, rotation, CSRF header and Origin checks, reuse → reason,
// logout clears it; JSON clients are unchanged. Also the console's static serving and CSP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { get as httpGet, type Server } from 'node:http';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { precompressAssets } from '../../scripts/build-web.js';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { createApp } from '../../api/app.js';
import { createLogger } from '../../config/logger.js';
import type { AppDeps } from '../../api/deps.js';

const COOKIE = { 'x-hostflow-refresh': 'cookie' };

describe('refresh token cookie', () => {
  let p: TestPlatform;
  let user: { username: string; password: string };
  beforeAll(async () => {
    p = await startTestPlatform({ worker: false });
    const made = await p.api('POST', '/api/v1/users', { body: { username: 'cookie-user', roles: ['viewer'] } });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const initial = made.body.data.initial_password as string;
    const first = await post('/api/v1/auth/login', { username: 'cookie-user', password: initial });
    const password = 'Cookie-Pw-9!zQ-long';
    const ch = await fetch(`${p.baseUrl}/api/v1/auth/password/change`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${first.body.data.access_token}` }, body: JSON.stringify({ current_password: initial, new_password: password }) });
    expect(ch.status).toBe(200);
    user = { username: 'cookie-user', password };
  });
  afterAll(async () => p?.close());

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read loosely typed JSON
  async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; setCookie: string[] }> {
    const res = await fetch(p.baseUrl + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    return { status: res.status, body: await res.json(), setCookie: res.headers.getSetCookie() };
  }
  const cookieOf = (setCookie: string[]) => {
    const c = setCookie.find((s) => s.startsWith('hf_refresh='));
    expect(c, 'Set-Cookie hf_refresh').toBeDefined();
    return c!;
  };
  const valueOf = (c: string) => c.split(';')[0]!;

  it('JSON clients: unchanged (token in the body, no cookie)', async () => {
    const r = await post('/api/v1/auth/login', user);
    expect(r.status).toBe(200);
    expect(r.body.data.refresh_token).toMatch(/\S{20,}/);
    expect(r.setCookie.filter((s) => s.startsWith('hf_refresh='))).toEqual([]);
    const r2 = await post('/api/v1/auth/refresh', { refresh_token: r.body.data.refresh_token });
    expect(r2.status).toBe(200);
    expect(r2.body.data.refresh_token).not.toBe(r.body.data.refresh_token);
  });

  it('cookie mode: httpOnly, SameSite=Strict, path /api/v1/auth/refresh, not in the body; rotates; CSRF header and Origin checked; reuse ends the session with a reason', async () => {
    const r = await post('/api/v1/auth/login', user, COOKIE);
    expect(r.status).toBe(200);
    expect(r.body.data.refresh_token).toBeUndefined();
    const c1 = cookieOf(r.setCookie);
    expect(c1).toMatch(/HttpOnly/i);
    expect(c1).toMatch(/SameSite=Strict/i);
    expect(c1).toMatch(/Path=\/api\/v1\/auth\/refresh(;|$)/);

    // Without the CSRF header, or from another origin: refused, nothing rotated.
    const noCsrf = await post('/api/v1/auth/refresh', {}, { ...COOKIE, cookie: valueOf(c1) });
    expect([noCsrf.status, noCsrf.body.code]).toEqual([403, 40301]);
    const crossSite = await post('/api/v1/auth/refresh', {}, { ...COOKIE, cookie: valueOf(c1), 'x-hostflow-csrf': '1', origin: 'https://evil.example' });
    expect([crossSite.status, crossSite.body.code]).toEqual([403, 40301]);
    // No cookie and no body token: 40001 naming the field.
    const none = await post('/api/v1/auth/refresh', {}, { ...COOKIE, 'x-hostflow-csrf': '1' });
    expect([none.status, none.body.code, none.body.errors?.[0]?.field]).toEqual([400, 40001, 'refresh_token']);

    const r2 = await post('/api/v1/auth/refresh', {}, { ...COOKIE, cookie: valueOf(c1), 'x-hostflow-csrf': '1', origin: p.baseUrl });
    expect(r2.status, JSON.stringify(r2.body)).toBe(200);
    expect(r2.body.data.access_token).toBeTruthy();
    expect(r2.body.data.refresh_token).toBeUndefined();
    const c2 = cookieOf(r2.setCookie);
    expect(valueOf(c2)).not.toBe(valueOf(c1));

    // Presenting the first (used) cookie again: reuse → the session ends, data.reason says so, the cookie is cleared.
    const reuse = await post('/api/v1/auth/refresh', {}, { ...COOKIE, cookie: valueOf(c1), 'x-hostflow-csrf': '1' });
    expect([reuse.status, reuse.body.code, reuse.body.data?.reason]).toEqual([401, 40101, 'refresh_reuse']);
    expect(cookieOf(reuse.setCookie)).toMatch(/Expires=Thu, 01 Jan 1970/);
    const after = await post('/api/v1/auth/refresh', {}, { ...COOKIE, cookie: valueOf(c2), 'x-hostflow-csrf': '1' });
    expect([after.status, after.body.data?.reason]).toEqual([401, 'refresh_reuse']);
  });

  it('a kicked-out session: the access token and the refresh cookie answer 401 with reason "kicked"; logout clears the cookie', async () => {
    const r = await post('/api/v1/auth/login', user, COOKIE);
    const sid = r.body.data.session_id as string;
    expect((await p.api('DELETE', `/api/v1/sessions/${sid}`)).status).toBe(200);
    const me = await fetch(`${p.baseUrl}/api/v1/auth/me`, { headers: { authorization: `Bearer ${r.body.data.access_token}` } });
    const meBody = (await me.json()) as { code: number; data: { reason?: string } | null };
    expect([me.status, meBody.code, meBody.data?.reason]).toEqual([401, 40101, 'kicked']);
    const rr = await post('/api/v1/auth/refresh', {}, { ...COOKIE, cookie: valueOf(cookieOf(r.setCookie)), 'x-hostflow-csrf': '1' });
    expect([rr.status, rr.body.data?.reason]).toEqual([401, 'kicked']);

    const l = await post('/api/v1/auth/login', user, COOKIE);
    const out = await fetch(`${p.baseUrl}/api/v1/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${l.body.data.access_token}` } });
    expect(out.status).toBe(200);
    expect(cookieOf(out.headers.getSetCookie())).toMatch(/Expires=Thu, 01 Jan 1970/);
  });
});

const BIG_JS = Array.from({ length: 400 }, (_, i) => `export const v${i} = ${JSON.stringify('value ' + i)};`).join('\n');

/** A raw GET (no automatic decoding) with the given Accept-Encoding. */
function rawGet(url: string, acceptEncoding?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    httpGet(url, { headers: acceptEncoding ? { 'accept-encoding': acceptEncoding } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

describe('serving the console', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    const dist = await mkdtemp(join(tmpdir(), 'hf-console-'));
    await mkdir(join(dist, 'assets'));
    await writeFile(join(dist, 'index.html'), '<!doctype html><title>console</title><script type="module" src="/assets/app.js"></script>');
    await writeFile(join(dist, 'assets', 'app.js'), 'console.log(1)');
    await writeFile(join(dist, 'assets', 'big-abc123.js'), BIG_JS);
    expect((await precompressAssets(join(dist, 'assets'))).files).toBe(1); // app.js is under 1 KiB
    const inert = new Proxy({}, { get: () => { throw new Error('not used'); } });
    const app = createApp({
      em: inert as AppDeps['em'], vault: inert as AppDeps['vault'], logger: createLogger({ level: 'silent' }),
      temporal: { client: inert as AppDeps['temporal']['client'], taskQueue: 'x' }, settings: { accountOpeningExpiryDays: 7 },
      checks: { db: async () => undefined, temporal: async () => undefined },
      console: { distDir: dist, temporalUi: { url: 'http://localhost:8233', namespace: 'default' } },
    });
    server = await new Promise<Server>((r) => { const s = app.listen(0, '127.0.0.1', () => r(s)); });
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => server?.close());

  it('index.html at / and at client-side routes, with a CSP that allows no inline script; assets cached; the API keeps /api', async () => {
    for (const path of ['/', '/hosts/123', '/account-openings']) {
      const res = await fetch(base + path, { headers: { accept: 'text/html' } });
      expect(res.status, path).toBe(200);
      expect(await res.text()).toContain('<title>console</title>');
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toMatch(/script-src 'self'( 'wasm-unsafe-eval')?(;|$)/);
      expect(csp).not.toMatch(/script-src[^;]*'unsafe-(inline|eval)'/);
      expect(csp).toMatch(/frame-ancestors 'none'/);
    }
    const asset = await fetch(`${base}/assets/app.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toMatch(/immutable/);
    expect((await fetch(`${base}/assets/missing.js`)).status).toBe(404);
    const api = await fetch(`${base}/api/v1/nope`, { headers: { accept: 'text/html' } });
    expect(api.status).toBe(404);
    expect(((await api.json()) as { code: number }).code).toBe(40401);
    const cfg = (await (await fetch(`${base}/console-config.json`)).json()) as { temporal_ui: { url: string } };
    expect(cfg.temporal_ui.url).toBe('http://localhost:8233');
  });

  it('hashed assets precompressed (brotli, else gzip, else as they are) with a year of immutable cache; JSON compressed per request', async () => {
    const br = await rawGet(`${base}/assets/big-abc123.js`, 'gzip, deflate, br');
    expect(br.status).toBe(200);
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers['content-type']).toMatch(/javascript/);
    expect(br.headers['cache-control']).toMatch(/max-age=31536000.*immutable|immutable.*max-age=31536000/);
    expect(br.headers.vary).toMatch(/Accept-Encoding/i);
    expect(br.body.length).toBeLessThan(BIG_JS.length / 3);
    expect(brotliDecompressSync(br.body).toString()).toBe(BIG_JS);
    const gz = await rawGet(`${base}/assets/big-abc123.js`, 'gzip');
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.body).toString()).toBe(BIG_JS);
    const plain = await rawGet(`${base}/assets/big-abc123.js`);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.toString()).toBe(BIG_JS);
    // no traversal out of assets through the precompressed lookup
    expect((await rawGet(`${base}/assets/..%2Findex.html`, 'br')).headers['content-encoding']).toBeUndefined();
    // the API's JSON (the OpenAPI document is well over the 1 KiB threshold)
    const doc = await rawGet(`${base}/api/openapi.json`, 'br');
    expect(doc.status).toBe(200);
    expect(doc.headers['content-encoding']).toBe('br');
    const text = brotliDecompressSync(doc.body).toString();
    expect(JSON.parse(text).openapi).toMatch(/^3\./);
    expect(doc.body.length).toBeLessThan(text.length / 4);
    const gzDoc = await rawGet(`${base}/api/openapi.json`, 'gzip');
    expect(gzDoc.headers['content-encoding']).toBe('gzip');
    expect(JSON.parse(gunzipSync(gzDoc.body).toString()).openapi).toMatch(/^3\./);
    // a client that asks for no encoding (curl, the CLI) gets the JSON as it is
    const plainDoc = await rawGet(`${base}/api/openapi.json`);
    expect(plainDoc.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(plainDoc.body.toString()).openapi).toMatch(/^3\./);
  });
});
