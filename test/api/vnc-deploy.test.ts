import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { inject } from 'vitest';
import { temporalCliPath } from '../../scripts/temporal-cli.js';
import { assertNoSecretsInHistory, decryptHistoryJson } from '../helpers/history.js';
import WebSocket from 'ws';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { sshExec, startSshd, type SshTestHost } from '../helpers/sshd.js';
import { Rfb } from '../helpers/rfb.js';
import { AuditEventSchema, RemoteAccessSchema, VncServiceSchema } from '../../db/entities/index.js';

/**
 * VNC service auto-deployment (seed 001 §3.2) end to end, against the real TigerVNC Xvnc of this
 * machine (Debian's tigervnc-standalone-server) on a loopback sshd test host: an allocation with
 * `vnc: true` starts Xvnc as the customer's account with a platform-managed password; the customer
 * reveals it once and authenticates through the API's VNC proxy (RFB VNC Authentication: the right
 * password is accepted, a wrong one refused); a reset replaces it; a restart leaves a running
 * server alone and brings a killed one back (as a host reboot leaves it) on its display, with a new
 * password when its file is gone; reclaim stops the server first
 * (no grace-period wait for the platform's own Xvnc) and removes its files and its gateway entry.
 */

async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

type Step = { phase: string; step: string; status: string; detail?: Record<string, unknown> | null; error?: string | null };

