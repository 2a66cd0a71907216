// `npm run testhost`: starts a throwaway local OpenSSH host (its own sshd on 127.0.0.1, an admin
// user with passwordless sudo), registers it with the running platform and marks it online, then
// waits. Ctrl-C (or SIGTERM) stops the sshd and removes the users it created, and the accounts the
// platform created on it (the throwaway host is this machine: they are local OS users, and a second
// walkthrough would otherwise find "alice" already there). Needs root (it creates OS users).
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { LINUX_MARKER_DIR } from '../activities/remote/linux.js';
import { startSshd } from '../test/helpers/sshd.js';

const api = process.env.HOSTFLOW_API ?? `http://127.0.0.1:${process.env.API_PORT ?? 3000}`;
const token = process.env.HOSTFLOW_TOKEN ?? '';
if (!token) {
  console.error('Set HOSTFLOW_TOKEN to an admin or operator API key (POST /api/v1/api-keys, or `npx hostflow apikey create --user admin --name testhost`).');
  process.exit(1);
}
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

const sshd = await startSshd();
let hostId: string | undefined;
try {
  const name = process.argv[2] ?? `testhost-${sshd.port}`;
  const host = await call('POST', '/api/v1/hosts', { name, address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey, tags: ['testhost'] });
  hostId = host.id;
  await call('POST', `/api/v1/hosts/${host.id}/ping`);
  await call('POST', `/api/v1/hosts/${host.id}/status`, { status: 'onboarding', reason: 'npm run testhost' });
  await call('POST', `/api/v1/hosts/${host.id}/status`, { status: 'online', reason: 'npm run testhost' });
  console.log(`Test host ${name} is online: sshd on ${sshd.host}:${sshd.port}, host id ${host.id}`);
  console.log(`  export HOST_ID=${host.id} SSH_PORT=${sshd.port}`);
  console.log('Ctrl-C stops it and removes its users.');
} catch (err) {
  console.error((err as Error).message);
  await sshd.stop();
  process.exit(1);
}
/** Removes the OS accounts the platform created on this host (best effort; says what it could not do). */
async function removePlatformAccounts() {
  if (!hostId) return;
  try {
    const page = (await call('GET', `/api/v1/cloud-users?host_id=${hostId}&page_size=100`)) as unknown as { items: Array<{ username: string; origin: string; status: string }> };
    for (const a of page.items) {
      if (a.origin !== 'platform-created' || a.status === 'deleted') continue;
      spawnSync('pkill', ['-KILL', '-u', a.username], { stdio: 'ignore' });
      const r = spawnSync('userdel', ['-r', '-f', a.username], { encoding: 'utf8' });
      // The platform's marker goes too: a later, unrelated account of that name is not "platform-created".
      if (r.status === 0) rmSync(join(LINUX_MARKER_DIR, a.username), { force: true });
      console.log(r.status === 0 ? `removed account ${a.username}` : `could not remove account ${a.username}: ${r.stderr.trim()}`);
    }
  } catch (err) {
    console.error(`could not list the accounts the platform created on this host (${(err as Error).message}); remove them with userdel if needed`);
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
