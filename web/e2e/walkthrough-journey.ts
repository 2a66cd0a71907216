// The README's "Walkthrough in the console", clicked step by step in a real browser: the first
// admin's sign-in and forced password change, the test host added and onboarded, an account opening
// requested, approved from its plan and revealed once, a customer and its user, the SSH key, the
// rental with its lease timeline, the extension, the early return and reclaim, and the audit trail.
// Used by web/e2e/walkthrough.test.ts (the harness' real platform and sshd host) and by
// web/e2e/walkthrough-cli.ts (against a running `npm start` and `npm run testhost`, as a newcomer).
// Only the browser acts on the platform; ssh logins prove what it did on the host.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import ssh2 from 'ssh2';

export interface TestHostDetails {
  name: string;
  address: string;
  port: number;
  login: string;
  /** The private key file `npm run testhost` prints (chosen in the Add host dialog). */
  keyFile: string;
}

export interface JourneyOptions {
  browser: Browser;
  baseUrl: string;
  admin: { username: string; oneTimePassword: string };
  host: TestHostDetails;
  /** Names (the README's: alice, ana, acme); the test makes them unique on a shared machine. */
  names?: { requester?: string; customerUser?: string; customerCode?: string; customerName?: string };
  screenshots?: string;
  log?: (line: string) => void;
}

export interface JourneyResult {
  hostId: string;
  requestId: string;
  allocationId: string;
  customerId: string;
  requester: string;
  customerUser: string;
  /** OS accounts the walkthrough created on the host (the test removes what reclaim did not). */
  osUsers: string[];
}

const sel = (id: string) => `[data-test="${id}"]`;
const check = (cond: unknown, what: string) => {
  if (!cond) throw new Error(`walkthrough: ${what}`);
};
// (the password policy refuses one that contains the username)
const newPassword = () => `Walk-${Math.random().toString(36).slice(2, 10)}-Pw9!`;

function sshRun(h: TestHostDetails, auth: { username: string; password?: string; privateKey?: string }, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on('ready', () =>
      c.exec(command, (err, stream) => {
        if (err) return reject(err);
        let out = '';
        stream.on('data', (d: Buffer) => (out += d.toString()));
        stream.on('close', () => (c.end(), resolve(out.trim())));
      }),
    );
    c.on('error', reject);
    c.connect({ host: h.address, port: h.port, readyTimeout: 8000, ...auth });
  });
}

