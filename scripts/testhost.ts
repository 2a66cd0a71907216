// `npm run testhost`: starts a throwaway local OpenSSH host (its own sshd on 127.0.0.1, an admin
// user with passwordless sudo), registers it with the running platform and marks it online, then
// waits. Ctrl-C stops the sshd and removes the users it created. Needs root (it creates OS users).
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
try {
  const name = process.argv[2] ?? `testhost-${sshd.port}`;
  const host = await call('POST', '/api/v1/hosts', { name, address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey, tags: ['testhost'] });
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
const stop = async () => {
  await sshd.stop();
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
setInterval(() => undefined, 1 << 30);