describe('VNC auto-deployment: allocate with vnc, reveal, RFB auth through the proxy, reset, reclaim (real Xvnc, real sshd)', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  let hostId = '';
  let allocationId = '';
  let username = '';
  let token = '';
  let uid = 0;
  const passwords: string[] = [];
  let resetWorkflowId = '';
  let restartWorkflowId = '';
  // Deleting the tenant frees its uid for accounts other test files create meanwhile (see reclaim.test.ts).
  const guard = `hfv${randomBytes(3).toString('hex')}`;
  const steps = async (): Promise<Step[]> => (await p.api('GET', `/api/v1/allocations/${allocationId}/progress`)).body.data.steps as Step[];

  const connect = async (password: string) => {
    const t = await p.api('POST', `/api/v1/allocations/${allocationId}/vnc/ticket`, { token });
    expect(t.status, JSON.stringify(t.body)).toBe(200);
    const ws = new WebSocket(`${p.baseUrl.replace('http', 'ws')}/api/v1/vnc`, t.body.data.protocols);
    const rfb = new Rfb(ws);
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    try {
      return await rfb.vncAuth(password);
    } finally {
      ws.close();
    }
  };

  beforeAll(async () => {
    [p, sshd] = await Promise.all([startTestPlatform({ db: 'pglite' }), startSshd()]);
    const h = await p.api('POST', '/api/v1/hosts', { body: { name: `vnc-${randomBytes(2).toString('hex')}`, address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
    expect(h.status, JSON.stringify(h.body)).toBe(201);
    hostId = h.body.data.id;
    for (const status of ['onboarding', 'online']) expect((await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status } })).status).toBe(200);
    const c = await p.api('POST', '/api/v1/customers', { body: { name: 'Vnc Co', code: `v${randomBytes(3).toString('hex')}`, contact_email: 'ops@vnc.test' } });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    username = `vd${randomBytes(3).toString('hex')}`;
    const u = await p.api('POST', `/api/v1/customers/${c.body.data.id}/users`, { body: { username, email: `${username}@vnc.test`, full_name: 'Vnc User' } });
    expect(u.status, JSON.stringify(u.body)).toBe(201);
    token = await p.tokenFor(u.body.data.id as string);
    const bad = await p.api('POST', '/api/v1/allocations', { body: { host_id: hostId, customer_id: c.body.data.id, customer_user_id: u.body.data.id, ends_at: new Date(Date.now() + 86_400_000).toISOString(), vnc: 'yes' } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('vnc');
    // A long grace period: reclaim must not wait it out for the platform's own Xvnc.
    const a = await p.api('POST', '/api/v1/allocations', { body: { host_id: hostId, customer_id: c.body.data.id, customer_user_id: u.body.data.id, ends_at: new Date(Date.now() + 30 * 86_400_000).toISOString(), grace_minutes: 60, vnc: true } });
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    allocationId = a.body.data.id;
    await until('allocation active', async () => {
      const r = (await p.api('GET', `/api/v1/allocations/${allocationId}`)).body.data;
      if (r.status === 'failed') throw new Error(`allocation failed at ${r.failed_step}: ${r.error}`);
      return r.status === 'active';
    });
    uid = Number((await sshExec(sshd, `id -u ${username}`)).stdout.trim());
    expect((await sshExec(sshd, `for i in 1 2 3 4 5; do u=$(( $(getent passwd | awk -F: '$3 >= 1000 && $3 < 60000 { print $3 }' | sort -n | tail -1) + 1 )); sudo -n useradd -M -u $u ${guard} 2>/dev/null && echo ok && break; done`)).stdout.trim()).toBe('ok');
  }, 240_000);

  afterAll(async () => {
    if (sshd && username) {
      await sshExec(sshd, `sudo -n pkill -KILL -u ${username}; sudo -n userdel -r -f ${username}; sudo -n rm -f /var/lib/hostflow/accounts/${username}`).catch(() => undefined);
      await sshExec(sshd, `sudo -n userdel ${guard}`).catch(() => undefined);
    }
    await p?.close();
    await sshd?.stop();
  }, 60_000);

  it('deploys Xvnc as the customer; the password is revealed once and authenticates through the proxy (a wrong one is refused); a reset replaces it', { timeout: 120_000 }, async () => {
    const deploy = (await steps()).find((s) => s.phase === 'allocate' && s.step === 'deploy-vnc');
    expect(deploy, JSON.stringify(await steps())).toMatchObject({ status: 'done' });
    const row = await p.db.em.fork().findOneOrFail(VncServiceSchema, { allocationId });
    expect(row).toMatchObject({ status: 'running', osUsername: username });
    expect(row.rfbPort).toBe(5900 + row.display!);
    // Xvnc runs as the customer's account with the platform's password file; the file is the customer's, mode 0600.
    const ps = (await sshExec(sshd, `ps -o uid=,args= -C Xvnc | awk -v u=${uid} '$1 == u'`)).stdout;
    expect(ps).toContain(`:${row.display}`);
    expect(ps).toContain('-rfbauth');
    expect(ps).toContain('hostflow-passwd');
    expect((await sshExec(sshd, `sudo -n stat -c '%U %a %s' ~${username}/.vnc/hostflow-passwd`)).stdout.trim()).toBe(`${username} 600 8`);
    // The gateway / noVNC entry.
    const entry = await p.db.em.fork().findOne(RemoteAccessSchema, { host: hostId, protocol: 'vnc' });
    expect(entry).toMatchObject({ targetPort: row.rfbPort });
    expect(entry!.publicPort).toBe((deploy!.detail as { publicPort?: number }).publicPort);

    // Another user of the platform cannot reveal it; the customer user can, once.
    expect((await p.api('POST', `/api/v1/allocations/${allocationId}/vnc/password/reveal`)).status).toBe(403);
    const rev = await p.api('POST', `/api/v1/allocations/${allocationId}/vnc/password/reveal`, { token });
    expect(rev.status, JSON.stringify(rev.body)).toBe(200);
    const password = rev.body.data.password as string;
    passwords.push(password);
    expect(password).toMatch(/^[A-Za-z0-9]{8}$/);
    expect(rev.body.data).toMatchObject({ display: row.display, rfb_port: row.rfbPort, gateway: { port: entry!.publicPort } });
    const again = await p.api('POST', `/api/v1/allocations/${allocationId}/vnc/password/reveal`, { token });
    expect(again.status).toBe(409);
    // Stored encrypted only, and gone once revealed; never in the recorded command lines.
    const after = await p.db.em.fork().findOneOrFail(VncServiceSchema, { allocationId });
    expect(after.passwordCiphertext).toBeNull();
    expect(after.passwordRevealedAt).not.toBeNull();

    // RFB through the API's proxy: VNC Authentication with it succeeds and the server initialises; a wrong password fails.
    const ok = await connect(password);
    expect(ok.types).toContain(2);
    expect(ok).toMatchObject({ result: 0, width: 1280, height: 800 });
    const wrong = await connect(password === 'aaaaaaaa' ? 'bbbbbbbb' : 'aaaaaaaa');
    expect(wrong.result).toBe(1);

    // Reset: a new password (the customer reveals it once), the old one stops working at the next connection.
    const reset = await p.api('POST', `/api/v1/allocations/${allocationId}/vnc/password/reset`, { token });
    expect(reset.status, JSON.stringify(reset.body)).toBe(200);
    expect(reset.body.data.version).toBe(row.passwordVersion + 1);
    resetWorkflowId = reset.body.data.workflow_id;
    const rev2 = await p.api('POST', `/api/v1/allocations/${allocationId}/vnc/password/reveal`, { token });
    expect(rev2.status, JSON.stringify(rev2.body)).toBe(200);
    expect(rev2.body.data.password).not.toBe(password);
    passwords.push(rev2.body.data.password as string);
    expect((await connect(rev2.body.data.password as string)).result).toBe(0);
    expect((await connect(password)).result).toBe(1);
    const records = await p.api('GET', `/api/v1/hosts/${hostId}/commands?page_size=200`);
    expect(records.status, JSON.stringify(records.body)).toBe(200);
    expect(JSON.stringify(records.body)).not.toContain(password);
  });

  it('restart: a running server is left alone; killed as a reboot leaves it (lock and socket stay), it starts again on its display and the revealed password still works; a lost password file gets a new password', { timeout: 150_000 }, async () => {
    const row = await p.db.em.fork().findOneOrFail(VncServiceSchema, { allocationId });
    const pidOf = async () => (await sshExec(sshd, `pgrep -u ${uid} -x Xvnc || true`)).stdout.trim();
    const restart = () => p.api('POST', `/api/v1/allocations/${allocationId}/vnc/restart`, { token });
    const pid0 = await pidOf();
    expect(pid0).toMatch(/^\d+$/);

    const r1 = await restart();
    expect(r1.status, JSON.stringify(r1.body)).toBe(200);
    expect(r1.body.data).toMatchObject({ state: 'running', display: row.display, rfb_port: row.rfbPort, moved: false, killed_hung: false, password_rotated: false });
    expect(await pidOf()).toBe(pid0);
    restartWorkflowId = r1.body.data.workflow_id;
    expect(restartWorkflowId).toMatch(/^host-account\/.+\/restart-vnc$/);

    // The "reboot": the server dies without cleaning up after itself.
    await sshExec(sshd, `sudo -n kill -KILL ${pid0}`);
    await until('Xvnc gone', async () => (await pidOf()) === '');
    expect((await sshExec(sshd, `ls /tmp/.X${row.display}-lock /tmp/.X11-unix/X${row.display}`)).stdout.trim().split('\n')).toHaveLength(2);
    const r2 = await restart();
    expect(r2.status, JSON.stringify(r2.body)).toBe(200);
    expect(r2.body.data).toMatchObject({ state: 'started', display: row.display, rfb_port: row.rfbPort, moved: false, password_rotated: false, gateway_sync: null });
    expect(r2.body.data.stale_removed).toBe(2);
    const pid1 = await pidOf();
    expect(pid1).toMatch(/^\d+$/);
    expect(pid1).not.toBe(pid0);
    // The password the customer revealed before still opens it (the file stayed), through the same entry.
    expect((await connect(passwords[1]!)).result).toBe(0);
    expect(await p.db.em.fork().findOne(RemoteAccessSchema, { host: hostId, protocol: 'vnc' })).toMatchObject({ targetPort: row.rfbPort });

    // The customer wiped ~/.vnc and the server is gone: a new password, revealed once, opens it.
    await sshExec(sshd, `sudo -n kill -KILL ${pid1}; sudo -n rm -f ~${username}/.vnc/hostflow-passwd`);
    await until('Xvnc gone', async () => (await pidOf()) === '');
    const before = await p.db.em.fork().findOneOrFail(VncServiceSchema, { allocationId });
    const r3 = await restart();
    expect(r3.status, JSON.stringify(r3.body)).toBe(200);
    expect(r3.body.data).toMatchObject({ state: 'started', display: row.display, password_rotated: true, password_version: before.passwordVersion + 1 });
    const rev = await p.api('POST', `/api/v1/allocations/${allocationId}/vnc/password/reveal`, { token });
    expect(rev.status, JSON.stringify(rev.body)).toBe(200);
    const fresh = rev.body.data.password as string;
    expect(passwords).not.toContain(fresh);
    passwords.push(fresh);
    expect((await connect(fresh)).result).toBe(0);
    expect((await connect(passwords[1]!)).result).toBe(1);
    expect((await sshExec(sshd, `sudo -n stat -c '%U %a %s' ~${username}/.vnc/hostflow-passwd`)).stdout.trim()).toBe(`${username} 600 8`);

    // Each restart is an audit event against the allocation.
    const audits = await p.db.em.fork().find(AuditEventSchema, { action: 'allocation.vnc_restart', targetId: allocationId }, { orderBy: { id: 'asc' } });
    expect(audits.map((a) => a.result)).toEqual(['success', 'success', 'success']);
    expect(JSON.stringify(audits.map((a) => a.detail))).not.toContain(fresh);
  });

  it('reclaim stops the VNC server first (no grace wait), removes its files, lock and gateway entry, and wipes the password', { timeout: 150_000 }, async () => {
    const row = await p.db.em.fork().findOneOrFail(VncServiceSchema, { allocationId });
    const started = Date.now();
    const r = await p.api('POST', `/api/v1/allocations/${allocationId}/reclaim`);
    expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
    await until('reclaimed', async () => {
      const a = (await p.api('GET', `/api/v1/allocations/${allocationId}`)).body.data;
      if (a.status === 'reclaim-failed') throw new Error(`reclaim failed at ${a.failed_step}: ${a.error} ${JSON.stringify(await steps())}`);
      return a.status === 'reclaimed';
    }, 120_000);
    // A 60-minute grace period was not waited out: the Xvnc was stopped before the tasks were counted.
    expect(Date.now() - started).toBeLessThan(120_000);
    const reclaim = (await steps()).filter((s) => s.phase === 'reclaim');
    expect(reclaim[0]).toMatchObject({ step: 'stop-vnc', status: 'done' });
    expect(reclaim[0]!.detail).toMatchObject({ stopped: 1, entryRemoved: true });
    expect((reclaim[0]!.detail as { filesRemoved: number }).filesRemoved).toBeGreaterThanOrEqual(3);
    expect(reclaim.find((s) => s.step === 'check-tasks')?.detail).toMatchObject({ processes: 0 });
    expect((await sshExec(sshd, `pgrep -u ${uid} -x Xvnc || echo none`)).stdout.trim()).toBe('none');
    expect((await sshExec(sshd, `ls -a /tmp/.X${row.display}-lock /tmp/.X11-unix/X${row.display} 2>&1 || true`)).stdout).toMatch(/No such file/);
    expect((await sshExec(sshd, `ss -Hltn 'sport = :${row.rfbPort}'`)).stdout.trim()).toBe('');
    expect(await p.db.em.fork().findOne(RemoteAccessSchema, { host: hostId, protocol: 'vnc' })).toBeNull();
    expect(await p.db.em.fork().findOneOrFail(VncServiceSchema, { allocationId })).toMatchObject({ status: 'removed', passwordCiphertext: null });
    // No VNC on a reclaimed allocation.
    expect((await p.api('POST', `/api/v1/allocations/${allocationId}/vnc/password/reset`, { token })).status).toBe(409);

    // Neither VNC password ever entered Temporal history (generated and stored inside the activities).
    expect(passwords).toHaveLength(3);
    expect(await assertNoSecretsInHistory(p.client, p.taskQueue, passwords)).toBeGreaterThan(2);
    // Replay fixtures of the VNC paths (patches allocation-vnc, reclaim-vnc; the reset-vnc-password and restart-vnc ops).
    if (process.env.CAPTURE_HISTORIES) {
      for (const [id, name] of [[`allocation/${allocationId}`, 'allocation-vnc'], [`reclaim/${allocationId}`, 'reclaim-vnc'], [resetWorkflowId, 'hostAccountOperation-reset-vnc-password'], [restartWorkflowId, 'hostAccountOperation-restart-vnc']] as const) {
        const file = `test/replay/histories/${name}.json`;
        if (existsSync(file)) continue;
        const json = execFileSync(temporalCliPath(), ['workflow', 'show', '--address', inject('temporalAddress'), '-w', id, '--output', 'json']);
        await writeFile(file, decryptHistoryJson(json, p.client));
      }
    }
  });
});
