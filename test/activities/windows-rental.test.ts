// A Windows rental, allocation to reclaim, at the activity level: createAllocationRemoteActivities →
// windowsHostOps (activities/windows/host-ops.ts) → PowerShell builders (windows.ts) → WinRmExecutor
// → WS-Man SOAP on loopback → the WS-Man stand-in (test/helpers/wsman-host.ts; Windows cannot run
// here), which interprets every script against its users, sessions, processes, tasks and profiles.
// The activities run in the workflows' step order (ALLOCATION_STEPS, RECLAIM_STEPS); the lease
// between them is OS-agnostic and proven by the lease tests. Rows and secrets are in PGlite.
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initORM, type Db } from '../../db/orm.js';
import { Vault, generateKeyring } from '../../db/vault.js';
import { AllocationSchema, CustomerSchema, HostAccountSchema, HostCredentialSchema, HostSchema, RemoteAccessSchema, UserSchema } from '../../db/entities/index.js';
import { credentialContext, hostAccountSecretContext } from '../../activities/remote/host-targets.js';
import { createAllocationRemoteActivities } from '../../activities/remote/allocation.activities.js';
import { SshExecutor } from '../../activities/ssh/ssh-executor.js';
import { WinRmExecutor } from '../../activities/winrm/winrm-executor.js';
import { createLogger } from '../../config/logger.js';
import { allocationRdpFile, connectionSummary, connectionSummaryText } from '../../db/connection-summary.js';
import { startWsManHost, type WsManHost } from '../helpers/wsman-host.js';

let db: Db;
let vault: Vault;
let ws: WsManHost;
let winrm: WinRmExecutor;
let ssh: SshExecutor;
let acts: ReturnType<typeof createAllocationRemoteActivities>;
let allocationId: string;

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

beforeAll(async () => {
  db = await initORM({ pgliteDir: 'memory://' });
  vault = new Vault(generateKeyring('t'));
  ws = await startWsManHost({ https: true, computerName: 'WIN-RENTAL' });
  winrm = new WinRmExecutor({ em: db.em, vault, connectTimeoutMs: 3000 });
  ssh = new SshExecutor({ em: db.em, vault }); // unused: the host is Windows
  acts = createAllocationRemoteActivities({ em: db.em, vault, logger: createLogger({ level: 'silent' }), ssh, winrm });
  const em = db.em.fork();
  const host = em.create(HostSchema, { slug: 'win-rent', name: 'Windows rental', address: '127.0.0.1', port: ws.port, os: 'windows', username: ws.adminUser, winrmPort: ws.port, winrmHttps: true, winrmAuth: 'basic', status: 'online' });
  em.create(HostCredentialSchema, { host, kind: 'winrm-password', ...vault.encrypt(ws.adminPassword, credentialContext(host.id, 'winrm-password')) });
  em.create(RemoteAccessSchema, { host, protocol: 'rdp', gateway: 'gw.example.test', publicDomain: 'win-rent.hosts.example.test', publicPort: 23389, targetPort: 3389 });
  const customer = em.create(CustomerSchema, { name: 'Acme GPU', code: 'acme' });
  const cu = em.create(UserSchema, { username: 'carol', email: 'carol@acme.test', roles: ['customer_member'], customerId: customer.id });
  const a = em.create(AllocationSchema, {
    host,
    customer,
    customerUser: cu,
    osUsername: 'carol',
    startsAt: new Date(),
    endsAt: new Date(Date.now() + 30 * 86_400_000),
    bufferSeconds: 3600,
    graceSeconds: 60,
    status: 'provisioning',
    createdBy: 'admin',
  });
  await em.flush();
  allocationId = a.id;
});

afterAll(async () => {
  await winrm?.close();
  await ssh?.close();
  await ws?.stop();
  await db?.close();
});

const account = () => db.em.fork().findOneOrFail(HostAccountSchema, { createdFromAllocationId: allocationId });