export async function runConsoleWalkthrough(o: JourneyOptions): Promise<JourneyResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`[walkthrough] ${l}\n`));
  const requester = o.names?.requester ?? 'alice';
  const customerUser = o.names?.customerUser ?? 'ana';
  const customerCode = o.names?.customerCode ?? 'acme';
  const customerName = o.names?.customerName ?? 'Acme AI';
  const osUsers: string[] = [];
  const pages: Page[] = [];
  const shot = async (pg: Page, name: string) => {
    if (o.screenshots) await pg.screenshot({ path: join(o.screenshots, `walkthrough-${name}.png`), fullPage: true });
  };

  async function window(): Promise<Page> {
    // One browser profile per person (the README: "a second browser profile, or a private window").
    const ctx = await o.browser.newContext({ baseURL: o.baseUrl, viewport: { width: 1440, height: 900 }, locale: 'en-US', timezoneId: 'UTC', acceptDownloads: true });
    const pg = await ctx.newPage();
    pg.on('pageerror', (e) => log(`pageerror: ${e.message}`));
    pg.on('console', (m) => m.type() === 'error' && log(`console: ${m.text()}`));
    pages.push(pg);
    return pg;
  }
  /** Sign in with a one-time password; the console asks for a new one first. Returns the new one. */
  async function firstSignIn(pg: Page, username: string, oneTime: string): Promise<string> {
    await pg.goto('/');
    await pg.waitForSelector(sel('username'));
    await pg.fill(sel('username'), username);
    await pg.fill(sel('password'), oneTime);
    await pg.click(sel('login-submit'));
    await pg.waitForURL(/\/change-password$/, { timeout: 15_000 });
    const pw = newPassword();
    await pg.fill(sel('pw-current'), oneTime);
    await pg.fill(sel('pw-new'), pw);
    await pg.fill(sel('pw-repeat'), pw);
    await pg.click(sel('pw-submit'));
    await pg.waitForSelector(sel('user-menu'), { timeout: 15_000 });
    check(!pg.url().endsWith('/change-password'), `${username} is past the password change`);
    return pw;
  }
  async function pick(pg: Page, select: string, option: string) {
    await pg.click(sel(select));
    await pg.locator('.el-select-dropdown__item:visible', { hasText: option }).first().click();
  }
  async function messageBox(pg: Page, input: string | null, button: 'primary' | 'cancel' = 'primary') {
    await pg.waitForSelector('.el-message-box');
    if (input !== null) await pg.fill('.el-message-box__input input', input);
    await pg.click(button === 'primary' ? '.el-message-box__btns .el-button--primary' : '.el-message-box__btns .el-button:not(.el-button--primary)');
  }
  async function oneTimeFromDialog(pg: Page): Promise<string> {
    await pg.waitForSelector(sel('once-password'));
    const pw = (await pg.textContent(sel('once-password')))!.trim();
    check(pw.length >= 12, 'a one-time password is shown');
    await pg.click(sel('once-close'));
    await pg.waitForSelector(sel('shown-once'), { state: 'hidden' });
    return pw;
  }
  const idFromUrl = (pg: Page) => new URL(pg.url()).pathname.split('/').pop()!;

  try {
    // 1. The first admin signs in with the printed one-time password and sets a new one.
    log('1. admin signs in');
    const ad = await window();
    await firstSignIn(ad, o.admin.username, o.admin.oneTimePassword);
    await ad.waitForSelector(sel('card-hosts'), { timeout: 15_000 });
    await shot(ad, '01-dashboard');

    // 2. Hosts → Add host, with what `npm run testhost` printed (the key from its file).
    log('2. add the test host');
    await ad.click(sel('menu-hosts'));
    await ad.click(sel('host-add'));
    await ad.waitForSelector(sel('host-add-dialog'));
    await ad.fill(sel('host-name'), o.host.name);
    await ad.fill(sel('host-address'), o.host.address);
    await ad.locator(`${sel('host-port')} input, input${sel('host-port')}`).first().fill(String(o.host.port));
    await ad.fill(sel('host-username'), o.host.login);
    await ad.setInputFiles(sel('host-key-file'), o.host.keyFile);
    await ad.waitForFunction(`document.querySelector('textarea[data-test="host-key"]')?.value.includes('PRIVATE KEY')`);
    await shot(ad, '02-add-host');
    await ad.click(sel('host-submit'));
    await ad.waitForURL(/\/hosts\/[0-9a-f-]{36}$/, { timeout: 15_000 });
    const hostId = idFromUrl(ad);

    // 3. Onboard it and watch the steps to online.
    log('3. onboard it');
    await ad.click(sel('host-onboard'));
    await ad.waitForSelector(sel('onboarding-steps'), { timeout: 30_000 });
    await ad.waitForSelector('h2 >> text="online"', { timeout: 150_000 });
    await ad.waitForSelector(`${sel('onboarding-steps')} >> text=mark-online`);
    check((await ad.textContent(`${sel('onboarding-steps')}`))?.includes('connect'), 'the onboarding steps are listed');
    await shot(ad, '03-host-onboarded');

    // 4. Administration → Users → New user: the requester, one-time password shown once.
    log('4. a requester');
    await ad.goto('/admin/users');
    await ad.click(sel('user-new'));
    await ad.fill(sel('user-username'), requester);
    await ad.fill(sel('user-email'), `${requester}@example.com`);
    await ad.click(sel('user-roles'));
    await ad.click(sel('role-option-requester'));
    await ad.click(`${sel('user-new-dialog')} .el-dialog__title`);
    await ad.click(sel('user-submit'));
    const requesterOnce = await oneTimeFromDialog(ad);
    await ad.waitForSelector(`${sel('user-table')} >> text=${requester}`);

    // 5. The requester, in her own window: first sign-in, then the account opening form.
    log('5. the requester asks for an account');
    const rq = await window();
    await firstSignIn(rq, requester, requesterOnce);
    await rq.click(sel('menu-account-openings'));
    await rq.click(sel('ao-new'));
    await pick(rq, 'ao-host', o.host.name);
    await rq.fill(sel('ao-username'), requester);
    await rq.fill(sel('ao-fullname'), 'Alice Example');
    await rq.fill(sel('ao-email'), `${requester}@example.com`);
    await rq.click(sel('ao-groups'));
    await rq.keyboard.type('users');
    await rq.keyboard.press('Enter');
    await rq.click('.el-dialog:visible .el-dialog__title'); // closes the groups dropdown
    await rq.click(sel('ao-submit'));
    await rq.waitForSelector(`${sel('ao-table')} >> text=${requester}`, { timeout: 15_000 });
    osUsers.push(requester);

    // 6. The admin reads the plan and approves.
    log('6. the admin reads the plan and approves');
    await ad.goto('/account-openings');
    await ad.click(sel(`plan-${requester}`), { timeout: 15_000 });
    await ad.waitForSelector(`${sel('plan-dialog')} ${sel('plan-view')}`);
    const plan = (await ad.textContent(sel('plan-view'))) ?? '';
    for (const b of ['hostflow-user-exists', 'hostflow-create-user', 'hostflow-set-password']) check(plan.includes(b), `the plan lists ${b}`);
    check(plan.includes('<generated password, 20 chars>'), 'the plan shows the password as a placeholder');
    await shot(ad, '06-plan');
    await ad.click(sel('plan-approve'));
    await messageBox(ad, 'ok');
    await ad.waitForSelector('.el-message--success');

    // 7. The requester reveals the password once and logs in over SSH with it.
    log('7. reveal once, ssh login');
    await rq.waitForSelector(sel(`reveal-${requester}`), { timeout: 120_000 });
    await rq.click(sel(`reveal-${requester}`));
    await rq.waitForSelector(sel('revealed-password'));
    const accountPassword = (await rq.textContent(sel('revealed-password')))!.trim();
    await shot(rq, '07-revealed');
    check((await sshRun(o.host, { username: requester, password: accountPassword }, 'id -un')) === requester, 'the revealed password logs in over SSH');
    await rq.keyboard.press('Escape');
    // On the host's page: the account and the commands the request ran.
    await ad.goto(`/hosts/${hostId}`);
    await ad.waitForSelector(`${sel('host-commands')} >> text=hostflow-create-user`, { timeout: 15_000 });
    await ad.waitForSelector(`text=${requester}`);
    await shot(ad, '07-host-commands');

    // 8. Customers → New customer → Add user (a member), one-time password shown once.
    log('8. a customer and its user');
    await ad.goto('/customers');
    await ad.click(sel('customer-new'));
    await ad.fill(sel('customer-name'), customerName);
    await ad.fill(sel('customer-code'), customerCode);
    await ad.fill(sel('customer-email'), `ops@${customerCode}.example`);
    await ad.click(sel('customer-submit'));
    await ad.waitForURL(/\/customers\/[0-9a-f-]{36}$/, { timeout: 15_000 });
    const customerId = idFromUrl(ad);
    await ad.click(sel('cuser-new'));
    await ad.fill(sel('cuser-username'), customerUser);
    await ad.fill(sel('cuser-email'), `${customerUser}@${customerCode}.example`);
    await ad.fill(sel('cuser-tz'), 'Asia/Shanghai');
    await ad.click(sel('cuser-submit'));
    const anaOnce = await oneTimeFromDialog(ad);
    await ad.waitForSelector(`${sel('cuser-table')} >> text=${customerUser}`);

    // 9. The customer user adds her SSH key.
    log('9. the customer user adds her SSH key');
    const keyDir = mkdtempSync(join(tmpdir(), 'walkthrough-key-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keyDir, 'key'), '-C', `${customerUser}@laptop`]);
    const publicKey = readFileSync(join(keyDir, 'key.pub'), 'utf8').trim();
    const privateKey = readFileSync(join(keyDir, 'key'), 'utf8');
    const an = await window();
    await firstSignIn(an, customerUser, anaOnce);
    await an.click(sel('menu-ssh-keys'));
    await an.fill(sel('ssh-key-input'), publicKey);
    await an.click(sel('ssh-key-add'));
    await an.waitForSelector(`${sel('ssh-key-table')} >> text=SHA256:`, { timeout: 15_000 });

    // 10. The admin rents the host out: Allocations → New allocation.
    log('10. rent the host to the customer');
    await ad.click(sel('menu-allocations'));
    await ad.click(sel('alloc-new'), { timeout: 15_000 });
    await ad.waitForSelector(sel('alloc-new-dialog'));
    await ad.click(sel('alloc-new-host'));
    await ad.click(sel(`alloc-new-host-${o.host.name}`));
    await ad.click(sel('alloc-new-customer'));
    await ad.click(sel(`alloc-new-customer-${customerCode}`));
    await ad.click(sel('alloc-new-user'));
    await ad.click(sel(`alloc-new-user-${customerUser}`));
    await shot(ad, '10-rent-form');
    await ad.click(sel('alloc-new-submit'));
    await ad.waitForURL(/\/allocations\/[0-9a-f-]{36}$/, { timeout: 15_000 });
    const allocationId = idFromUrl(ad);
    osUsers.push(customerUser);
    await ad.waitForSelector('h2 >> text="active"', { timeout: 180_000 });
    await ad.waitForSelector(sel('lease-reminder-7d'));
    await ad.waitForSelector(sel('connection-summary'), { timeout: 15_000 });
    await shot(ad, '10-allocation-active');
    await ad.click(sel('alloc-reclaim-plan'));
    await ad.waitForSelector(`${sel('alloc-plan-dialog')} ${sel('plan-view')}`);
    check(((await ad.textContent(sel('alloc-plan-dialog'))) ?? '').includes('hostflow-delete-user'), 'the reclaim plan removes the account');
    await ad.click(`${sel('alloc-plan-dialog')} .el-dialog__footer .el-button`);
    await ad.waitForSelector(sel('alloc-plan-dialog'), { state: 'hidden' });
    check((await sshRun(o.host, { username: customerUser, privateKey }, 'id -un')) === customerUser, "the customer's key logs in");
    // Her "My machines": only her allocation; the password once.
    await an.goto('/allocations');
    await an.waitForSelector(`${sel('alloc-table')} >> text=${o.host.name}`, { timeout: 15_000 });
    await an.goto(`/allocations/${allocationId}`);
    await an.click(sel('alloc-reveal'), { timeout: 15_000 });
    await an.waitForSelector(sel('revealed-password'));
    await an.keyboard.press('Escape');

    // 11. Extend: the reminders move with the end.
    log('11. extend the lease');
    const endText = async () => (await ad.textContent(sel('lease-reminder-7d'))) ?? '';
    const before = await endText();
    await ad.click(sel('alloc-extend'));
    const current = await ad.inputValue('.el-message-box__input input');
    const newEnd = new Date(new Date(current).getTime() + 3 * 86_400_000).toISOString();
    await messageBox(ad, newEnd);
    await ad.waitForSelector('.el-message--success');
    const want = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' }).format(new Date(new Date(newEnd).getTime() - 7 * 86_400_000));
    await ad.waitForSelector(`${sel('lease-reminder-7d')} >> text=${want}`, { timeout: 20_000 });
    check((await endText()) !== before, 'the 7-day reminder moved');
    await shot(ad, '11-extended');
    await ad.goto('/hosts');
    await ad.click(sel('host-filter-available'));
    await ad.click(sel('host-filter-allocated'));
    await ad.waitForSelector(`${sel('host-table')} >> text=${o.host.name}`, { timeout: 15_000 });

    // 12. The customer returns it early and reclaims now; the page follows to reclaimed.
    log('12. return early, reclaim');
    await an.goto(`/allocations/${allocationId}`);
    await an.click(sel('alloc-return'), { timeout: 15_000 });
    await messageBox(an, null, 'primary');
    await an.waitForSelector('h2 >> text="reclaimed"', { timeout: 240_000 });
    await shot(an, '12-reclaimed');
    check(await sshRun(o.host, { username: customerUser, privateKey }, 'id -un').then(() => false, () => true), "the customer's login is gone after the reclaim");

    // 13. The audit trail of the allocation (create, extend with its diff, return) and of the request.
    log('13. the audit trail');
    await ad.goto(`/allocations/${allocationId}`);
    await ad.click(sel('alloc-audit'), { timeout: 15_000 });
    await ad.waitForURL(/\/audit\?target_id=/);
    for (const action of ['allocation.create', 'allocation.extend', 'allocation.return']) await ad.waitForSelector(`${sel('audit-table')} >> text=${action}`, { timeout: 15_000 });
    await ad.locator(`${sel('audit-table')} tr:has-text("allocation.extend") button`).first().click();
    await ad.waitForSelector('.el-dialog >> text=ends_at');
    await shot(ad, '13-audit-diff');
    await ad.keyboard.press('Escape');
    const download = ad.waitForEvent('download');
    await ad.click('button:has-text("Export CSV")');
    check((await download).suggestedFilename() === 'audit.csv', 'the export downloads');
    await ad.goto('/account-openings');
    await ad.click('label:has-text("All")');
    await ad.click(`${sel('ao-table')} >> text=${requester}`);
    await ad.click(sel('ao-audit'));
    await ad.waitForURL(/\/audit\?target_id=/);
    const reqId = new URL(ad.url()).searchParams.get('target_id')!;
    await ad.waitForSelector(`${sel('audit-table')} >> text=account-opening.submit`, { timeout: 15_000 });
    await ad.waitForSelector(`${sel('audit-table')} >> text=account-opening.reveal`);
    await shot(ad, '13-audit-request');
    log('done');
    return { hostId, requestId: reqId, allocationId, customerId, requester, customerUser, osUsers };
  } catch (err) {
    // Where each window was when it broke.
    if (o.screenshots) for (const [i, pg] of pages.entries()) await pg.screenshot({ path: join(o.screenshots, `walkthrough-failed-${i}.png`), fullPage: true }).catch(() => undefined);
    for (const [i, pg] of pages.entries()) log(`window ${i} at ${pg.url()}: ${((await pg.textContent('body').catch(() => '')) ?? '').replace(/\s+/g, ' ').slice(0, 400)}`);
    throw err;
  } finally {
    for (const pg of pages) await pg.context().close().catch(() => undefined);
  }
}
