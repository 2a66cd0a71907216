// Fault injection: Ctrl-C under load. `npm start` (the real one: scripts/start.ts with its own
// Temporal dev server and PGlite in a temp DATA_DIR) gets SIGINT on its whole process group, as a
// terminal's Ctrl-C sends it, while a batch of 20 account openings is provisioning on a real sshd
// host and 20 HTTP requests are on the wire on open keep-alive connections. It must drain (every
// request sent before the signal answered), exit 0, leave no dev server behind, and the next `npm start` on the
// same DATA_DIR must come up and finish the batch: 20/20 done, no duplicate account, every revealed
// password logs in over SSH.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { Agent, request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from '../global-setup.js';
import { startSshd, type SshTestHost } from '../helpers/sshd.js';
import { processCmdline, readPidfile } from '../../scripts/dev-server-supervisor.js';
import { BATCH_SIZE, loginAs, removeBatchAccounts, type BatchRequest } from './batch.js';
import { npmStart, until, type Run } from '../helpers/start-process.js';


/** One HTTP request: on a connection of its own, or on `agent`'s keep-alive connections. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read loosely typed JSON
function call(port: number, method: string, path: string, token?: string, body?: unknown, agent?: Agent): Promise<{ status: number; json: { code: number; message: string; data: any } }> {
  return new Promise((res, rej) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      { host: '127.0.0.1', port, method, path, agent: agent ?? false, headers: { ...(agent ? {} : { connection: 'close' }), ...(token ? { authorization: `Bearer ${token}` } : {}), ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) } },
      (r) => {
        let data = '';
        r.on('data', (d: Buffer) => (data += d.toString()));
        r.on('end', () => {
          try {
            res({ status: r.statusCode!, json: JSON.parse(data) });
          } catch (err) {
            rej(new Error(`${method} ${path}: ${r.statusCode} unparsable answer (${(err as Error).message}): ${data.slice(0, 200)}`));
          }
        });
        r.on('error', rej);
      },
    );
    req.on('error', rej);
    req.end(payload);
  });
}

const ready = (port: number) => call(port, 'GET', '/readyz').then((r) => r.status === 200, () => false);
const alive = (pid: number, argv: string[]) => {
  const c = processCmdline(pid);
  return !!c && c.join('\0') === argv.join('\0');
};

describe('fault: Ctrl-C (SIGINT to the npm start group) while 20 account openings provision and requests are in flight', () => {
  let dataDir: string;
  let sshd: SshTestHost | undefined;
  const runs: Run[] = [];
  const reqs: BatchRequest[] = [];

  afterAll(async () => {
    for (const r of runs) {
      if (r.child.exitCode === null && r.child.signalCode === null) {
        process.kill(-r.child.pid!, 'SIGINT');
        await Promise.race([r.exit, delay(60_000)]);
        try {
          process.kill(-r.child.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    if (dataDir) {
      const rec = readPidfile(join(dataDir, 'temporal-dev.pid'));
      if (rec && alive(rec.pid, rec.argv)) process.kill(rec.pid, 'SIGKILL');
    }
    if (sshd) {
      await removeBatchAccounts(sshd, reqs);
      await sshd.stop();
    }
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('drains, exits 0, leaves no dev server; the next start finishes 20/20 with no duplicate and no lost password', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'hostflow-ctrlc-'));
    const apiPort = await freePort();
    const env = { DATA_DIR: dataDir, API_PORT: String(apiPort), TEMPORAL_DEV_PORT: String(await freePort()), TEMPORAL_UI_PORT: String(await freePort()), SHUTDOWN_GRACE_MS: '20000' };
    sshd = await startSshd();
    let run = npmStart(env);
    runs.push(run);
    await until('npm start to be ready', () => ready(apiPort), 180_000, run);

    // The first admin (one-time password from the banner) → a password of its own → an API key; an approver.
    const pw = await until('the one-time password', () => /one-time password[^\n]*:\n\n\s+(\S+)\n/.exec(run.log())?.[1], 10_000, run);
    const login1 = await call(apiPort, 'POST', '/api/v1/auth/login', undefined, { username: 'admin', password: pw });
    const newPw = 'Ctrl-C-under-l0ad!';
    expect((await call(apiPort, 'POST', '/api/v1/auth/password/change', login1.json.data.access_token, { current_password: pw, new_password: newPw })).json.code).toBe(0);
    const login2 = await call(apiPort, 'POST', '/api/v1/auth/login', undefined, { username: 'admin', password: newPw });
    const admin = (await call(apiPort, 'POST', '/api/v1/api-keys', login2.json.data.access_token, { name: 'faults', roles: ['admin'] })).json.data.key as string;
    const bob = await call(apiPort, 'POST', '/api/v1/users', admin, { username: 'bob', roles: ['approver'] });
    const bobKey = (await call(apiPort, 'POST', '/api/v1/api-keys', admin, { name: 'faults', user_id: bob.json.data.id })).json.data.key as string;

    const host = await call(apiPort, 'POST', '/api/v1/hosts', admin, { name: 'ctrl-c', address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey });
    expect(host.json.code, JSON.stringify(host.json)).toBe(0);
    const hostId = host.json.data.id as string;
    await call(apiPort, 'POST', `/api/v1/hosts/${hostId}/status`, admin, { status: 'onboarding' });
    await call(apiPort, 'POST', `/api/v1/hosts/${hostId}/status`, admin, { status: 'online' });

    const tag = Math.random().toString(16).slice(2, 6);
    for (let i = 0; i < BATCH_SIZE; i++) {
      const username = `c${tag}${String(i).padStart(2, '0')}`;
      const r = await call(apiPort, 'POST', '/api/v1/account-openings', admin, { host_id: hostId, username, full_name: `Ctrl C ${i}`, contact_email: `${username}@example.com` });
      expect(r.json.code, JSON.stringify(r.json)).toBe(0);
      reqs.push({ id: r.json.data.id, username });
    }
    const status = async () => Promise.all(reqs.map(async (q) => (await call(apiPort, 'GET', `/api/v1/account-openings/${q.id}`, admin)).json.data.status as string));
    await Promise.all(reqs.map(async (q) => expect((await call(apiPort, 'POST', `/api/v1/account-openings/${q.id}/approve`, bobKey, { notes: 'ok' })).json.code).toBe(0)));
    // Provisioning is under way (approved, most not done), and 20 requests are on the wire on open
    // keep-alive connections when Ctrl-C arrives.
    const agent = new Agent({ keepAlive: true, maxSockets: 20 });
    const get = () => call(apiPort, 'GET', '/api/v1/account-openings?page_size=100', admin, undefined, agent).then((r) => ({ ok: r.status, err: '' }), (e: NodeJS.ErrnoException) => ({ ok: 0, err: e.code ?? e.message }));
    expect((await Promise.all(Array.from({ length: 20 }, get))).every((a) => a.ok === 200)).toBe(true); // 20 open connections
    const before = (await status()).filter((s) => s === 'done').length;
    const server = readPidfile(join(dataDir, 'temporal-dev.pid'))!;
    const inFlight = Array.from({ length: 20 }, get);
    await delay(5);
    const sigintAt = Date.now();
    process.kill(-run.child.pid!, 'SIGINT');
    const answers = await Promise.all(inFlight);
    agent.destroy();
    const { code, signal } = await run.exit;
    const stopMs = Date.now() - sigintAt;
    console.log(`[faults] ctrl-c: ${before}/${BATCH_SIZE} done at the signal; stopped in ${(stopMs / 1000).toFixed(1)} s; in-flight requests: ${JSON.stringify(answers.reduce<Record<string, number>>((m, a) => ((m[a.ok ? String(a.ok) : a.err] = (m[a.ok ? String(a.ok) : a.err] ?? 0) + 1), m), {}))}`);
    expect(before, 'the batch must still be provisioning at the signal, or this proves nothing').toBeLessThan(BATCH_SIZE);
    expect({ code, signal }, run.log().slice(-3000)).toEqual({ code: 0, signal: null });
    expect(run.log()).toContain('"msg":"stopped"');
    // Drained: every request either got its full answer, or was refused before it was accepted (listener closed).
    for (const a of answers) expect(a, 'a request sent before Ctrl-C must get its answer').toEqual({ ok: 200, err: '' });
    expect(alive(server.pid, server.argv)).toBe(false);
    expect(existsSync(join(dataDir, 'temporal-dev.pid'))).toBe(false);

    // The next start on the same DATA_DIR comes up and the batch finishes.
    run = npmStart(env);
    runs.push(run);
    await until('npm start to be ready again', () => ready(apiPort), 180_000, run);
    const final = await until('every request to end done or failed', async () => {
      const s = await status();
      return s.every((x) => x === 'done' || x === 'failed') ? s : undefined;
    }, 240_000, run);
    const failed = reqs.filter((_, i) => final[i] === 'failed');
    for (const q of failed) expect((await call(apiPort, 'POST', `/api/v1/account-openings/${q.id}/process`, admin)).json.code).toBe(0);
    await until('20/20 done', async () => (await status()).every((x) => x === 'done'), 240_000, run);
    console.log(`[faults] ctrl-c: after the restart ${BATCH_SIZE - failed.length} done, ${failed.length} failed then processed to done`);

    const passwd = spawnSync('getent', ['passwd'], { encoding: 'utf8' }).stdout;
    for (const q of reqs) {
      expect(passwd.split('\n').filter((l) => l.startsWith(`${q.username}:`)), q.username).toHaveLength(1);
      const accounts = await call(apiPort, 'GET', `/api/v1/cloud-users?host_id=${hostId}&username=${q.username}`, admin);
      expect(accounts.json.data.total, q.username).toBe(1);
      const rev = await call(apiPort, 'POST', `/api/v1/account-openings/${q.id}/credentials/reveal`, admin);
      expect(rev.status, `${q.username}: ${JSON.stringify(rev.json)}`).toBe(200);
      expect(await loginAs(sshd, q.username, rev.json.data.password)).toBe(q.username);
    }
  }, 600_000);
});