describe('a Windows rental against the WS-Man stand-in', () => {
  let password: string;

  it('allocation: a local account in Remote Desktop Users with a generated password, its SID recorded, the login checked; no SSH keys', async () => {
    expect(await acts.cleanPreviousTenant(allocationId)).toEqual({ removed: [] });
    const created = await acts.createCustomerAccount(allocationId);
    expect(created.createdNow).toBe(true);
    const u = ws.users.get('carol')!;
    expect([...u.groups].sort()).toEqual(['Remote Desktop Users', 'Users']);
    const row = await account();
    expect(row.sid).toBe(u.sid);
    expect(row.groups).toEqual(['Remote Desktop Users']);
    expect(await acts.injectCustomerKeys(allocationId)).toMatchObject({ added: 0, fingerprints: [], skipped: expect.stringContaining('no SSH keys') });
    // The account cannot open a WinRM shell (w:AccessDenied after the password was accepted): the login check counts that as a login.
    expect(await acts.verifyCustomerLogin(allocationId)).toMatchObject({ verified: true, groups: expect.arrayContaining(['Remote Desktop Users']) });
    // A retry finds the account and changes nothing but re-applying the same stored password.
    expect((await acts.createCustomerAccount(allocationId)).createdNow).toBe(false);
    expect(ws.users.size).toBe(2);
  });

  it('the connection summary and the .rdp file name the gateway entry and the account, never the password', async () => {
    const em = db.em.fork();
    const s = (await connectionSummary(em, allocationId))!;
    expect(s.rdp).toEqual({ full_address: 'win-rent.hosts.example.test:23389', username: 'carol', via: 'remote-access', file: `/api/v1/allocations/${allocationId}/rdp` });
    expect(s.password).toMatch(/^reveal once/);
    expect(connectionSummaryText(s)).toContain('Remote Desktop: win-rent.hosts.example.test:23389');
    const f = (await allocationRdpFile(em, allocationId))!;
    const lines = f.text.split('\r\n');
    expect(lines).toEqual(expect.arrayContaining(['full address:s:win-rent.hosts.example.test:23389', 'username:s:carol', 'prompt for credentials:i:1', 'gatewayusagemethod:i:0', 'gatewayprofileusagemethod:i:1']));
    const row = await account();
    password = vault.decrypt(row.secretCiphertext!, hostAccountSecretContext(row.id, row.secretVersion));
    expect(f.text).not.toContain(password);
  });

  it('the customer logs on over RDP with the revealed password; a wrong one is refused', async () => {
    expect(() => ws.rdpLogon('carol', `${password}x`)).toThrow(/logon attempt failed/);
    const session = ws.rdpLogon('carol', password);
    expect(ws.sessions.get(session)).toMatchObject({ user: 'carol', state: 'Active' });
    // Work that outlives the session: a detached process (session 0) and a scheduled task of theirs.
    ws.startProcess('carol', 'train.exe');
    ws.registerTask('WIN-RENTAL\\carol', 'nightly-train', '\\Acme\\');
    ws.registerTask('Administrator', 'backup'); // not the tenant's: must stay
  });

  it('reclaim: sees the session, processes and task; disables and expires; logs off; stops them; deletes the account and its profile; verifies clean', async () => {
    const sid = ws.users.get('carol')!.sid;
    const report = await acts.checkRunningTasks(allocationId);
    expect(report).toMatchObject({ userExists: true, sid, sessions: 1, processes: 3, scheduled: { tasks: 1 }, profile: true });
    expect(report.sample).toEqual(expect.arrayContaining([expect.stringMatching(/train\.exe$/), 'task \\Acme\\nightly-train']));
    expect(await acts.revokeCustomerKeys(allocationId)).toMatchObject({ removed: 0, skipped: expect.any(String) });

    expect(await acts.lockCustomerAccount(allocationId)).toEqual({ locked: true });
    expect(ws.users.get('carol')).toMatchObject({ enabled: false, passwordExpired: true });
    expect(ws.checkPassword('carol', password)).toBe(false);

    const stopped = await acts.stopCustomerTasks(allocationId, 1000);
    expect(stopped.signalled).toEqual(['LOGOFF', 'STOP-PROCESS']);
    expect(stopped.ended).toEqual({ tasksRemoved: 1, processesStopped: 1 });
    expect(stopped.remaining).toMatchObject({ processes: 0, sessions: 0, scheduled: { tasks: 0 } });
    expect(ws.sessions.size).toBe(0);
    expect([...ws.processes.values()].filter((p) => p.sid === sid)).toEqual([]);
    expect([...ws.tasks.values()].map((t) => t.taskName)).toEqual(['backup']);

    expect(await acts.cleanCustomerLeftovers(allocationId)).toEqual({ profileRemoved: false });
    expect(ws.profiles.has(sid)).toBe(true);
    expect(await acts.deleteCustomerAccount(allocationId)).toEqual({ deleted: true });
    expect(ws.users.has('carol')).toBe(false);
    expect(ws.profiles.has(sid)).toBe(false);
    const row = await account();
    expect(row).toMatchObject({ status: 'deleted', secretCiphertext: null });

    expect(await acts.verifyReclaimClean(allocationId)).toEqual({ clean: true, notChecked: [], filesScan: 'profile' });
    // Every script was understood by the stand-in (an unsupported construct exits 1 there): the
    // only non-zero exits are lookups of the deleted account ("not found", exit 1 / 6).
    expect(ws.commands.filter((c) => c.exitCode !== 0 && !/UserNotFoundException/.test(c.script)).map((c) => c.script)).toEqual([]);
  });

  it('verify-clean fails, naming categories, when something of the SID is left (a process, a profile)', async () => {
    const row = await account();
    // Something of the tenant's SID comes back (e.g. a service running as it): reclaim must not call the host clean.
    ws.processes.set(9999, { pid: 9999, name: "leftover.exe", sid: row.sid ?? null, sessionId: 0 });
    const f = await failure(acts.verifyReclaimClean(allocationId, 1));
    expect(f.type).toBe('NotClean');
    expect(f.message).toContain('processes 1');
    ws.processes.delete(9999);
  });
});
