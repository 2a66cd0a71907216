// Remote access in a real browser: Debian's chromium (headless) via playwright-core against the
// real app serving web/dist, a real sshd test host (the tenant's account, logged in with the
// allocation's platform key) and a real Xvnc with an X client (xev) showing a window. A customer
// types into the web terminal and sees the shell's output, pastes, resizes, uploads and downloads a
// file; an admin force-disconnects the session from the sessions list (the customer's page sees it
// close) and plays its recording back; noVNC renders Xvnc's framebuffer and a keypress reaches X.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settlePassword } from './api.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { freePort, sshExec, startSshd, type SshTestHost } from '../../test/helpers/sshd.js';
import { ensureWebBuilt, WEB_DIST } from '../../scripts/build-web.js';
import { AllocationSchema, HostSchema, RemoteAccessSchema, RemoteSessionSchema } from '../../db/entities/index.js';
import { ensureTerminalKey } from '../../db/terminal-keys.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = process.env.CONSOLE_SCREENSHOTS ?? '.data/screenshots';
const sel = (id: string) => `[data-test="${id}"]`;

describe('remote access in a real browser: web terminal, recording playback, force-disconnect, noVNC (chromium, real sshd, real Xvnc)', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  let browser: Browser;
  let xvnc: ChildProcess;
  let xev: ChildProcess;
  let xevOut = '';
  const contexts: BrowserContext[] = [];
  const tag = randomBytes(3).toString('hex');
  const tenant = `br${tag}`;
  const users: Record<string, { id: string; password: string }> = {};
  let allocId = '';
  let sessionId = '';

  const settle = (username: string, initial: string) => settlePassword(p.baseUrl, username, initial, 'Rm');
  async function page(): Promise<Page> {
    const ctx = await browser.newContext({ baseURL: p.baseUrl, viewport: { width: 1440, height: 900 }, locale: 'en-US', timezoneId: 'UTC', acceptDownloads: true });
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: p.baseUrl });
    contexts.push(ctx);
    const pg = await ctx.newPage();
    pg.on('pageerror', (e) => process.stderr.write(`[browser] pageerror: ${e.message}\n`));
    pg.on('console', (m) => m.type() === 'error' && process.stderr.write(`[browser] console: ${m.text()}\n`));
    return pg;
  }
  async function signIn(pg: Page, username: string) {
    await pg.goto('/login');
    await pg.fill(sel('username'), username);
    await pg.fill(sel('password'), users[username]!.password);
    await pg.click(sel('login-submit'));
    await pg.waitForSelector(sel('user-menu'), { timeout: 15_000 });
  }
  const termText = (pg: Page) => pg.locator(`${sel('terminal')} .xterm-rows`).innerText();
  async function waitTerm(pg: Page, re: RegExp, ms = 15_000): Promise<string> {
    const until = Date.now() + ms;
    for (;;) {
      const text = await termText(pg);
      const m = re.exec(text);
      if (m) return m[0];
      if (Date.now() > until) {
        await pg.screenshot({ path: join(SHOTS, 'failed-terminal.png') });
        throw new Error(`no ${re} on the browser's terminal: ${JSON.stringify(text.slice(-400))}`);
      }
      await pg.waitForTimeout(100);
    }
  }
  const step = (what: string) => process.stderr.write(`[remote e2e] ${new Date().toISOString().slice(11, 23)} ${what}\n`);
  async function typeLine(pg: Page, line: string) {
    await pg.click(sel('terminal'));
    await pg.keyboard.type(line);
    await pg.keyboard.press('Enter');
  }

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    await ensureWebBuilt((l) => process.stderr.write(`${l}\n`));
    // Xvnc with an X client: xev's window fills the screen and prints the key events it gets.
    const rfbPort = await freePort();
    const display = 600 + Math.floor(Math.random() * 300);
    xvnc = spawn('Xvnc', [`:${display}`, '-rfbport', String(rfbPort), '-SecurityTypes', 'None', '-localhost', '-geometry', '800x600', '-depth', '24', '-nolisten', 'tcp'], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      const up = await new Promise<boolean>((r) => {
        const s = connect(rfbPort, '127.0.0.1');
        s.once('connect', () => (s.destroy(), r(true)));
        s.once('error', () => r(false));
      });
      if (up) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    xev = spawn('xev', ['-display', `:${display}`, '-geometry', '800x600+0+0', '-event', 'keyboard'], { stdio: ['ignore', 'pipe', 'pipe'] });
    xev.stdout!.on('data', (d: Buffer) => (xevOut += d.toString()));

    [p, browser] = await Promise.all([
      startTestPlatform({ worker: false, console: { distDir: WEB_DIST } }),
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] }),
    ]);
    const admin = await p.api('POST', '/api/v1/users', { body: { username: `ada${tag}`, roles: ['admin'] } });
    expect(admin.status, JSON.stringify(admin.body)).toBe(201);
    users[`ada${tag}`] = { id: admin.body.data.id, password: await settle(`ada${tag}`, admin.body.data.initial_password) };
    const c = await p.api('POST', '/api/v1/customers', { body: { name: 'Browser Labs', code: `bl${tag}` } });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    const u = await p.api('POST', `/api/v1/customers/${c.body.data.id}/users`, { body: { username: `mia${tag}`, email: `mia${tag}@labs.example`, role: 'customer_member' } });
    expect(u.status, JSON.stringify(u.body)).toBe(201);
    users[`mia${tag}`] = { id: u.body.data.id, password: await settle(`mia${tag}`, u.body.data.initial_password) };

    // The rented host: a real sshd with the tenant's account holding the allocation's platform key
    // (what the allocation's inject-keys step does), and a VNC entry pointing at Xvnc.
    const em = p.db.em.fork();
    const host = em.create(HostSchema, { slug: `br-${tag}`, name: 'browser host', address: '127.0.0.1', port: 22, os: 'linux', username: 'admin', status: 'online' });
    em.create(RemoteAccessSchema, { host, gateway: 'gw', protocol: 'vnc', publicDomain: `br-${tag}.hosts.test`, publicPort: 20000 + Math.floor(Math.random() * 9000), targetPort: rfbPort });
    const a = em.create(AllocationSchema, { host, customer: c.body.data.id, customerUser: u.body.data.id, osUsername: tenant, startsAt: new Date(), endsAt: new Date(Date.now() + 86_400_000), bufferSeconds: 0, graceSeconds: 0, status: 'active', createdBy: 'test' });
    await em.flush();
    allocId = a.id;
    const pub = await ensureTerminalKey(p.db.em, p.vault, a.id);
    sshd = await startSshd({ users: [{ name: tenant, authorizedKeys: [pub] }] });
    await p.db.em.fork().nativeUpdate(HostSchema, { id: host.id }, { port: sshd.port, hostKeyFingerprint: sshd.hostKeyFingerprintSha256 });
  }, 300_000);

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    xev?.kill('SIGTERM');
    xvnc?.kill('SIGTERM');
    await sshd?.stop();
    await p?.close();
  }, 60_000);

  it('the customer opens the terminal from their allocation, types a command and sees its output; paste, resize, upload and download work', { timeout: 120_000 }, async () => {
    const pg = await page();
    await signIn(pg, `mia${tag}`);
    await pg.goto(`/allocations/${allocId}`);
    await pg.click(sel('alloc-terminal'));
    await pg.waitForSelector(`${sel('terminal-state')}[data-state="connected"]`, { timeout: 20_000 });
    sessionId = (await pg.getAttribute(sel('terminal'), 'data-session'))!;
    expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);

    await typeLine(pg, 'echo "browser-$((6*7))"; id -un');
    expect(await waitTerm(pg, new RegExp(`browser-42\\s+${tenant}`))).toBeTruthy();
    await pg.screenshot({ path: join(SHOTS, 'remote-terminal.png') });

    step('Paste: Ctrl+Shift');
    // Paste: Ctrl+Shift+V puts the clipboard into the shell (Ctrl+V stays the shell's).
    await pg.evaluate("navigator.clipboard.writeText('echo pasted-$((2+3))')");
    await pg.click(sel('terminal'));
    await pg.keyboard.press('Control+Shift+V');
    await waitTerm(pg, /\$ echo pasted-\$\(\(2\+3\)\)/); // the clipboard read is asynchronous
    await pg.keyboard.press('Enter');
    await waitTerm(pg, /pasted-5/);
    step('Right-click paste');
    // Right-click pastes too.
    await pg.evaluate("navigator.clipboard.writeText('echo right-$((3+4))')");
    await pg.click(sel('terminal'), { button: 'right' });
    await waitTerm(pg, /\$ echo right-\$\(\(3\+4\)\)/);
    await pg.keyboard.press('Enter');
    await waitTerm(pg, /right-7/);
    step('Copy: the selecti');
    // Copy: the selection goes to the clipboard with Ctrl+Shift+C.
    await pg.evaluate("navigator.clipboard.writeText('sentinel')");
    // (xterm's screen layer takes the mouse: double-click on the row's place, not on the row element)
    const box = (await pg.locator(`${sel('terminal')} .xterm-rows > div`, { hasText: /^right-7\s*$/ }).last().boundingBox())!;
    await pg.mouse.dblclick(box.x + 12, box.y + box.height / 2);
    await pg.keyboard.press('Control+Shift+C');
    expect(await pg.evaluate('navigator.clipboard.readText()')).toMatch(/^(right-7|right|7)$/);

    step('Resize: the page');
    // Resize: the page's size reaches the shell (stty size follows the fit addon).
    await typeLine(pg, 'clear; stty size');
    const before = (await waitTerm(pg, /\n?(\d+) (\d+)\s/)).trim();
    await pg.setViewportSize({ width: 1000, height: 650 });
    await pg.waitForTimeout(600);
    await typeLine(pg, 'clear; stty size');
    let after = before;
    for (let i = 0; i < 30 && after === before; i++) {
      after = (await waitTerm(pg, /(\d+) (\d+)\s/)).trim();
      if (after === before) await pg.waitForTimeout(100);
    }
    expect(after, 'stty size did not change with the window').not.toBe(before);
    const [rows, cols] = after.split(' ').map(Number);
    expect(cols).toBeLessThan(Number(before.split(' ')[1]));
    expect(rows).toBeGreaterThan(5);

    step('Upload a file thr');
    // Upload a file through the page; it lands in the tenant's home; download it back.
    await pg.setInputFiles(sel('terminal-upload'), { name: 'from-browser.txt', mimeType: 'text/plain', buffer: Buffer.from(`uploaded-${tag}\n`) });
    await pg.waitForSelector('.el-message--success');
    await typeLine(pg, 'cat from-browser.txt');
    await waitTerm(pg, new RegExp(`uploaded-${tag}`));
    await pg.fill(sel('terminal-download-path'), 'from-browser.txt');
    const [download] = await Promise.all([pg.waitForEvent('download'), pg.click(sel('terminal-download'))]);
    expect(download.suggestedFilename()).toBe('from-browser.txt');
    expect(await readFile((await download.path())!, 'utf8')).toBe(`uploaded-${tag}\n`);

    step('An admin ends it');
    // An admin ends it from the sessions list: the customer's page sees the session close.
    const ad = await page();
    await signIn(ad, `ada${tag}`);
    // The Remote access menu has the sessions page.
    await ad.click('.el-sub-menu__title:has-text("Remote access")');
    await ad.click(sel('menu-remote-sessions'));
    await ad.waitForSelector(sel(`terminate-${sessionId}`));
    expect(await ad.textContent(sel('sessions-table'))).toContain(`br-${tag}`);
    expect(await ad.textContent(sel('sessions-count-ssh'))).toContain('ssh: 1');
    await ad.screenshot({ path: join(SHOTS, 'remote-sessions.png'), fullPage: true });
    await ad.click(sel(`terminate-${sessionId}`));
    const t0 = Date.now();
    await ad.click('.el-message-box__btns .el-button--primary');
    await pg.waitForSelector(`${sel('terminal-state')}[data-state="closed"]`, { timeout: 5000 });
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await pg.textContent(sel('terminal-reason'))).toContain('admin_force');
    expect(await p.db.em.fork().findOneOrFail(RemoteSessionSchema, { id: sessionId })).toMatchObject({ status: 'terminated', endReason: 'admin_force' });
    step('The shell is gone');
    // The shell is gone on the host too.
    let shells = '1';
    for (let i = 0; i < 30 && shells !== '0'; i++) {
      shells = (await sshExec(sshd, `pgrep -u ${tenant} -c bash || true`)).stdout.trim();
      if (shells !== '0') await new Promise((r) => setTimeout(r, 100));
    }
    expect(shells).toBe('0');

    step('Playback: the rec');
    // Playback: the recording plays in asciinema-player and shows what the customer saw.
    await ad.click(sel('sessions-live'));
    await ad.waitForSelector(sel(`play-${sessionId}`));
    await ad.goto(`/remote/sessions/${sessionId}/playback?speed=20`);
    await ad.waitForSelector(`${sel('playback')}[data-loaded="true"]`);
    const until = Date.now() + 30_000;
    let shown = '';
    // The last screen of the session (after `clear`): the uploaded file's content that `cat` printed.
    const last = new RegExp(`uploaded-${tag}`);
    while (!last.test(shown) && Date.now() < until) {
      shown = (await ad.locator(sel('playback')).innerText().catch(() => '')) ?? '';
      if (!last.test(shown)) await ad.waitForTimeout(200);
    }
    await ad.screenshot({ path: join(SHOTS, 'remote-playback.png'), fullPage: true });
    expect(shown, 'the player never showed the recorded output').toMatch(last);
  });

  it('noVNC renders the Xvnc framebuffer and a keypress reaches the X session; force-disconnect closes it', { timeout: 90_000 }, async () => {
    const pg = await page();
    await signIn(pg, `mia${tag}`);
    await pg.goto(`/allocations/${allocId}`);
    await pg.click(sel('alloc-vnc'));
    await pg.waitForSelector(`${sel('vnc-state')}[data-state="connected"]`, { timeout: 20_000 });
    const canvas = pg.locator(`${sel('vnc')} canvas`);
    await canvas.waitFor();
    // Non-blank: xev's window is white on Xvnc's black root.
    let lit = 0;
    for (let i = 0; i < 50 && lit === 0; i++) {
      // (a string: the test's tsconfig has no DOM types)
      lit = Number(
        await pg.evaluate(`(() => {
          const c = document.querySelector('[data-test="vnc"] canvas');
          const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
          let n = 0;
          for (let j = 0; j < data.length; j += 4) if (data[j] > 128 && data[j + 1] > 128 && data[j + 2] > 128) n++;
          return n;
        })()`),
      );
      if (lit === 0) await pg.waitForTimeout(200);
    }
    expect(lit, 'the noVNC canvas stayed blank').toBeGreaterThan(10_000);
    await pg.screenshot({ path: join(SHOTS, 'remote-vnc.png') });
    // A keypress: the pointer over xev's window, then a key; xev prints it.
    await canvas.click({ position: { x: 200, y: 200 } });
    await pg.keyboard.press('q');
    const until = Date.now() + 10_000;
    while (!/keysym 0x71, q/.test(xevOut) && Date.now() < until) await pg.waitForTimeout(100);
    expect(xevOut).toMatch(/KeyPress event[\s\S]*keysym 0x71, q/);

    const live = await p.api('GET', '/api/v1/remote-sessions?live=true&protocol=vnc');
    const row = live.body.data.items.find((s: { user_id: string }) => s.user_id === users[`mia${tag}`]!.id);
    expect(row).toMatchObject({ protocol: 'vnc', status: 'active' });
    expect((await p.api('POST', `/api/v1/remote-sessions/${row.id}/terminate`)).status).toBe(200);
    await pg.waitForSelector(`${sel('vnc-state')}[data-state="closed"]`, { timeout: 5000 });
  });
});
