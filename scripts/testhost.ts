// `npm run testhost`: starts a throwaway local OpenSSH host (its own sshd on 127.0.0.1, an admin
// user with passwordless sudo), then waits. Two ways to use it:
// - without HOSTFLOW_TOKEN (the console walkthrough): it prints what to type into the console's
//   Hosts → Add host (address, port, management login, the private key's file) and writes an import
//   file for Hosts → Import; you add and onboard the host in the browser;
// - with HOSTFLOW_TOKEN (an admin or operator API key, the curl walkthroughs): it registers the host
//   with the running platform itself and marks it online.
// Ctrl-C (or SIGTERM) stops the sshd and removes the users it created, and the accounts the
// platform created on it (the throwaway host is this machine: they are local OS users, and a second
// walkthrough would otherwise find "alice" already there). Those accounts are the ones that logged in
// through this host's own sshd (its log, at LogLevel INFO) and carry the platform's marker
// (/var/lib/hostflow/accounts/<user>), plus, with a token, what the API lists for the host.
// Needs root (it creates OS users).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LINUX_MARKER_DIR } from '../activities/remote/linux.js';
import { startSshd } from '../test/helpers/sshd.js';

const api = process.env.HOSTFLOW_API ?? `http://127.0.0.1:${process.env.API_PORT ?? 3000}`;
const token = process.env.HOSTFLOW_TOKEN ?? '';
if (process.getuid?.() !== 0) {
  console.error('npm run testhost creates OS users for the throwaway host and must run as root.');
  process.exit(1);
}

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(api + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = (await res.json()) as { code: number; message: string; data: { id: string } };
  if (json.code !== 0) throw new Error(`${method} ${path}: ${res.status} ${json.message}`);
  return json.data;
}

const sshd = await startSshd({ logLevel: 'INFO' });
const name = process.argv[2] ?? `testhost-${sshd.port}`;
const keyFile = join(sshd.dir, 'admin_key');
let hostId: string | undefined;
if (token) {
  try {
    const host = await call('POST', '/api/v1/hosts', { name, address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey, tags: ['testhost'] });
    hostId = host.id;
    await call('POST', `/api/v1/hosts/${host.id}/ping`);
    await call('POST', `/api/v1/hosts/${host.id}/status`, { status: 'onboarding', reason: 'npm run testhost' });
    await call('POST', `/api/v1/hosts/${host.id}/status`, { status: 'online', reason: 'npm run testhost' });
    console.log(`Test host ${name} is online: sshd on ${sshd.host}:${sshd.port}, host id ${host.id}`);
    console.log(`  export HOST_ID=${host.id} SSH_PORT=${sshd.port}`);
  } catch (err) {
    console.error((err as Error).message);
    await sshd.stop();
    process.exit(1);
  }
} else {
  // Not registered: the console adds it. The import file is the same host as one JSON row.
  const importFile = join(sshd.dir, 'testhost.json');
  writeFileSync(importFile, `${JSON.stringify({ hosts: [{ name, address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey, tags: ['testhost'] }] }, null, 2)}\n`, { mode: 0o600 });
  console.log(`Test host ${name}: sshd on ${sshd.host}:${sshd.port} (not registered yet: add it in the console, Hosts → Add host)`);
  console.log(`  name              ${name}`);
  console.log(`  address           ${sshd.host}`);
  console.log(`  port              ${sshd.port}`);
  console.log(`  management login  ${sshd.adminUser}`);
  console.log(`  private key       ${keyFile}   (Choose file, or paste it)`);
  console.log(`  or Hosts → Import → Choose file: ${importFile}`);
  console.log(`  export SSH_PORT=${sshd.port}`);
}
console.log('Ctrl-C stops it and removes its users.');

/**
 * Users that logged in through this host's sshd (the platform proves every account it creates by
 * logging in as it). Collected while it runs: on a signal the sshd helper's safety net removes the
 * host's directory, log included, before this script's own handler gets to read it.
 */
const seenLogins = new Set<string>();
function collectLogins(): void {
  const log = join(sshd.dir, 'sshd.log');
  const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
  for (const m of text.matchAll(/Accepted \S+ for (\S+) from /g)) if (m[1] !== sshd.adminUser) seenLogins.add(m[1]!);
}
setInterval(collectLogins, 1000).unref();

const exists = (user: string) => spawnSync('id', ['-u', user], { stdio: 'ignore' }).status === 0;

/** Removes the OS accounts the platform created on this host (best effort; says what it could not do). */
async function removePlatformAccounts() {
  collectLogins();
  const names = new Set([...seenLogins].filter((u) => existsSync(join(LINUX_MARKER_DIR, u))));
  if (hostId) {
    try {
      const page = (await call('GET', `/api/v1/cloud-users?host_id=${hostId}&page_size=100`)) as unknown as { items: Array<{ username: string; origin: string; status: string }> };
      for (const a of page.items) if (a.origin === 'platform-created' && a.status !== 'deleted') names.add(a.username);
    } catch (err) {
      console.error(`could not list the accounts the platform created on this host (${(err as Error).message}); removing those found in its sshd log`);
    }
  }
  for (const user of names) {
    if (!exists(user)) continue; // reclaimed or deleted by the platform already
    spawnSync('pkill', ['-KILL', '-u', user], { stdio: 'ignore' });
    const r = spawnSync('userdel', ['-r', '-f', user], { encoding: 'utf8' });
    // The platform's marker goes too: a later, unrelated account of that name is not "platform-created".
    if (r.status === 0) rmSync(join(LINUX_MARKER_DIR, user), { force: true });
    console.log(r.status === 0 ? `removed account ${user}` : `could not remove account ${user}: ${r.stderr.trim()}`);
  }
}
const stop = async () => {
  await removePlatformAccounts();
  await sshd.stop();
  process.exit(0);
};
// A terminal's Ctrl-C reaches the whole group and npm relays it once more: one stop, however many signals.
let stopping: Promise<void> | undefined;
process.on('SIGINT', () => void (stopping ??= stop()));
process.on('SIGTERM', () => void (stopping ??= stop()));
setInterval(() => undefined, 1 << 30);
