// The console in a real browser: Debian's chromium (/usr/bin/chromium, headless) driven by
// playwright-core against the real platform (real Temporal worker, real sshd test host, the real
// app serving the built web/dist). Each test is a user journey, clicked as a user would.
// Screenshots of the main pages go to CONSOLE_SCREENSHOTS (docs/screenshots to refresh the
// committed ones; .data/screenshots otherwise).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { Secret, TOTP } from 'otpauth';
import { Client as SshClient } from 'ssh2';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { startSshd, sshExec, type SshTestHost } from '../../test/helpers/sshd.js';
import { ensureWebBuilt, WEB_DIST } from '../../scripts/build-web.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = process.env.CONSOLE_SCREENSHOTS ?? '.data/screenshots';
const sel = (id: string) => `[data-test="${id}"]`;

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function sshLogin(h: SshTestHost, username: string, password: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = new SshClient();
    c.on('ready', () => c.exec('id -un', (err, stream) => {
      if (err) return reject(err);
      let out = '';
      stream.on('data', (d: Buffer) => (out += d.toString()));
      stream.on('close', () => (c.end(), resolve(out.trim())));
    }));
    c.on('error', reject);
    c.connect({ host: h.host, port: h.port, username, password, readyTimeout: 5000 });
  });
}

