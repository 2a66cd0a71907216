// The Windows host is a stand-in (test/helpers/wsman-host.ts, WS-Man over HTTPS; Windows cannot run here); everything else is real: API, Temporal dev server, worker, PostgreSQL, vault.
//
// A Windows rental driven only through the public API, as users would: an admin registers the
// Windows host, creates a customer and its user and allocates the host; the customer user reveals
// the password once through the reveal route (a second reveal is refused), logs on over RDP with it
// (the stand-in's logon check; a wrong password is refused), reads the connection summary; then the
// rental is returned and reclaimed (grace skipped with reclaim/force) and nothing of the account,
// its sessions, processes, tasks or profile is left on the host.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startWsManHost, type WsManHost } from '../helpers/wsman-host.js';
import { until } from '../helpers/until.js';

type Step = { phase: string; step: string; status: string; detail?: Record<string, unknown>; error?: string };

describe('a Windows rental through the API: allocate, reveal once, RDP logon, reclaim (WS-Man stand-in host)', () => {
  let p: TestPlatform;
  let ws: WsManHost;
  let hostId = '';
  let allocationId = '';
  let username = '';
  let token = '';
  let password = '';
  let sid = '';

  const reclaimSteps = async (): Promise<Step[]> =>
    ((await p.api('GET', `/api/v1/allocations/${allocationId}/progress`)).body.data.steps as Step[]).filter((s) => s.phase === 'reclaim');
  const explain = async () => ({ row: (await p.api('GET', `/api/v1/allocations/${allocationId}`)).body.data, steps: await reclaimSteps().catch(() => null) });

  beforeAll(async () => {
    [p, ws] = await Promise.all([startTestPlatform({ db: 'postgres' }), startWsManHost({ https: true, computerName: 'WIN-API-RENT' })]);
  }, 120_000);
  afterAll(async () => {
    await p?.close();
    await ws?.stop();
  });

  it('allocate: the host registered as Windows, a customer user, the allocation active; the account exists in Remote Desktop Users', { timeout: 180_000 }, async () => {
    const h = await p.api('POST', '/api/v1/hosts', {
      body: { name: 'win-api-rental', address: ws.host, port: ws.port, os: 'windows', username: ws.adminUser, password: ws.adminPassword, winrm_port: ws.port, winrm_https: true, winrm_auth: 'basic' },
    });
    expect(h.status, JSON.stringify(h.body)).toBe(201);
    hostId = h.body.data.id;
    for (const status of ['onboarding', 'online']) expect((await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status } })).status).toBe(200);
    const c = await p.api('POST', '/api/v1/customers', { body: { name: 'Win Tenant Co', code: `w${randomBytes(3).toString('hex')}`, contact_email: 'ops@wintenant.test' } });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    username = `wr${randomBytes(3).toString('hex')}`;
    const u = await p.api('POST', `/api/v1/customers/${c.body.data.id}/users`, { body: { username, email: `${username}@wintenant.test`, full_name: 'Win Tenant User' } });
    expect(u.status, JSON.stringify(u.body)).toBe(201);
    token = await p.tokenFor(u.body.data.id as string);
    const a = await p.api('POST', '/api/v1/allocations', {
      body: { host_id: hostId, customer_id: c.body.data.id, customer_user_id: u.body.data.id, ends_at: new Date(Date.now() + 30 * 86_400_000).toISOString(), grace_minutes: 60 },
    });
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    allocationId = a.body.data.id;
    await until('allocation active', async () => {
      const r = (await p.api('GET', `/api/v1/allocations/${allocationId}`)).body.data;
      if (r.status === 'failed') throw new Error(`allocation failed at ${r.failed_step}: ${r.error}`);
      return r.status === 'active';
    }, 150_000);
    const user = ws.users.get(username.toLowerCase());
    expect(user).toBeDefined();
    expect(user!.enabled).toBe(true);
    expect([...user!.groups]).toContain('Remote Desktop Users');
    sid = user!.sid;
  });

  it('the customer user reveals the password once; a second reveal, and a reveal by the admin, are refused', async () => {
    const byAdmin = await p.api('POST', `/api/v1/allocations/${allocationId}/credentials/reveal`);
    expect(byAdmin.status, JSON.stringify(byAdmin.body)).toBe(403);
    const rev = await p.api('POST', `/api/v1/allocations/${allocationId}/credentials/reveal`, { token });
    expect(rev.status, JSON.stringify(rev.body)).toBe(200);
    expect(rev.body.data).toMatchObject({ username, address: ws.host });
    password = rev.body.data.password;
    expect(typeof password).toBe('string');
    expect(password.length).toBeGreaterThanOrEqual(12);
    const again = await p.api('POST', `/api/v1/allocations/${allocationId}/credentials/reveal`, { token });
    expect(again.status, JSON.stringify(again.body)).toBe(409);
    expect(again.body.message).toMatch(/already revealed/);
  });

  it('the revealed password logs on over RDP on the host; a wrong one is refused', () => {
    expect(ws.checkPassword(username, password)).toBe(true);
    expect(() => ws.rdpLogon(username, `${password}x`)).toThrow(/logon attempt failed/);
    const session = ws.rdpLogon(username, password);
    expect(ws.sessions.get(session)).toMatchObject({ user: username, state: 'Active' });
    // Work that outlives the session: a detached process and a scheduled task of the tenant's.
    ws.startProcess(username, 'train.exe');
    ws.registerTask(`${ws.computerName}\\${username}`, 'nightly-train', '\\Tenant\\');
  });

  it('the connection summary names the RDP address and the account, never the password; without a published RDP entry the .rdp file is refused', async () => {
    const s = await p.api('GET', `/api/v1/allocations/${allocationId}/connection-summary`, { token });
    expect(s.status, JSON.stringify(s.body)).toBe(200);
    // No remote-access entry was published for this host (that needs onboarding with a gateway): RDP goes direct to the host on 3389.
    expect(s.body.data.rdp).toEqual({ full_address: `${ws.host}:3389`, username, via: 'direct', file: null });
    expect(s.body.data.password).toBe('revealed');
    expect(JSON.stringify(s.body)).not.toContain(password);
    const rdp = await fetch(`${p.baseUrl}/api/v1/allocations/${allocationId}/rdp`, { headers: { authorization: `Bearer ${token}` } });
    expect(rdp.status).toBe(409);
    expect(((await rdp.json()) as { message: string }).message).toMatch(/publishes no RDP entry/);
  });

  it('reclaim through the API: locked during the grace period, then forced; session, process, task, account and profile are gone, verify-clean passes', { timeout: 240_000 }, async () => {
    expect(ws.profiles.has(sid)).toBe(true);
    const ret = await p.api('POST', `/api/v1/allocations/${allocationId}/return`, { token, body: { mode: 'reclaim' } });
    expect(ret.status, JSON.stringify(ret.body)).toBe(200);
    const waiting = await until('stop-tasks waiting for the grace period', async () => {
      const s = await reclaimSteps();
      return s.find((x) => x.step === 'stop-tasks')?.status === 'waiting' ? s : null;
    }, 120_000, explain);
    expect(waiting.map((s) => `${s.step}:${s.status}`).slice(0, 4)).toEqual(['check-tasks:done', 'revoke-keys:done', 'lock-account:done', 'stop-tasks:waiting']);
    expect(waiting.find((s) => s.step === 'check-tasks')!.detail).toMatchObject({ userExists: true, sid, sessions: 1, scheduled: { tasks: 1 }, profile: true });
    // Grace period: the tenant's work still runs, but the account no longer logs on.
    expect(ws.users.get(username.toLowerCase())).toMatchObject({ enabled: false, passwordExpired: true });
    expect(ws.checkPassword(username, password)).toBe(false);
    expect(() => ws.rdpLogon(username, password)).toThrow(/logon attempt failed/);

    expect((await p.api('POST', `/api/v1/allocations/${allocationId}/reclaim/force`)).status).toBe(200);
    await until('reclaimed', async () => {
      const a = (await p.api('GET', `/api/v1/allocations/${allocationId}`)).body.data;
      if (a.status === 'reclaim-failed') throw new Error(`reclaim failed at ${a.failed_step}: ${a.error}`);
      return a.status === 'reclaimed' && (await reclaimSteps()).some((s) => s.step === 'release-host' && s.status === 'done');
    }, 200_000, explain);
    const s = await reclaimSteps();
    expect(s.map((x) => `${x.step}:${x.status}`)).toEqual(expect.arrayContaining(['stop-tasks:done', 'delete-account:done', 'verify-clean:done', 'release-host:done']));
    expect(s.find((x) => x.step === 'verify-clean')!.detail).toMatchObject({ clean: true });

    expect(ws.users.has(username.toLowerCase())).toBe(false);
    expect(ws.profiles.has(sid)).toBe(false);
    expect([...ws.sessions.values()].filter((x) => x.user.toLowerCase() === username.toLowerCase())).toEqual([]);
    expect([...ws.processes.values()].filter((x) => x.sid === sid)).toEqual([]);
    expect([...ws.tasks.values()].filter((t) => t.taskName === 'nightly-train')).toEqual([]);
    expect(ws.checkPassword(username, password)).toBe(false);
    expect((await p.api('GET', `/api/v1/hosts/${hostId}`)).body.data.status).toBe('online');
    // Every script the platform sent was understood by the stand-in (an unsupported construct exits 1 there):
    // the only non-zero exits are lookups of the deleted account.
    expect(ws.commands.filter((c) => c.exitCode !== 0 && !/UserNotFoundException/.test(c.script)).map((c) => c.script)).toEqual([]);
  });
});
