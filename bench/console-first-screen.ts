/**
 * Console first screen (seed 004 §9.1: under 2 s): Debian's chromium (headless, playwright-core)
 * loading the built console from the real app (PGlite in memory, no Temporal: the first screens
 * read only the database), on loopback.
 *
 *   npm run bench:console                 # 5 runs of each measurement
 *   BENCH_RUNS=10 npm run bench:console
 *
 * Measurements, each in a fresh browser context (cold HTTP cache) unless noted:
 *   cold /login       navigation start → the sign-in form is visible (all JS/CSS downloaded, Vue mounted)
 *   sign in → dash    click "Sign in" → the dashboard's first chart is drawn (login, /auth/me, lists, ECharts chunk)
 *   reload dashboard  reload with a session (warm cache): refresh cookie → /auth/me → chart drawn
 * Also the transferred bytes of the cold /login load. Prints median and max; asserts nothing.
 */
import type { Server } from 'node:http';
import { chromium, type Page } from 'playwright-core';
import { initORM } from '../db/orm.js';
import { Vault, generateKeyring } from '../db/vault.js';
import { createApp } from '../api/app.js';
import { identityDefaults, type AppDeps } from '../api/deps.js';
import { createLogger } from '../config/logger.js';
import { ensureFirstAdmin } from '../api/routes/users/service.js';
import { ensureWebBuilt, WEB_DIST } from '../scripts/build-web.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
await ensureWebBuilt((l) => console.log(l));
const db = await initORM({ pgliteDir: 'memory://' });
const identity = identityDefaults();
const inert = new Proxy({}, { get: () => { throw new Error('the first screens do not use Temporal'); } });
const app = createApp({
  em: db.em, vault: new Vault(generateKeyring('bench')), logger: createLogger({ level: 'silent' }), identity,
  temporal: { client: inert as AppDeps['temporal']['client'], taskQueue: 'bench' }, settings: { accountOpeningExpiryDays: 7 },
  checks: { db: () => db.ping(), temporal: async () => undefined }, console: { distDir: WEB_DIST },
});
const server = await new Promise<Server>((r) => { const s = app.listen(0, '127.0.0.1', () => r(s)); });
const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

// A signed-in admin: the first-start admin with its one-time password changed.
const first = (await ensureFirstAdmin({ em: db.em, identity }))!;
const post = async (path: string, body: unknown, token?: string) => (await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) })).json() as Promise<{ data: { access_token: string } }>;
const t = await post('/api/v1/auth/login', { username: first.username, password: first.password });
const password = 'Bench-Console-Pw-42!';
await post('/api/v1/auth/password/change', { current_password: first.password, new_password: password }, t.data.access_token);

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
const results: Record<string, number[]> = { 'cold /login': [], 'sign in → dashboard': [], 'reload dashboard': [] };
let bytes = 0;
const chart = '[data-test="card-hosts"] canvas';
for (let i = 0; i < RUNS; i++) {
  const ctx = await browser.newContext({ baseURL: base, viewport: { width: 1440, height: 900 } });
  const pg: Page = await ctx.newPage();
  let transferred = 0;
  // Bytes on the wire (the encoded body, as compressed by the API), not the decoded size.
  pg.on('requestfinished', async (rq) => { transferred += (await rq.sizes()).responseBodySize; });
  let t0 = Date.now();
  await pg.goto('/login');
  await pg.waitForSelector('[data-test="login-submit"]');
  results['cold /login']!.push(Date.now() - t0);
  bytes = transferred;
  await pg.fill('[data-test="username"]', first.username);
  await pg.fill('[data-test="password"]', password);
  t0 = Date.now();
  await pg.click('[data-test="login-submit"]');
  await pg.waitForSelector(chart);
  results['sign in → dashboard']!.push(Date.now() - t0);
  t0 = Date.now();
  await pg.reload();
  await pg.waitForSelector(chart);
  results['reload dashboard']!.push(Date.now() - t0);
  await ctx.close();
}
await browser.close();
server.close();
server.closeAllConnections();
await db.close();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`\nconsole first screen, ${RUNS} runs each (ms), chromium headless on loopback`);
for (const [name, xs] of Object.entries(results)) console.log(`  ${name.padEnd(22)} median ${String(median(xs)).padStart(5)}   max ${String(Math.max(...xs)).padStart(5)}   goal < 2000`);
console.log(`  cold /login transfer   ${(bytes / 1024).toFixed(0)} KiB on the wire (brotli: precompressed assets, compressed JSON)`);
process.exit(0);
