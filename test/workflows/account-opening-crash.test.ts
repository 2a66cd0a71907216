import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { startTestPlatform, startWorkerFor, type TestPlatform } from '../helpers/platform.js';
import { startSshd, sshExec, type SshTestHost } from '../helpers/sshd.js';
import { HostAccountSchema } from '../../db/entities/index.js';
import { formatKeyring } from '../../db/vault.js';

describe('worker crash during provisioning (PostgreSQL, real Temporal, real sshd)', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  let child: ChildProcess | undefined;
  const username = `cr${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    // No in-process worker: the first worker lives in a child process we can kill.
    [p, sshd] = await Promise.all([startTestPlatform({ db: 'postgres', worker: false }), startSshd()]);
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await sshExec(sshd, `sudo -n userdel -r -f ${username}; sudo -n rm -f /var/lib/hostflow/accounts/${username}`).catch(() => undefined);
    await p?.close();
    await sshd?.stop();
  });

  it('after SIGKILL and a restart, exactly one account and one stored password exist', async () => {
    const h = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: 'crash-host', address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
    const hostId = h.body.data.id;
    await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'onboarding' } });
    await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'online' } });

    // node itself with tsx's loader (not the tsx launcher), so SIGKILL hits the worker process.
    child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../fixtures/worker-process.ts', import.meta.url))], {
      env: {
        ...process.env,
        HF_DATABASE_URL: p.db.orm.config.get('clientUrl') as string,
        HF_TEMPORAL: inject('temporalAddress'),
        HF_TASK_QUEUE: p.taskQueue,
        HF_KEYS: formatKeyring(p.keyring),
        HF_PAYLOAD_KEYS: formatKeyring(p.payloadKeys),
        HF_BUNDLE: inject('workflowBundlePath'),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child!.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child!.once('exit', (c) => reject(new Error(`worker exited ${c}`)));
    });

    const r = await p.api('POST', '/api/v1/account-openings', { token: p.tokens.requester, body: { host_id: hostId, username, full_name: 'Crash Test', contact_email: 'c@example.com' } });
    await p.api('POST', `/api/v1/account-openings/${r.body.data.id}/approve`, { token: p.tokens.approver });

    // Kill the worker as soon as provisioning has recorded its intent (password stored, account maybe being created).
    const deadline = Date.now() + 30_000;
    while (!(await p.db.em.fork().findOne(HostAccountSchema, { username }))) {
      if (Date.now() > deadline) throw new Error('provisioning never started');
      await new Promise((res) => setTimeout(res, 5));
    }
    child.kill('SIGKILL');
    await new Promise((res) => child!.once('exit', res));
    const killedAt = Date.now();

    // A new worker takes over; Temporal retries the interrupted activity after its timeout.
    const w = await startWorkerFor(p);
    try {
      const result = await p.client.workflow.getHandle(`account-opening/${r.body.data.id}`).result();
      expect(result.phase, JSON.stringify(result.error)).toBe('done');
    } finally {
      await w.stop();
    }
    // The interrupted attempt really was interrupted: the activity ran again on the new worker.
    const hist = await p.client.workflow.getHandle(`account-opening/${r.body.data.id}`).fetchHistory();
    const provisionAttempts = hist.events!.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 0);
    expect(Math.max(...provisionAttempts)).toBeGreaterThanOrEqual(2);
    expect(Date.now() - killedAt).toBeGreaterThan(1000);
    const accounts = await p.db.em.fork().find(HostAccountSchema, { username });
    expect(accounts).toHaveLength(1);
    expect(accounts[0]!.secretVersion).toBe(1);
    expect((await sshExec(sshd, `getent passwd ${username} | wc -l`)).stdout.trim()).toBe('1');
    const rev = await p.api('POST', `/api/v1/account-openings/${r.body.data.id}/credentials/reveal`, { token: p.tokens.requester });
    expect(rev.status).toBe(200);
    const { Client } = await import('ssh2');
    const who = await new Promise<string>((resolve, reject) => {
      const c = new Client();
      c.on('ready', () => c.exec('id -un', (err, s) => {
        if (err) return reject(err);
        let out = '';
        s.on('data', (d: Buffer) => (out += d));
        s.on('close', () => { c.end(); resolve(out.trim()); });
      }));
      c.on('error', reject);
      c.connect({ host: sshd.host, port: sshd.port, username, password: rev.body.data.password });
    });
    expect(who).toBe(username);
  }, 120_000);
});
