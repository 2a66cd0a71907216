// The Temporal Web UI decoding runs for an authorised user, in a real browser: Debian's chromium
// driven by playwright-core, a real `temporal server start-dev` started here with
// --ui-codec-endpoint pointing at this platform's API, the real console. An admin signs in to the
// console, opens a run's "Temporal UI" link (which sets the codec cookie), turns on the UI's Data
// Encoder setting "Include cross-origin credentials" (the dev server cannot be told to), and reads
// the run's decoded summary; a viewer (no temporal.decode) sees only ciphertext.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { freePort, startSshd, type SshTestHost } from '../../test/helpers/sshd.js';
import { ensureWebBuilt, WEB_DIST } from '../../scripts/build-web.js';
import { startDevServer, temporalCliPath, type DevServer } from '../../scripts/temporal-cli.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const sel = (id: string) => `[data-test="${id}"]`;
// Page text is read with functions, not strings (the UI's CSP forbids eval), typed through globalThis (no DOM lib here).

describe('Temporal Web UI decodes through the codec cookie (chromium, real dev server)', { timeout: 240_000 }, () => {
  let dev: DevServer;
  let p: TestPlatform;
  let sshd: SshTestHost;
  let browser: Browser;
  let uiOrigin = '';
  let workflowId = '';
  const tag = randomBytes(2).toString('hex');
  const fullName = `Ada Decoded ${tag}`;
  const users: Record<string, string> = {};

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- loosely typed JSON
  async function raw(path: string, body: unknown, token?: string): Promise<{ status: number; body: any }> {
    const res = await fetch(p.baseUrl + path, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
    return { status: res.status, body: await res.json() };
  }
  async function makeUser(username: string, role: string) {
    const made = await p.api('POST', '/api/v1/users', { body: { username, roles: [role] } });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const initial = made.body.data.initial_password as string;
    const first = await raw('/api/v1/auth/login', { username, password: initial });
    users[username] = `Ui-${randomBytes(4).toString('hex')}-Pw-9!q`;
    expect((await raw('/api/v1/auth/password/change', { current_password: initial, new_password: users[username] }, first.body.data.access_token)).status).toBe(200);
  }

  beforeAll(async () => {
    await ensureWebBuilt((l) => process.stderr.write(`${l}\n`));
    const [grpcPort, uiPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    // One host name (127.0.0.1) for the console, the codec endpoint and the UI: the cookie is SameSite=Strict.
    uiOrigin = `http://127.0.0.1:${uiPort}`;
    dev = await startDevServer({ cli: temporalCliPath(), port: grpcPort, uiPort, uiCodecEndpoint: `http://127.0.0.1:${apiPort}/api/v1/temporal/codec` });
    [p, sshd] = await Promise.all([
      startTestPlatform({ temporalAddress: dev.address, port: apiPort, codecOrigins: [uiOrigin], console: { distDir: WEB_DIST, temporalUi: { url: uiOrigin, namespace: 'default' } } }),
      startSshd(),
    ]);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    const h = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: `gpu-ui-${tag}`, address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
    expect(h.status, JSON.stringify(h.body)).toBe(201);
    for (const status of ['onboarding', 'online']) expect((await p.api('POST', `/api/v1/hosts/${h.body.data.id}/status`, { body: { status } })).status).toBe(200);
    const ao = await p.api('POST', '/api/v1/account-openings', { body: { host_id: h.body.data.id, username: `ada${tag}`, full_name: fullName, contact_email: 'ada@example.com' } });
    expect(ao.status, JSON.stringify(ao.body)).toBe(201);
    workflowId = ao.body.data.workflow_id;
    await makeUser('ada', 'admin');
    await makeUser('vera', 'viewer');
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await p?.close();
    await sshd?.stop();
    await dev?.stop();
  });

  /** Signs in to the console and opens the run from the account-opening list's "Temporal UI" link: the UI's page. */
  async function openRunFromConsole(username: string, via: 'link' | 'url'): Promise<{ ui: Page; codecStatuses: number[] }> {
    const ctx = await browser.newContext({ baseURL: p.baseUrl, viewport: { width: 1440, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
    const pg = await ctx.newPage();
    await pg.goto('/login');
    await pg.fill(sel('username'), username);
    await pg.fill(sel('password'), users[username]!);
    await pg.click(sel('login-submit'));
    await pg.waitForSelector(sel('user-menu'));
    const runUrl = `${uiOrigin}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`;
    const codecStatuses: number[] = [];
    ctx.on('response', (r) => {
      if (r.url().includes('/api/v1/temporal/codec/decode') && r.request().method() === 'POST') {
        codecStatuses.push(r.status());
        if (process.env.DEBUG_CODEC) void r.request().allHeaders().then(async (h) => process.stderr.write(`[codec] ${r.status()} ${JSON.stringify(h)} ${await r.text().catch(() => '')}\n`));
      }
    });
    let ui: Page;
    if (via === 'url') {
      ui = await ctx.newPage();
      await ui.goto(runUrl);
    } else {
    await pg.goto('/account-openings');
    const link = pg.locator(sel('temporal-run-link')).first();
    await link.waitFor().catch(async (err: Error) => {
      await pg.screenshot({ path: `.data/temporal-ui-list-${username}.png`, fullPage: true });
      throw err;
    });
    expect(await link.getAttribute('href')).toBe(runUrl);
    [ui] = await Promise.all([ctx.waitForEvent('page'), link.click()]);
    await ui.waitForLoadState();
    }
    // The Data Encoder setting, once per browser: "Include cross-origin credentials".
    await ui.locator('button[data-testid^="data-encoder-status"]').first().click();
    // The dev server sets only the endpoint (its includeCredentials is false and it has no flag for
    // it), so the browser's own setting: the same endpoint, with cross-origin credentials.
    await ui.locator('[data-testid="override-accordion"]').click();
    await ui.locator('[data-testid="use-local-endpoint-input"]').click();
    await ui.locator('[data-testid="data-encoder-endpoint-input"]').fill(`${p.baseUrl}/api/v1/temporal/codec`);
    // (the expanded panel slides under the sticky namespace bar: a pointer click would land on it)
    const include = ui.locator('#pass-access-credentials');
    await include.evaluate((e) => (e as unknown as { click(): void }).click());
    expect(await include.isChecked()).toBe(true);
    await ui.locator('[data-testid="confirm-data-encoder-button"]').evaluate((e) => (e as unknown as { click(): void }).click());
    codecStatuses.length = 0;
    await ui.reload();
    return { ui, codecStatuses };
  }

  it('an admin who opened the run from the console reads its decoded summary in the Web UI', async () => {
    const { ui, codecStatuses } = await openRunFromConsole('ada', 'link');
    const cookies = await ui.context().cookies(p.baseUrl + '/api/v1/temporal/codec/decode');
    expect(cookies.find((c) => c.name === 'hf_codec')).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/api/v1/temporal/codec' });
    try {
      await ui.waitForFunction((name) => (globalThis as unknown as { document: { body: { innerText: string } } }).document.body.innerText.includes(name), fullName, { timeout: 60_000 });
    } catch (err) {
      await ui.screenshot({ path: '.data/temporal-ui-failed.png', fullPage: true });
      throw new Error(`no decoded summary (codec answers: ${codecStatuses.join(',')}; see .data/temporal-ui-failed.png)`, { cause: err });
    }
    await ui.screenshot({ path: '.data/temporal-ui-decoded.png', fullPage: true });
    expect(codecStatuses.length).toBeGreaterThan(0);
    expect(codecStatuses.every((s) => s === 200)).toBe(true);
  });

  it('a viewer (no temporal.decode), signed in to the console and opening the run URL, gets no cookie and sees ciphertext (the codec answers 401)', async () => {
    const { ui, codecStatuses } = await openRunFromConsole('vera', 'url');
    expect((await ui.context().cookies(p.baseUrl + '/api/v1/temporal/codec/decode')).find((c) => c.name === 'hf_codec')).toBeUndefined();
    await ui.waitForFunction(() => (globalThis as unknown as { document: { body: { innerText: string } } }).document.body.innerText.includes('accountOpening'), undefined, { timeout: 60_000 });
    for (let i = 0; i < 40 && codecStatuses.length === 0; i++) await ui.waitForTimeout(250);
    await ui.screenshot({ path: '.data/temporal-ui-viewer.png', fullPage: true });
    expect(codecStatuses.length).toBeGreaterThan(0);
    expect(codecStatuses.every((s) => s === 401)).toBe(true);
    expect(await ui.evaluate(() => (globalThis as unknown as { document: { body: { innerText: string } } }).document.body.innerText)).not.toContain(fullName);
  });
});