describe('console in a real browser (chromium, real platform)', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  let browser: Browser;
  let hostId: string;
  const contexts: BrowserContext[] = [];
  const osUsers: string[] = [];
  const users: Record<string, { id: string; password: string }> = {};
  let totpSecret = '';
  let customerId = '';
  const tag = randomBytes(2).toString('hex');
  /** The batch onboarding page the operator journey opened (audited with the main pages). */
  let batchUrl = '';

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- loosely typed JSON
  async function raw(path: string, body: unknown, token?: string): Promise<{ status: number; body: any }> {
    const res = await fetch(p.baseUrl + path, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
    return { status: res.status, body: await res.json() };
  }
  /** Sets a known password (initial → change), as the first login would. */
  async function settle(username: string, initial: string): Promise<string> {
    const first = await raw('/api/v1/auth/login', { username, password: initial });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    const password = `E2e-${randomBytes(4).toString('hex')}-Pw-9!q`;
    const ch = await raw('/api/v1/auth/password/change', { current_password: initial, new_password: password }, first.body.data.access_token);
    expect(ch.status, JSON.stringify(ch.body)).toBe(200);
    return password;
  }
  async function makeUser(username: string, roles: string[], settlePassword = true): Promise<{ id: string; password: string }> {
    const made = await p.api('POST', '/api/v1/users', { body: { username, roles } });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const initial = made.body.data.initial_password as string;
    users[username] = { id: made.body.data.id, password: settlePassword ? await settle(username, initial) : initial };
    return users[username]!;
  }
  async function page(opts: { locale?: string; timezoneId?: string } = {}): Promise<Page> {
    const ctx = await browser.newContext({ baseURL: p.baseUrl, viewport: { width: 1440, height: 900 }, locale: opts.locale ?? 'en-US', timezoneId: opts.timezoneId ?? 'UTC' });
    contexts.push(ctx);
    const pg = await ctx.newPage();
    // Page errors and failed API calls go to the test's output: a broken page says why.
    pg.on('pageerror', (e) => process.stderr.write(`[browser] pageerror: ${e.message}\n`));
    pg.on('console', (m) => m.type() === 'error' && process.stderr.write(`[browser] console: ${m.text()}\n`));
    return pg;
  }
  async function signIn(pg: Page, username: string, password = users[username]!.password, totp?: string) {
    await pg.goto('/login');
    await pg.fill(sel('username'), username);
    await pg.fill(sel('password'), password);
    await pg.click(sel('login-submit'));
    if (totp) {
      await pg.waitForSelector(sel('totp'));
      await pg.fill(sel('totp'), totp);
      await pg.click(sel('login-submit'));
    }
    try {
      await pg.waitForSelector(sel('user-menu'), { timeout: 15_000 });
    } catch (err) {
      await pg.screenshot({ path: join(SHOTS, `failed-sign-in-${username}.png`) });
      throw new Error(`${username} did not get signed in (see ${SHOTS}/failed-sign-in-${username}.png; at ${pg.url()}): ${(await pg.textContent('body'))?.slice(0, 300)}`, { cause: err });
    }
  }
  /** A TOTP code not used before (the API refuses a replayed code): waits for the next 30 s step if needed. */
  const usedCodes = new Set<string>();
  async function nextTotp(): Promise<string> {
    for (;;) {
      const code = new TOTP({ secret: Secret.fromBase32(totpSecret) }).generate();
      if (!usedCodes.has(code)) {
        usedCodes.add(code);
        return code;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const shot = (pg: Page, name: string) => pg.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    await ensureWebBuilt((l) => process.stderr.write(`${l}\n`));
    [p, sshd] = await Promise.all([startTestPlatform({ console: { distDir: WEB_DIST, temporalUi: { url: 'http://localhost:8233', namespace: 'default' } } }), startSshd()]);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });

    for (const name of ['lab', 'rent']) expect((await p.api('POST', '/api/v1/host-groups', { body: { name } })).status).toBe(201);
    const h = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: `gpu-e2e-${tag}`, address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey, group: 'lab', tags: ['a100'] } });
    expect(h.status, JSON.stringify(h.body)).toBe(201);
    hostId = h.body.data.id;
    for (const status of ['onboarding', 'online']) expect((await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status } })).status).toBe(200);

    await makeUser('alice', ['admin']);
    await makeUser('rita', ['requester']);
    await makeUser('vic', ['viewer']);
    // Alice's authenticator: enrolled through the API with a session token.
    const s = await raw('/api/v1/auth/login', { username: 'alice', password: users.alice!.password });
    const enrol = await raw('/api/v1/auth/mfa/totp/enroll', {}, s.body.data.access_token);
    totpSecret = enrol.body.data.secret;
    const code = await nextTotp();
    expect((await raw('/api/v1/auth/mfa/totp/confirm', { code }, s.body.data.access_token)).status).toBe(200);

    // A customer with two members, each renting one machine.
    const c = await p.api('POST', '/api/v1/customers', { body: { name: 'Acme Labs', code: `acme${tag}` } });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    customerId = c.body.data.id;
    for (const [i, name] of ['mia', 'max'].entries()) {
      const u = await p.api('POST', `/api/v1/customers/${customerId}/users`, { body: { username: name, email: `${name}@acme.example`, role: 'customer_member' } });
      expect(u.status, JSON.stringify(u.body)).toBe(201);
      users[name] = { id: u.body.data.id, password: await settle(name, u.body.data.initial_password) };
      const mh = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: `rent-${name}-${tag}`, address: '127.0.0.1', port: 1, username: 'nobody', password: 'unused-password', group: 'rent' } });
      expect(mh.status, JSON.stringify(mh.body)).toBe(201);
      for (const status of ['onboarding', 'online']) await p.api('POST', `/api/v1/hosts/${mh.body.data.id}/status`, { body: { status } });
      const a = await p.api('POST', '/api/v1/allocations', { body: { host_id: mh.body.data.id, customer_id: customerId, customer_user_id: users[name]!.id, ends_at: new Date(Date.now() + (10 + i) * 86_400_000).toISOString() } });
      expect(a.status, JSON.stringify(a.body)).toBe(201);
    }
  }, 300_000);

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    for (const u of osUsers) await sshExec(sshd, `sudo -n pkill -KILL -u ${u}; sudo -n userdel -r -f ${u}; sudo -n rm -f /var/lib/hostflow/accounts/${u}`).catch(() => undefined);
    await p?.close();
    await sshd?.stop();
  });

  it('a new user signs in with the one-time password and must change it first', async () => {
    const { password: initial } = await makeUser('nora', ['viewer'], false);
    const pg = await page();
    await pg.goto('/login');
    await pg.fill(sel('username'), 'nora');
    await pg.fill(sel('password'), initial);
    await pg.click(sel('login-submit'));
    await pg.waitForURL(/\/change-password$/);
    await shot(pg, 'change-password');
    await pg.fill(sel('pw-current'), initial);
    await pg.fill(sel('pw-new'), 'Fresh-Pass-77!xq');
    await pg.fill(sel('pw-repeat'), 'Fresh-Pass-77!xq');
    await pg.click(sel('pw-submit'));
    await pg.waitForSelector(sel('user-menu'));
    expect(new URL(pg.url()).pathname).not.toBe('/change-password');
    // The new password is the one that works now.
    expect((await raw('/api/v1/auth/login', { username: 'nora', password: 'Fresh-Pass-77!xq' })).status).toBe(200);
  });

  it('an admin signs in with password + TOTP; a reload keeps the session through the refresh cookie only', async () => {
    const pg = await page();
    await pg.goto('/login');
    await shot(pg, 'login');
    await signIn(pg, 'alice', users.alice!.password, await nextTotp());
    await pg.waitForSelector(sel('card-hosts'));
    await pg.waitForSelector(`${sel('card-hosts')} canvas`);
    await shot(pg, 'dashboard');
    const cookies = await pg.context().cookies();
    const refresh = cookies.find((c) => c.name === 'hf_refresh');
    expect(refresh).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/api/v1/auth/refresh' });
    // No token in web storage; a reload signs back in through the cookie.
    const stored = await pg.evaluate('JSON.stringify({ ...localStorage, ...sessionStorage })');
    expect(String(stored)).not.toMatch(/eyJ|hf_/);
    await pg.reload();
    await pg.waitForSelector(sel('user-menu'));
    expect(await pg.textContent(sel('user-menu'))).toContain('alice');
  });

  it('a requester submits an account opening; an admin approves it in the queue; the requester reveals the password once and it logs in over SSH', async () => {
    const username = `e2e${randomBytes(3).toString('hex')}`;
    osUsers.push(username);
    // The requester fills the form.
    const rq = await page();
    await signIn(rq, 'rita');
    await rq.click(sel('menu-account-openings'));
    await rq.click(sel('ao-new'));
    await rq.click(sel('ao-host'));
    await rq.click(`.el-select-dropdown__item:has-text("gpu-e2e-${tag}")`);
    await rq.fill(sel('ao-username'), username);
    await rq.fill(sel('ao-fullname'), 'Rita Requester');
    await rq.fill(sel('ao-email'), 'not-an-email');
    await rq.click(sel('ao-submit'));
    // The API's 40001 field list lands on the field.
    await rq.waitForSelector('.el-form-item__error');
    expect(await rq.textContent('.el-form-item.is-error')).toMatch(/email/i);
    await rq.fill(sel('ao-email'), 'rita@example.com');
    await rq.click(sel('ao-submit'));
    await rq.waitForSelector(`${sel('ao-table')} >> text=${username}`);

    // The admin approves it from the queue.
    const ad = await page();
    await signIn(ad, 'alice', users.alice!.password, await nextTotp());
    await ad.goto('/account-openings');
    await ad.waitForSelector(sel(`approve-${username}`));
    await shot(ad, 'account-openings');
    // The approver reads the plan first: the commands approval will run, password as a placeholder.
    await ad.click(sel(`plan-${username}`));
    await ad.waitForSelector(`${sel('plan-dialog')} ${sel('plan-view')}`);
    const planText = (await ad.textContent(sel('plan-view')))!;
    for (const b of ['hostflow-user-exists', 'hostflow-create-user', 'hostflow-set-password']) expect(planText).toContain(b);
    expect((await ad.textContent(sel('plan-stdin')))!.trim()).toBe(`${username}:<generated password, 20 chars>`);
    await shot(ad, 'plan-preview');
    await ad.click(sel('plan-approve'));
    await ad.fill('.el-message-box__input input', 'ok for the e2e run');
    await ad.click('.el-message-box__btns .el-button--primary');
    await ad.waitForSelector(`.el-message--success`);

    // Provisioning runs on the real sshd; the requester's list follows by polling (no manual refresh).
    await rq.waitForSelector(sel(`reveal-${username}`), { timeout: 60_000 });
    await rq.click(sel(`reveal-${username}`));
    await rq.waitForSelector(sel('revealed-password'));
    const password = (await rq.textContent(sel('revealed-password')))!.trim();
    expect(password.length).toBeGreaterThanOrEqual(12);
    expect(await sshLogin(sshd, username, password)).toBe(username);
    // Once: a second reveal is refused.
    const rows = await p.api('GET', `/api/v1/account-openings?username=${username}`);
    const again = await p.api('POST', `/api/v1/account-openings/${rows.body.data.items[0].id}/credentials/reveal`, { token: await p.tokenFor(users.rita!.id) });
    expect(again.status).toBe(409);
  }, 120_000);

  it('a customer member sees only their own machines; no staff menus', async () => {
    const pg = await page();
    await signIn(pg, 'mia');
    await pg.waitForURL(/\/allocations$/);
    await pg.waitForSelector(sel(`alloc-rent-mia-${tag}`));
    await shot(pg, 'my-machines');
    expect(await pg.locator(sel(`alloc-rent-max-${tag}`)).count()).toBe(0);
    expect(await pg.locator(`${sel('alloc-table')} tbody tr`).count()).toBe(1);
    expect(await pg.textContent(sel('menu'))).toContain('My machines');
    for (const m of ['menu-hosts', 'menu-audit', 'menu-customers', 'menu-users']) expect(await pg.locator(sel(m)).count(), m).toBe(0);
    // Another member's allocation by URL: the API answers 404 (out of scope), the page shows nothing of it.
    const max = await p.api('GET', `/api/v1/allocations?customer_id=${customerId}`);
    const maxs = max.body.data.items.find((a: { customer_user: { username: string } }) => a.customer_user.username === 'max');
    await pg.goto(`/allocations/${maxs.id}`);
    await pg.waitForTimeout(1000);
    expect(await pg.locator(`text=rent-max-${tag}`).count()).toBe(0);
  });

  it('a viewer sees no buttons for what they may not do', async () => {
    const pending = await raw('/api/v1/account-openings', { host_id: hostId, username: `pend${tag}`, full_name: 'Pending Person', contact_email: 'p@example.com', groups: [], is_admin: false }, p.tokens.requester);
    expect(pending.status, JSON.stringify(pending.body)).toBe(201);
    const pg = await page();
    await signIn(pg, 'vic');
    await pg.goto('/hosts');
    await pg.waitForSelector(`${sel('host-table')} >> text=gpu-e2e-${tag}`);
    expect(await pg.locator(sel('batch-onboard')).count()).toBe(0);
    await pg.click(`text=gpu-e2e-${tag}`);
    await pg.waitForSelector('h2:has-text("gpu-e2e")');
    expect(await pg.locator(sel('host-onboard')).count()).toBe(0);
    await pg.goto('/account-openings');
    await pg.waitForSelector(`${sel('ao-table')}`);
    await pg.click(sel('tab-mine'));
    expect(await pg.locator(sel('ao-new')).count()).toBe(0);
    expect(await pg.locator(sel(`approve-pend${tag}`)).count()).toBe(0);
    expect(await pg.locator(sel('menu-users')).count()).toBe(0);
    await pg.goto('/admin/users');
    await pg.waitForURL(/\/forbidden$/);
  });

  it('the language switches to Chinese and stays after a reload', async () => {
    const pg = await page({ timezoneId: 'UTC' });
    await signIn(pg, 'vic');
    await pg.goto('/hosts');
    await pg.waitForSelector(sel('menu-hosts'));
    expect(await pg.textContent(sel('menu-hosts'))).toContain('Hosts');
    await pg.click(sel('lang-select'));
    await pg.click(sel('lang-zh'));
    await pg.waitForFunction('document.querySelector(\'[data-test="menu-hosts"]\')?.textContent?.includes("主机")');
    expect(await pg.getAttribute('html', 'lang')).toBe('zh-CN');
    await pg.reload();
    await pg.waitForSelector(sel('menu-hosts'));
    expect(await pg.textContent(sel('menu-hosts'))).toContain('主机');
    expect(await pg.textContent('.el-table__header')).toContain('地址');
  });

  it('a kicked-out user lands on the sign-in page with the reason', async () => {
    const pg = await page();
    await signIn(pg, 'max');
    await pg.waitForSelector(sel('alloc-table'));
    const sessions = await p.api('GET', `/api/v1/sessions?user_id=${users.max!.id}`);
    for (const s of sessions.body.data.items as Array<{ id: string }>) expect((await p.api('DELETE', `/api/v1/sessions/${s.id}`)).status).toBe(200);
    // The next poll meets 401; the refresh cookie is refused too (reason "kicked").
    await pg.waitForURL(/\/login\?.*reason=kicked/, { timeout: 20_000 });
    expect(await pg.textContent(sel('login-reason'))).toMatch(/administrator signed you out/i);
  });

  it('an operator imports hosts: the preview shows the bad rows per field, nothing is written until the file is clean; then onboards one and watches it come online', async () => {
    const op = await makeUser('otto', ['operator']);
    const pg = await page();
    await signIn(pg, 'otto', op.password);
    await pg.goto('/hosts');
    await pg.click(sel('host-import'));
    await pg.waitForSelector(sel('import-text'));
    const good = { name: `imp-ok-${tag}`, address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey, group: 'lab', allow_duplicate_address: true };
    const bad = [
      { name: `imp-bad-${tag}`, address: '10.30.0.2', port: 70000, username: 'root', password: 'x' },
      { name: `imp-nogroup-${tag}`, address: '10.30.0.3', username: 'root', password: 'x', group: 'nope' },
    ];
    await pg.fill(sel('import-text'), JSON.stringify({ hosts: [good, ...bad] }));
    await pg.click(sel('import-preview'));
    await pg.waitForSelector(sel('import-rows'));
    expect(await pg.textContent(sel('import-summary'))).toContain('3 rows: 1 valid, 2 with errors');
    await pg.waitForSelector(sel('import-error-1-port'));
    expect(await pg.textContent(sel('import-error-2-group'))).toContain('host group "nope" does not exist');
    expect(await pg.isDisabled(sel('import-submit'))).toBe(true);
    await shot(pg, 'host-import-preview');
    expect((await p.api('GET', `/api/v1/hosts?q=imp-`)).body.data.total).toBe(0);
    // The clean file imports.
    await pg.fill(sel('import-text'), JSON.stringify({ hosts: [good] }));
    await pg.click(sel('import-preview'));
    await pg.waitForFunction(`document.querySelector('[data-test="import-summary"]')?.textContent?.includes('1 valid, 0 with errors')`);
    await pg.click(sel('import-submit'));
    await pg.waitForSelector(`${sel('host-table')} >> text=imp-ok-${tag}`);
    // Onboard it: select the row, start, and the batch's page follows it step by step to online (the real sshd host).
    await pg.click(`${sel('host-table')} tr:has-text("imp-ok-${tag}") .el-checkbox`);
    await pg.click(sel('batch-onboard'));
    await pg.waitForURL(/\/hosts\/onboard\/[0-9a-f-]{36}$/);
    batchUrl = new URL(pg.url()).pathname;
    await pg.waitForSelector(sel('batch-progress'));
    expect(await pg.textContent(`${sel('batch-total-total')} .n`)).toBe('1');
    await pg.waitForSelector(`${sel(`batch-state-imp-ok-${tag}`)} >> text=Online`, { timeout: 120_000 });
    expect(await pg.textContent(sel(`batch-count-imp-ok-${tag}`))).toBe('7/7');
    expect(await pg.textContent(`${sel(`batch-step-imp-ok-${tag}-mark-online`)}`)).toBe('mark-online: done');
    await pg.waitForSelector(`${sel('batch-state')} >> text=Finished: 1 online, 0 failed`);
    expect(await pg.textContent(`${sel('batch-total-online')} .n`)).toBe('1');
    await shot(pg, 'batch-onboarding');
    await pg.click(sel(`batch-host-imp-ok-${tag}`));
    await pg.waitForSelector(sel('onboarding-steps'));
    await shot(pg, 'host-onboarded');
  }, 200_000);

  it('an admin extends a lease and watches the reclaim complete after terminating it', async () => {
    const rent = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: `lease-${tag}`, address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
    expect(rent.status, JSON.stringify(rent.body)).toBe(201);
    for (const status of ['onboarding', 'online']) expect((await p.api('POST', `/api/v1/hosts/${rent.body.data.id}/status`, { body: { status } })).status).toBe(200);
    const cuName = `lz${randomBytes(3).toString('hex')}`;
    osUsers.push(cuName);
    const cu = await p.api('POST', `/api/v1/customers/${customerId}/users`, { body: { username: cuName, email: `${cuName}@acme.example`, role: 'customer_member' } });
    expect(cu.status, JSON.stringify(cu.body)).toBe(201);
    const endsAt = new Date(Date.now() + 20 * 86_400_000);
    const a = await p.api('POST', '/api/v1/allocations', { body: { host_id: rent.body.data.id, customer_id: customerId, customer_user_id: cu.body.data.id, ends_at: endsAt.toISOString() } });
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    const allocId = a.body.data.id as string;

    const pg = await page();
    await signIn(pg, 'alice', users.alice!.password, await nextTotp());
    await pg.goto(`/allocations/${allocId}`);
    // Provisioning on the real sshd host, followed live by the page.
    await pg.waitForSelector(sel('alloc-extend'), { timeout: 120_000 });
    await pg.waitForSelector(sel('lease-reminder-7d'));
    await pg.click(sel('alloc-extend'));
    const newEnd = new Date(endsAt.getTime() + 7 * 86_400_000);
    await pg.fill('.el-message-box__input input', newEnd.toISOString());
    await pg.click('.el-message-box__btns .el-button--primary');
    await pg.waitForSelector('.el-message--success');
    await until('lease extended', async () => (await p.api('GET', `/api/v1/allocations/${allocId}`)).body.data.ends_at === newEnd.toISOString());
    // The timeline moves with it: the 7-day reminder is now due 7 days before the new end.
    const want = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' }).format(new Date(newEnd.getTime() - 7 * 86_400_000));
    await pg.waitForSelector(`${sel('lease-reminder-7d')} >> text=${want}`, { timeout: 15_000 });
    await shot(pg, 'allocation-extended');
    // The reclaim plan: what terminating will run on the host, from the same builders.
    await pg.click(sel('alloc-reclaim-plan'));
    await pg.waitForSelector(`${sel('alloc-plan-dialog')} ${sel('plan-view')}`);
    const planText = (await pg.textContent(sel('alloc-plan-dialog'))) ?? '';
    // (this customer user has no SSH keys: revoke-keys removes none, so no hostflow-remove-authorized-keys)
    for (const builder of ['hostflow-lock-user', 'hostflow-end-tenant-activity', 'hostflow-delete-user']) expect(planText).toContain(builder);
    expect(planText).toContain(cuName);
    await shot(pg, 'allocation-reclaim-plan');
    await pg.click(`${sel('alloc-plan-dialog')} .el-dialog__footer .el-button`);
    await pg.waitForSelector(sel('alloc-plan-dialog'), { state: 'hidden' });

    // Terminate (MFA step-up when the API asks), then the reclaim runs and the page follows it.
    await pg.click(sel('alloc-terminate'));
    await pg.fill('.el-message-box__input input', 'e2e: lease over');
    await pg.click('.el-message-box__btns .el-button--primary');
    const stepUp = await Promise.race([
      pg.waitForSelector(sel('stepup-code'), { timeout: 15_000 }).then(() => true),
      pg.waitForSelector('.el-message--success', { timeout: 15_000 }).then(() => false),
    ]);
    if (stepUp) {
      await pg.fill(sel('stepup-code'), await nextTotp());
      await pg.click(sel('stepup-submit'));
    }
    await pg.waitForSelector(`h2 >> text=reclaimed`, { timeout: 150_000 });
    await pg.waitForSelector(`${sel('lease-reclaim')}`);
    await shot(pg, 'allocation-reclaimed');
    expect((await sshExec(sshd, `id -u ${cuName} >/dev/null 2>&1 && echo present || echo absent`)).stdout.trim()).toBe('absent');
  }, 360_000);

  it('main pages render for an admin (screenshots) with no serious or critical axe-core violations', async () => {
    const pg = await page();
    await signIn(pg, 'alice', users.alice!.password, await nextTotp());
    const allocs = await p.api('GET', '/api/v1/allocations');
    const pages: Array<[string, string, string]> = [
      ['dashboard', '/', sel('card-hosts')],
      ['hosts', '/hosts', `${sel('host-table')} >> text=gpu-e2e-${tag}`],
      ['host-detail', `/hosts/${hostId}`, 'h2:has-text("gpu-e2e")'],
      ['account-openings', '/account-openings', sel('ao-table')],
      ['allocations', '/allocations', sel('alloc-table')],
      ['allocation-detail', `/allocations/${allocs.body.data.items[0].id}`, sel('lease-timeline')],
      ['customers', '/customers', `text=acme${tag}`],
      ['audit-log', '/audit', `${sel('audit-table')} tbody tr`],
      ['users', '/admin/users', `${sel('user-table')} >> text=alice`],
      ['roles', '/admin/roles', `${sel('role-table')} >> text=customer_member`],
      ['profile', '/profile', sel('mfa-card')],
      ...(batchUrl ? [['batch-onboarding', batchUrl, sel('batch-progress')] as [string, string, string]] : []),
    ];
    // axe-core evaluated in the page (page.evaluate is not subject to the page's CSP, which
    // forbids injected script tags), WCAG 2.1 A/AA rules.
    const axeSource = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
    const found: string[] = [];
    for (const [name, path, ready] of pages) {
      await pg.goto(path);
      await pg.waitForSelector(ready, { timeout: 15_000 });
      await pg.waitForTimeout(300);
      await shot(pg, name);
      await pg.evaluate(axeSource);
      const violations = (await pg.evaluate(`axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }, resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) })))`)) as Array<{ id: string; impact: string; nodes: string[] }>;
      // Every serious or critical rule fails the test, color-contrast included (web/src/theme.css).
      for (const v of violations) if (v.impact === 'serious' || v.impact === 'critical') found.push(`${name}: ${v.id} (${v.impact}) at ${v.nodes.join(', ')}`);
    }
    expect(found, 'serious/critical axe violations').toEqual([]);
  }, 180_000);
});
