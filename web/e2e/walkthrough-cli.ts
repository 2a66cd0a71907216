// Runs the README's console walkthrough (web/e2e/walkthrough-journey.ts) in headless chromium
// against a running `npm start` and `npm run testhost`, as a newcomer would click it:
//   node --import tsx web/e2e/walkthrough-cli.ts --url http://127.0.0.1:3000 --admin-password '<printed>' \
//     --host-name testhost-40123 --port 40123 --login hfadmabcde --key-file /tmp/hostflow-sshd-…/admin_key [--shots DIR]
// Names are the README's (alice, ana, acme) unless --suffix is given.
import { parseArgs } from 'node:util';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { runConsoleWalkthrough } from './walkthrough-journey.js';

const { values: a } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:3000' },
    admin: { type: 'string', default: 'admin' },
    'admin-password': { type: 'string' },
    'host-name': { type: 'string' },
    address: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    login: { type: 'string' },
    'key-file': { type: 'string' },
    shots: { type: 'string' },
    suffix: { type: 'string', default: '' },
  },
});
for (const k of ['admin-password', 'host-name', 'port', 'login', 'key-file'] as const) if (!a[k]) throw new Error(`--${k} is required`);
if (a.shots) mkdirSync(a.shots, { recursive: true });
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
try {
  const r = await runConsoleWalkthrough({
    browser,
    baseUrl: a.url!,
    admin: { username: a.admin!, oneTimePassword: a['admin-password']! },
    host: { name: a['host-name']!, address: a.address!, port: Number(a.port), login: a.login!, keyFile: a['key-file']! },
    names: { requester: `alice${a.suffix}`, customerUser: `ana${a.suffix}`, customerCode: `acme${a.suffix}`, customerName: `Acme AI${a.suffix ? ` ${a.suffix}` : ''}` },
    screenshots: a.shots,
    log: (l) => console.log(`[walkthrough] ${l}`),
  });
  console.log(JSON.stringify(r));
} finally {
  await browser.close();
}
