// Shared by the fault-injection tests: a batch of account openings through the real API, and the
// checks every fault must pass (each request ends done or failed, failed ones come back with
// /process, no duplicate account, no lost password: every revealed password logs in over SSH,
// i.e. matches /etc/shadow of the host).
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { Client as SshClient } from 'ssh2';
import type { TestPlatform } from '../helpers/platform.js';
import { sshExec, type SshTestHost } from '../helpers/sshd.js';
import { AccountOpeningRequestSchema, HostAccountSchema } from '../../db/entities/index.js';

export interface BatchRequest {
  id: string;
  username: string;
}

export const BATCH_SIZE = 20;

export async function registerOnlineHost(p: TestPlatform, sshd: SshTestHost, name: string): Promise<string> {
  const h = await p.api('POST', '/api/v1/hosts', { body: { name, address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
  expect(h.body.code, JSON.stringify(h.body)).toBe(0);
  const hostId = h.body.data.id as string;
  await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'onboarding' } });
  await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'online' } });
  return hostId;
}

/** Submits and approves `n` requests (all approved before any fault: the API needs the DB). */
export async function submitBatch(p: TestPlatform, hostId: string, n = BATCH_SIZE): Promise<BatchRequest[]> {
  const tag = randomBytes(2).toString('hex');
  const reqs: BatchRequest[] = [];
  for (let i = 0; i < n; i++) {
    const username = `f${tag}${String(i).padStart(2, '0')}`;
    const r = await p.api('POST', '/api/v1/account-openings', { token: p.tokens.requester, body: { host_id: hostId, username, full_name: `Fault ${i}`, contact_email: `${username}@example.com` } });
    expect(r.body.code, JSON.stringify(r.body)).toBe(0);
    reqs.push({ id: r.body.data.id, username });
  }
  await Promise.all(
    reqs.map(async (q) => {
      const a = await p.api('POST', `/api/v1/account-openings/${q.id}/approve`, { token: p.tokens.approver });
      expect(a.body.code, JSON.stringify(a.body)).toBe(0);
    }),
  );
  return reqs;
}

/** Waits until `count` requests of the batch reached `done` (read from the workflows, not the DB). */
export async function waitUntilDone(p: TestPlatform, reqs: BatchRequest[], count: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const phases = await Promise.all(reqs.map((q) => p.client.workflow.getHandle(`account-opening/${q.id}`).query<{ phase: string }>('state').then((s) => s.phase, () => 'unknown')));
    if (phases.filter((ph) => ph === 'done').length >= count) return;
    if (Date.now() > deadline) throw new Error(`only ${phases.filter((ph) => ph === 'done').length}/${count} done: ${phases.join(',')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits for every workflow of the batch to close; returns the DB status of each request. */
export async function settle(p: TestPlatform, reqs: BatchRequest[], timeoutMs: number): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  await Promise.all(
    reqs.map(async (q) => {
      const h = p.client.workflow.getHandle(`account-opening/${q.id}`);
      for (;;) {
        const d = await h.describe().catch(() => null);
        if (d && d.status.name !== 'RUNNING') return;
        if (Date.now() > deadline) throw new Error(`account-opening/${q.id} still running after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }),
  );
  const rows = await p.db.em.fork().find(AccountOpeningRequestSchema, { id: { $in: reqs.map((q) => q.id) } });
  const counts: Record<string, number> = {};
  for (const r of rows) counts[r.status] = (counts[r.status] ?? 0) + 1;
  return counts;
}

/**
 * Every request is done or failed; failed ones are processed again through the API and end done;
 * then each username has exactly one account row and one OS account, and its revealed password logs in.
 */
export async function assertCleanOutcome(p: TestPlatform, sshd: SshTestHost, reqs: BatchRequest[]): Promise<{ failedThenProcessed: number }> {
  const em = p.db.em.fork();
  const rows = await em.find(AccountOpeningRequestSchema, { id: { $in: reqs.map((q) => q.id) } });
  expect(rows).toHaveLength(reqs.length);
  for (const r of rows) expect(['done', 'failed'], `${r.username}: ${r.status} ${r.resultMessage ?? ''}`).toContain(r.status);
  const failed = rows.filter((r) => r.status === 'failed');
  for (const r of failed) {
    const again = await p.api('POST', `/api/v1/account-openings/${r.id}/process`);
    expect(again.body.code, `${r.username}: ${JSON.stringify(again.body)}`).toBe(0);
  }
  for (const r of failed) {
    const s = await p.client.workflow.getHandle(`account-opening/${r.id}`).result();
    expect(s.phase, `${r.username}: ${JSON.stringify(s.error)}`).toBe('done');
  }

  const passwd = (await sshExec(sshd, 'getent passwd')).stdout;
  for (const q of reqs) {
    const accounts = await p.db.em.fork().find(HostAccountSchema, { username: q.username });
    expect(accounts, q.username).toHaveLength(1);
    expect(passwd.split('\n').filter((l) => l.startsWith(`${q.username}:`)), q.username).toHaveLength(1);
    const rev = await p.api('POST', `/api/v1/account-openings/${q.id}/credentials/reveal`, { token: p.tokens.requester });
    expect(rev.status, `${q.username}: ${JSON.stringify(rev.body)}`).toBe(200);
    expect(await loginAs(sshd, q.username, rev.body.data.password)).toBe(q.username);
  }
  return { failedThenProcessed: failed.length };
}

export function loginAs(sshd: SshTestHost, username: string, password: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = new SshClient();
    c.on('ready', () =>
      c.exec('id -un', (err, s) => {
        if (err) return reject(err);
        let out = '';
        s.on('data', (d: Buffer) => (out += d));
        s.on('close', () => {
          c.end();
          resolve(out.trim());
        });
      }),
    );
    c.on('error', reject);
    c.connect({ host: sshd.host, port: sshd.port, username, password, readyTimeout: 20_000 });
  });
}

export async function removeBatchAccounts(sshd: SshTestHost, reqs: BatchRequest[]): Promise<void> {
  if (!reqs.length) return;
  const names = reqs.map((q) => q.username).join(' ');
  await sshExec(sshd, `for u in ${names}; do sudo -n userdel -r -f "$u" 2>/dev/null; sudo -n rm -f "/var/lib/hostflow/accounts/$u"; done; true`).catch(() => undefined);
}
