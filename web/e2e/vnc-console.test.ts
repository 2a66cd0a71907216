// VNC auto-deployment from the console, in a real browser: Debian's chromium (headless) via
// playwright-core against the real app serving web/dist with a real Temporal worker, a real sshd
// test host (test/helpers/sshd.ts) and this machine's real TigerVNC Xvnc. An operator allocates the
// host with the form's VNC option; the allocation provisions for real (deploy-vnc starts Xvnc as
// the customer's account); the customer's allocation page shows the VNC entry, reveals the password
// once (a second reveal is refused), opens noVNC with it and restarts the server from the page.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settlePassword } from './api.js';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { sshExec, startSshd, type SshTestHost } from '../../test/helpers/sshd.js';
import { until } from '../../test/helpers/until.js';
import { ensureWebBuilt, WEB_DIST } from '../../scripts/build-web.js';
import { VncServiceSchema } from '../../db/entities/index.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = process.env.CONSOLE_SCREENSHOTS ?? '.data/screenshots';
const sel = (id: string) => `[data-test="${id}"]`;

describe('VNC in the console: the allocation form option, the VNC entry, reveal once, noVNC, restart (chromium, real worker, real sshd, real Xvnc)', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const tag = randomBytes(3).toString('hex');
  const member = `vc${tag}`;
  const hostName = `vnc-ui-${tag}`;
  let slug = '';
  const users: Record<string, { id: string; password: string }> = {};
  let customerCode = '';
  let allocId = '';

  const settle = (username: string, initial: string) => settlePassword(p.baseUrl, username, initial, 'Vc');
  async function page(): Promise<Page> {
    const ctx = await browser.newContext({ baseURL: p.baseUrl, viewport: { width: 1440, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: p.baseUrl });
    contexts.push(ctx);
    const pg = await ctx.newPage();
    pg.on('pageerror', (e) => process.stderr.write(`[browser] pageerror: ${e.message}\n`));
    return pg;
  }
  async function signIn(pg: Page, username: string) {
    await pg.goto('/login');
    await pg.fill(sel('username'), username);
    await pg.fill(sel('password'), users[username]!.password);
    await pg.click(sel('login-submit'));
    await pg.waitForSelector(sel('user-menu'), { timeout: 15_000 });
  }
  /** Picks an option of an Element Plus select by its visible text. */
  async function pick(pg: Page, select: string, text: string) {
    // The dropdown can close under the click when the dialog re-renders (its lists load while it
    // opens): try again, and count the pick as made once the select shows the text.
    for (let attempt = 0; ; attempt++) {
      if ((await pg.locator(sel(select)).innerText()).includes(text)) return;
      await pg.click(sel(select));
      try {
        await pg.locator('.el-select-dropdown__item:visible', { hasText: text }).first().click({ timeout: 5_000 });
      } catch (err) {
        if (attempt >= 4) throw err;
        await pg.keyboard.press('Escape');
      }
      await pg.waitForTimeout(200);
    }
  }

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    await ensureWebBuilt((l) => process.stderr.write(`${l}\n`));
    [p, sshd, browser] = await Promise.all([
      startTestPlatform({ db: 'pglite', console: { distDir: WEB_DIST } }),
      startSshd(),
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] }),
    ]);
    const op = await p.api('POST', '/api/v1/users', { body: { username: `op${tag}`, roles: ['operator'] } });
    expect(op.status, JSON.stringify(op.body)).toBe(201);
    users[`op${tag}`] = { id: op.body.data.id, password: await settle(`op${tag}`, op.body.data.initial_password) };
    customerCode = `vc${tag}`;
    const c = await p.api('POST', '/api/v1/customers', { body: { name: 'Vnc Console Labs', code: customerCode } });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    const u = await p.api('POST', `/api/v1/customers/${c.body.data.id}/users`, { body: { username: member, email: `${member}@labs.example`, role: 'customer_member' } });
    expect(u.status, JSON.stringify(u.body)).toBe(201);
    users[member] = { id: u.body.data.id, password: await settle(member, u.body.data.initial_password) };
    const h = await p.api('POST', '/api/v1/hosts', { body: { name: hostName, address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
    expect(h.status, JSON.stringify(h.body)).toBe(201);
    slug = h.body.data.slug;
    for (const status of ['onboarding', 'online']) expect((await p.api('POST', `/api/v1/hosts/${h.body.data.id}/status`, { body: { status } })).status).toBe(200);
  }, 300_000);

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    if (sshd) await sshExec(sshd, `sudo -n pkill -KILL -u ${member}; sudo -n userdel -r -f ${member}; sudo -n rm -f /var/lib/hostflow/accounts/${member}`).catch(() => undefined);
    await sshd?.stop();
    await p?.close();
  }, 90_000);

  it('an operator allocates with the VNC option; the customer reveals the VNC password once, opens noVNC with it and restarts the server', { timeout: 240_000 }, async () => {
    // The customer has no allocation form (no allocation.create).
    const cust = await page();
    await signIn(cust, member);
    await cust.goto('/allocations');
    await cust.waitForSelector(sel('alloc-table'));
    expect(await cust.locator(sel('alloc-new')).count()).toBe(0);

    // The operator: New allocation → host, customer, user, VNC on → Allocate.
    const op = await page();
    await signIn(op, `op${tag}`);
    await op.goto('/allocations');
    await op.click(sel('alloc-new'));
    await op.waitForSelector(`${sel('alloc-new-dialog')} ${sel('alloc-new-host')}`);
    await pick(op, 'alloc-new-host', slug);
    await pick(op, 'alloc-new-customer', customerCode);
    await pick(op, 'alloc-new-user', member);
    await op.click(sel('alloc-new-vnc'));
    expect(await op.locator(`${sel('alloc-new-vnc')}.is-checked`).count()).toBe(1);
    await op.screenshot({ path: join(SHOTS, 'vnc-allocation-form.png') });
    await op.click(sel('alloc-new-submit'));
    await op.waitForURL(/\/allocations\/[0-9a-f-]{36}$/, { timeout: 15_000 });
    allocId = /\/allocations\/([0-9a-f-]{36})$/.exec(op.url())![1]!;
    // The option reached the API: the allocation has a VNC service.
    expect(await p.db.em.fork().findOne(VncServiceSchema, { allocationId: allocId })).not.toBeNull();
    await until('allocation active', async () => {
      const r = (await p.api('GET', `/api/v1/allocations/${allocId}`)).body.data;
      if (r.status === 'failed') throw new Error(`allocation failed at ${r.failed_step}: ${r.error}`);
      return r.status === 'active';
    }, 150_000);
    // The operator's page: the VNC entry, running; reset and restart, but no reveal (not the customer user).
    await op.waitForSelector(`${sel('vnc-card')}[data-status="running"]`, { timeout: 20_000 });
    // (the page polls the allocation and its VNC entry separately: the buttons come with status active)
    await op.waitForSelector(sel('vnc-restart'), { timeout: 20_000 });
    expect(await op.locator(sel('vnc-reset')).count()).toBe(1);
    expect(await op.locator(sel('vnc-reveal')).count()).toBe(0);

    // The customer: reveal once.
    await cust.goto(`/allocations/${allocId}`);
    await cust.waitForSelector(`${sel('vnc-card')}[data-status="running"]`, { timeout: 20_000 });
    const display = (await cust.textContent(sel('vnc-display')))!;
    expect(display).toMatch(/^:\d+ \(RFB \d+\)$/);
    await cust.waitForSelector(sel('vnc-reveal'), { timeout: 20_000 });
    await cust.click(sel('vnc-reveal'));
    const shown = (await cust.locator(sel('vnc-revealed-password')).textContent({ timeout: 15_000 }))!.trim();
    expect(shown).toMatch(/^[A-Za-z0-9]{8}$/);
    await cust.screenshot({ path: join(SHOTS, 'vnc-reveal-once.png') });
    // Gone from the platform once shown: a second reveal is refused, the card says so.
    const again = await p.api('POST', `/api/v1/allocations/${allocId}/vnc/password/reveal`, { token: await p.tokenFor(users[member]!.id) });
    expect(again.status).toBe(409);
    expect(await p.db.em.fork().findOneOrFail(VncServiceSchema, { allocationId: allocId })).toMatchObject({ passwordCiphertext: null });

    // Open in browser: noVNC connects with the password just revealed (handed over in memory).
    await cust.click(sel('vnc-reveal-open'));
    await cust.waitForURL(new RegExp(`/remote/vnc/${allocId}$`));
    await cust.waitForSelector(`${sel('vnc-state')}[data-state="connected"]`, { timeout: 20_000 });
    expect(await cust.locator(sel('vnc-password')).count()).toBe(0);
    await cust.locator(`${sel('vnc')} canvas`).waitFor();
    await cust.screenshot({ path: join(SHOTS, 'vnc-novnc.png') });
    await cust.click(sel('vnc-disconnect'));
    await cust.waitForSelector(`${sel('vnc-state')}[data-state="closed"]`, { timeout: 10_000 });

    // Back on the allocation page: no reveal button any more; the server is killed (as a reboot
    // leaves it) and the page's Restart brings it back.
    await cust.goto(`/allocations/${allocId}`);
    await cust.waitForSelector(`${sel('vnc-card')}[data-status="running"]`);
    expect(await cust.locator(sel('vnc-reveal')).count()).toBe(0);
    expect(await cust.textContent(sel('vnc-password-state'))).toContain('Revealed');
    const uid = (await sshExec(sshd, `id -u ${member}`)).stdout.trim();
    await sshExec(sshd, `sudo -n pkill -KILL -u ${uid} -x Xvnc`);
    await until('Xvnc gone', async () => (await sshExec(sshd, `pgrep -u ${uid} -x Xvnc || echo none`)).stdout.trim() === 'none');
    await cust.click(sel('vnc-restart'));
    await cust.waitForSelector('.el-message--success', { timeout: 60_000 });
    expect(await cust.textContent('.el-message--success')).toContain('started again');
    expect((await sshExec(sshd, `pgrep -u ${uid} -x Xvnc || echo none`)).stdout.trim()).toMatch(/^\d+$/);

    // Reclaim (API) stops it and removes the entry; the test host is left clean.
    expect((await p.api('POST', `/api/v1/allocations/${allocId}/reclaim`)).status).toBeLessThan(300);
    await until('reclaimed', async () => {
      const r = (await p.api('GET', `/api/v1/allocations/${allocId}`)).body.data;
      if (r.status === 'reclaim-failed') throw new Error(`reclaim failed at ${r.failed_step}: ${r.error}`);
      return r.status === 'reclaimed';
    }, 120_000);
    expect((await sshExec(sshd, `pgrep -u ${uid} -x Xvnc || echo none`)).stdout.trim()).toBe('none');
  });
});
