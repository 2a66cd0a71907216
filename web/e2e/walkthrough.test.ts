// The README's "Walkthrough in the console", end to end in Debian's chromium (playwright-core,
// headless) against the real platform (Temporal worker, the app serving the built web/dist) and a
// real sshd test host, as `npm run testhost` starts it. Every action on the platform is a click
// (web/e2e/walkthrough-journey.ts); the API is only read afterwards to check what the clicks did.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { chromium, type Browser } from 'playwright-core';
import { startTestPlatform, type TestPlatform } from '../../test/helpers/platform.js';
import { sshExec, startSshd, type SshTestHost } from '../../test/helpers/sshd.js';
import { ensureWebBuilt, WEB_DIST } from '../../scripts/build-web.js';
import { runConsoleWalkthrough, type JourneyResult } from './walkthrough-journey.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = process.env.CONSOLE_SCREENSHOTS ?? '.data/screenshots';

describe('README walkthrough in the console (chromium, real platform, real sshd host)', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  let browser: Browser;
  const tag = randomBytes(2).toString('hex');
  let result: JourneyResult | undefined;

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    await ensureWebBuilt((l) => process.stderr.write(`${l}\n`));
    // The test host as `npm run testhost` starts it (sshd logging accepted logins).
    [p, sshd] = await Promise.all([startTestPlatform({ console: { distDir: WEB_DIST, temporalUi: { url: 'http://localhost:8233', namespace: 'default' } } }), startSshd({ logLevel: 'INFO' })]);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    for (const u of result?.osUsers ?? [`alice${tag}`, `ana${tag}`]) await sshExec(sshd, `sudo -n pkill -KILL -u ${u}; sudo -n userdel -r -f ${u}; sudo -n rm -f /var/lib/hostflow/accounts/${u}`).catch(() => undefined);
    await p?.close();
    await sshd?.stop();
  });

  it('the first admin adds and onboards the test host, an account is requested, approved from its plan and revealed, the host is rented, extended, returned and reclaimed, and the audit trail shows it — all clicked', async () => {
    // The first admin as npm start creates it: a one-time password, must change.
    const admin = await p.api('POST', '/api/v1/users', { body: { username: `admin${tag}`, roles: ['admin'] } });
    expect(admin.status, JSON.stringify(admin.body)).toBe(201);
    result = await runConsoleWalkthrough({
      browser,
      baseUrl: p.baseUrl,
      admin: { username: `admin${tag}`, oneTimePassword: admin.body.data.initial_password },
      host: { name: `testhost-${sshd.port}`, address: sshd.host, port: sshd.port, login: sshd.adminUser, keyFile: join(sshd.dir, 'admin_key') },
      names: { requester: `alice${tag}`, customerUser: `ana${tag}`, customerCode: `acme${tag}`, customerName: `Acme AI ${tag}` },
      screenshots: SHOTS,
    });

    // What the clicks did, read back from the API.
    const host = await p.api('GET', `/api/v1/hosts/${result.hostId}`);
    expect(host.body.data).toMatchObject({ status: 'online', allocated: false, host_key_fingerprint: sshd.hostKeyFingerprintSha256 });
    const req = await p.api('GET', `/api/v1/account-openings/${result.requestId}`);
    expect(req.body.data).toMatchObject({ status: 'done', username: `alice${tag}` });
    const alloc = await p.api('GET', `/api/v1/allocations/${result.allocationId}`);
    expect(alloc.body.data).toMatchObject({ status: 'reclaimed', customer: { code: `acme${tag}` }, customer_user: { username: `ana${tag}` } });
    // Reclaimed: the customer's account is gone from the host; the requester's account stays.
    expect((await sshExec(sshd, `id -u ana${tag} >/dev/null 2>&1 && echo present || echo absent`)).stdout.trim()).toBe('absent');
    expect((await sshExec(sshd, `id -u alice${tag} >/dev/null 2>&1 && echo present || echo absent`)).stdout.trim()).toBe('present');
    const trail = await p.api('GET', `/api/v1/audit-events?target_id=${result.allocationId}&limit=50`);
    const actions = (trail.body.data.items as Array<{ action: string; actor: string }>).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['allocation.create', 'allocation.extend', 'allocation.return']));
  }, 900_000);
});
