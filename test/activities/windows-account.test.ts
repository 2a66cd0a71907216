// Account activities on a Windows host, end to end: createAccountActivities → windowsAccountOps →
// PowerShell builders (windows.ts) → WinRmExecutor → real WS-Man SOAP over HTTPS on loopback → the
// WS-Man stand-in (test/helpers/wsman-host.ts), which interprets the scripts against its user store.
// Hosts, requests, accounts and encrypted secrets live in a real (PGlite) database.
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initORM, type Db } from '../../db/orm.js';
import { Vault, generateKeyring } from '../../db/vault.js';
import { AccountOpeningRequestSchema, HostAccountSchema, HostCredentialSchema, HostSchema, UserSchema } from '../../db/entities/index.js';
import { credentialContext, hostAccountSecretContext } from '../../activities/remote/host-targets.js';
import { createAccountActivities } from '../../activities/remote/account.activities.js';
import type { ExecOptions, ExecResult } from '../../activities/remote/executor.js';
import * as windows from '../../activities/remote/windows.js';
import { SshExecutor } from '../../activities/ssh/ssh-executor.js';
import { WinRmExecutor } from '../../activities/winrm/winrm-executor.js';
import { createLogger } from '../../config/logger.js';
import { startWsManHost, type WsManHost } from '../helpers/wsman-host.js';

/** Keeps every result, so the test can tell that the stand-in understood every script it was sent. */
class RecordingWinRm extends WinRmExecutor {
  readonly results: Array<{ script: string; result: ExecResult }> = [];
  override async exec(hostId: string, script: string, opts?: ExecOptions): Promise<ExecResult> {
    const result = await super.exec(hostId, script, opts);
    this.results.push({ script, result });
    return result;
  }
}

let db: Db;
let vault: Vault;
let ws: WsManHost;
let winrm: RecordingWinRm;
let ssh: SshExecutor;
let acts: ReturnType<typeof createAccountActivities>;
let hostId: string;
let applicantId: string;
/** Every password this test saw (host account passwords, pre-existing user's, admin's). */
const passwords = new Set<string>();

async function newRequest(username: string, opts: { fullName?: string; description?: string; groups?: string[]; isAdmin?: boolean } = {}): Promise<string> {
  const em = db.em.fork();
  const req = em.create(AccountOpeningRequestSchema, {
    applicant: applicantId,
    contactEmail: 'applicant@example.test',
    username,
    fullName: opts.fullName ?? `${username} Example`,
    description: opts.description ?? null,
    host: hostId,
    groups: opts.groups ?? [],
    isAdmin: opts.isAdmin ?? false,
    status: 'provisioning',
    workflowId: 'pending',
    expiresAt: new Date(Date.now() + 7 * 86_400_000),
  });
  req.workflowId = `account-opening/${req.id}`;
  await em.flush();
  return req.id;
}

async function accountRow(id: string) {
  return db.em.fork().findOneOrFail(HostAccountSchema, { id });
}

async function storedPassword(accountId: string): Promise<string> {
  const a = await accountRow(accountId);
  const pw = vault.decrypt(a.secretCiphertext!, hostAccountSecretContext(a.id, a.secretVersion));
  passwords.add(pw);
  return pw;
}

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

/** Scripts (without the executor's prelude) sent since `from`. */
const scriptsSince = (from: number) => ws.commands.slice(from).map((c) => c.script);
const userSnapshot = (name: string) => {
  const u = ws.users.get(name.toLowerCase())!;
  return { ...u, groups: [...u.groups].sort() };
};

beforeAll(async () => {
  db = await initORM({ pgliteDir: 'memory://' });
  vault = new Vault(generateKeyring('t'));
  ws = await startWsManHost({ https: true });
  passwords.add(ws.adminPassword);
  winrm = new RecordingWinRm({ em: db.em, vault, connectTimeoutMs: 3000 });
  ssh = new SshExecutor({ em: db.em, vault }); // unused: every host here is Windows
  acts = createAccountActivities({ em: db.em, vault, logger: createLogger({ level: 'silent' }), ssh, winrm });

  const em = db.em.fork();
  const host = em.create(HostSchema, {
    slug: 'win-acct',
    name: 'Windows account host',
    address: '127.0.0.1',
    port: ws.port,
    os: 'windows',
    username: ws.adminUser,
    winrmPort: ws.port,
    winrmHttps: ws.https,
    winrmAuth: 'basic',
  });
  const enc = vault.encrypt(ws.adminPassword, credentialContext(host.id, 'winrm-password'));
  em.create(HostCredentialSchema, { host, kind: 'winrm-password', ...enc });
  const applicant = em.create(UserSchema, { username: 'applicant', email: 'applicant@example.test', roles: ['requester'] });
  await em.flush();
  hostId = host.id;
  applicantId = applicant.id;
  expect([...ws.groups.keys()]).toEqual(expect.arrayContaining(['Administrators', 'Users', 'Remote Desktop Users', 'Remote Management Users']));
});

afterAll(async () => {
  await winrm?.close();
  await ssh?.close();
  await ws?.stop();
  await db?.close();
});

describe('Windows account activities against the WS-Man stand-in', () => {
  let requestId: string;
  let accountId: string;

  it('provisionAccount creates the user with its full name, description and groups; the password goes only through stdin', async () => {
    requestId = await newRequest('jdoe', { fullName: "Jane O'Doe", description: 'GPU box for the thesis' });
    const r = await acts.provisionAccount(requestId);
    expect(r).toMatchObject({ createdNow: true, preExisting: false });
    accountId = r.hostAccountId;

    const u = userSnapshot('jdoe');
    expect(u).toMatchObject({ name: 'jdoe', fullName: "Jane O'Doe", description: 'GPU box for the thesis', enabled: true });
    expect(u.groups).toEqual(['Remote Desktop Users', 'Users']);
    const password = await storedPassword(accountId);
    expect(ws.checkPassword('jdoe', password)).toBe(true);
    expect(await accountRow(accountId)).toMatchObject({ status: 'active', groups: ['Remote Desktop Users'], origin: 'platform-created', createdFromRequestId: requestId });

    const create = ws.commands.find((c) => c.script.includes("New-LocalUser -Name 'jdoe'"))!;
    expect(create.stdin).toBe(password);
    expect(create.script).not.toContain(password);
    // The certificate was pinned on first contact (HTTPS), as for any WinRM host.
    expect((await db.em.fork().findOneOrFail(HostSchema, { id: hostId })).hostKeyFingerprint).toBe(ws.certFingerprint);
  });

  it('a second provisionAccount (a retry) creates nothing new and keeps the same password', async () => {
    const usersBefore = [...ws.users.keys()].sort();
    const password = await storedPassword(accountId);
    const from = ws.commands.length;

    const r = await acts.provisionAccount(requestId);
    expect(r).toEqual({ hostAccountId: accountId, createdNow: false, preExisting: true });
    expect(scriptsSince(from).some((s) => s.includes('New-LocalUser'))).toBe(false);
    expect([...ws.users.keys()].sort()).toEqual(usersBefore);
    expect(await storedPassword(accountId)).toBe(password);
    expect(ws.checkPassword('jdoe', password)).toBe(true);
    expect(userSnapshot('jdoe').groups).toEqual(['Remote Desktop Users', 'Users']);
    // The group step took the "already a member" path.
    const groupStep = winrm.results.find((x, i) => i >= winrm.results.length - 3 && x.script.includes('Add-LocalGroupMember'))!;
    expect(groupStep.result).toMatchObject({ exitCode: 0, stdout: 'HOSTFLOW_ALREADY_MEMBER Remote Desktop Users\r\n' });
  });

  it('verifyAccountLogin: WinRM accepts the password (an RDP-only account then gets AccessDenied) and the groups match', async () => {
    const v = await acts.verifyAccountLogin(accountId);
    expect(v.verified).toBe(true);
    expect(v.groups.sort()).toEqual(['Remote Desktop Users', 'Users']);
    // Authenticated as jdoe (a wrong password is a 401 with user null), refused a shell as on Windows.
    expect(ws.requests.filter((q) => q.user === 'jdoe').at(-1)).toMatchObject({ status: 500 });

    // With a password that no longer matches, verification fails (and does not retry).
    const u = ws.users.get('jdoe')!;
    const hash = u.passwordHash;
    u.passwordHash = `sha256:00:${'00'.repeat(32)}`; // matches no password
    try {
      const err = await failure(acts.verifyAccountLogin(accountId));
      expect(err.type).toBe('LoginVerificationFailed');
      expect(err.nonRetryable).toBe(true);
      expect(ws.requests.at(-1)).toMatchObject({ user: null, status: 401 });
    } finally {
      u.passwordHash = hash;
    }
  });

  it('an administrator account logs in over WS-Man and runs a command as itself', async () => {
    const id = await newRequest('opsadmin', { isAdmin: true });
    const r = await acts.provisionAccount(id);
    expect(userSnapshot('opsadmin').groups).toEqual(['Administrators', 'Remote Desktop Users', 'Users']);
    const from = ws.commands.length;
    const v = await acts.verifyAccountLogin(r.hostAccountId);
    expect(v.groups.sort()).toEqual(['Administrators', 'Remote Desktop Users', 'Users']);
    const asUser = ws.commands.slice(from).find((c) => c.user === 'opsadmin')!;
    expect(asUser.script).toContain("Write-Output 'HOSTFLOW_LOGIN_OK'");
    expect(asUser.exitCode).toBe(0);
    await storedPassword(r.hostAccountId);
  });

  it('a user that already exists on the host → AccountExistsNotManaged, and the user is left untouched', async () => {
    ws.addUser('legacy', 'Legacy-Pass#1', ['Remote Desktop Users']);
    passwords.add('Legacy-Pass#1');
    const before = userSnapshot('legacy');
    const from = ws.commands.length;
    for (const name of ['legacy', 'LEGACY']) {
      const id = await newRequest(name);
      const err = await failure(acts.provisionAccount(id));
      expect(err.type).toBe('AccountExistsNotManaged');
      expect(err.nonRetryable).toBe(true);
      // Compensation for that request must not remove someone else's account either.
      expect(await acts.rollbackAccount(id)).toEqual({ removed: false });
    }
    expect(userSnapshot('legacy')).toEqual(before);
    expect(ws.checkPassword('legacy', 'Legacy-Pass#1')).toBe(true);
    expect(scriptsSince(from).some((s) => /New-LocalUser|Set-LocalUser|Add-LocalGroupMember|Remove-LocalUser/.test(s))).toBe(false);
    expect(await db.em.fork().count(HostAccountSchema, { username: { $in: ['legacy', 'LEGACY'] } })).toBe(0);
  });

  it('setHostAccountEnabled disables the account (no more logins) and enables it again', async () => {
    const password = await storedPassword(accountId);
    expect(await acts.setHostAccountEnabled(accountId, false)).toEqual({ status: 'disabled' });
    expect(ws.users.get('jdoe')!.enabled).toBe(false);
    expect(ws.checkPassword('jdoe', password)).toBe(false);
    expect((await failure(acts.verifyAccountLogin(accountId))).type).toBe('LoginVerificationFailed');

    expect(await acts.setHostAccountEnabled(accountId, true)).toEqual({ status: 'active' });
    expect(ws.users.get('jdoe')!.enabled).toBe(true);
    expect(ws.checkPassword('jdoe', password)).toBe(true);
  });

  it('resetHostAccountPassword sets a new password through stdin; a retry of the same operation re-applies it', async () => {
    const old = await storedPassword(accountId);
    const from = ws.commands.length;
    const r = await acts.resetHostAccountPassword(accountId, 'reset-op-1');
    const fresh = await storedPassword(accountId);
    expect(r.secretVersion).toBe(2);
    expect(fresh).not.toBe(old);
    expect(ws.checkPassword('jdoe', fresh)).toBe(true);
    expect(ws.checkPassword('jdoe', old)).toBe(false);
    const set = ws.commands.slice(from).find((c) => c.script.includes("Set-LocalUser -Name 'jdoe'"))!;
    expect(set.stdin).toBe(fresh);

    expect(await acts.resetHostAccountPassword(accountId, 'reset-op-1')).toEqual({ secretVersion: 2 });
    expect(await storedPassword(accountId)).toBe(fresh);
    expect(ws.checkPassword('jdoe', fresh)).toBe(true);
    expect((await acts.verifyAccountLogin(accountId)).verified).toBe(true);
  });

  it('a lookup that fails for another reason than "not found" is "could not tell": the delete fails retryably (AccountLookupFailed), nothing is recorded', async () => {
    const sid = ws.users.get('jdoe')!.sid;
    ws.injectFault('Get-LocalUser', 'Access is denied.');
    try {
      const err = await failure(acts.deleteHostAccount(accountId));
      expect([err.type, err.nonRetryable]).toEqual(['AccountLookupFailed', false]);
      expect(err.message).not.toContain('Access is denied');
      expect(ws.users.has('jdoe')).toBe(true);
      expect(await accountRow(accountId)).toMatchObject({ status: 'active' });
      // The delete script itself refuses to call a failed lookup "no such user" too.
      const r = await winrm.exec(hostId, windows.deleteUser('jdoe', { removeProfile: true }));
      expect(r.exitCode).toBe(1);
      expect(r.stdout).not.toContain('HOSTFLOW_NO_SUCH_USER');
    } finally {
      ws.injectFault('Get-LocalUser', null);
    }
    expect(ws.users.get('jdoe')?.sid).toBe(sid);
  });

  it('deleteHostAccount removes the user and its profile (C:\\Users\\jdoe); a loaded profile (user logged on) fails it retryably, leaving the user; the row stays, marked deleted, without its secret', async () => {
    const sid = ws.users.get('jdoe')!.sid;
    ws.createProfile('jdoe', { loaded: true });
    const busy = await failure(acts.deleteHostAccount(accountId));
    expect([busy.type, busy.nonRetryable]).toEqual(['RemoteCommandFailed', false]);
    expect(ws.users.has('jdoe')).toBe(true);
    expect(ws.profiles.get(sid)?.localPath).toBe('C:\\Users\\jdoe');
    expect(await accountRow(accountId)).toMatchObject({ status: 'active' });
    ws.createProfile('jdoe', { loaded: false }); // logged off
    expect(await acts.deleteHostAccount(accountId)).toEqual({ status: 'deleted' });
    expect(ws.profiles.has(sid)).toBe(false);
    expect(ws.users.has('jdoe')).toBe(false);
    for (const members of ws.groups.values()) expect(members.has('jdoe')).toBe(false);
    expect(await accountRow(accountId)).toMatchObject({ status: 'deleted', secretCiphertext: null });
  });

  it('deleteHostAccount of a user logged on over RDP (an active and a disconnected session) logs the sessions off, then removes the user and its profile', async () => {
    const reqId = await newRequest('rdpuser');
    const { hostAccountId } = await acts.provisionAccount(reqId);
    await storedPassword(hostAccountId);
    const other = ws.logon(ws.adminUser); // someone else's session stays
    const active = ws.logon('rdpuser');
    const disc = ws.logon('rdpuser', { disconnected: true });
    const sid = ws.users.get('rdpuser')!.sid;
    expect(ws.profiles.get(sid)?.loaded).toBe(true);
    const from = ws.commands.length;
    expect(await acts.deleteHostAccount(hostAccountId)).toEqual({ status: 'deleted' });
    expect([...ws.sessions.keys()]).toEqual([other]);
    expect(ws.profiles.has(sid)).toBe(false);
    expect(ws.users.has('rdpuser')).toBe(false);
    const scripts = scriptsSince(from);
    expect(scripts.some((x) => x.includes(`logoff ${active}\n`) && x.includes(`logoff ${disc}\n`) && !x.includes(`logoff ${other}\n`))).toBe(true);
    // query.exe's table as Windows prints it: the disconnected session has no SESSIONNAME.
    expect(windows.parseQuser(' USERNAME              SESSIONNAME        ID  STATE   IDLE TIME  LOGON TIME\r\n>administrator         rdp-tcp#0           2  Active          .  12/1/2026 9:00 AM\r\n bob                                       3  Disc            5  12/1/2026 8:00 AM\r\n')).toEqual([
      { username: 'administrator', sessionName: 'rdp-tcp#0', id: 2, state: 'Active' },
      { username: 'bob', sessionName: '', id: 3, state: 'Disc' },
    ]);
    expect(() => windows.logoffSessions([])).toThrow(/sessionIds/);
  });

  it('rollbackAccount removes a half-created account whose row is still provisioning', async () => {
    const id = await newRequest('halfway', { groups: ['No Such Group'] });
    const err = await failure(acts.provisionAccount(id));
    expect(err.type).toBe('MissingGroup');
    // Created, but the group step changed nothing (all groups are checked first).
    expect(userSnapshot('halfway').groups).toEqual(['Users']);
    const row = await db.em.fork().findOneOrFail(HostAccountSchema, { username: 'halfway' });
    expect(row.status).toBe('provisioning');
    passwords.add(vault.decrypt(row.secretCiphertext!, hostAccountSecretContext(row.id, row.secretVersion)));

    expect(await acts.rollbackAccount(id)).toEqual({ removed: true });
    expect(ws.users.has('halfway')).toBe(false);
    expect(await db.em.fork().count(HostAccountSchema, { username: 'halfway' })).toBe(0);
    expect(await acts.rollbackAccount(id)).toEqual({ removed: false });
    expect(ws.users.has('legacy')).toBe(true);
  });

  it('no script or command line ever held a password, and the stand-in understood every script', () => {
    expect(passwords.size).toBeGreaterThanOrEqual(5);
    for (const c of ws.commands) {
      for (const pw of passwords) {
        expect(c.script).not.toContain(pw);
        expect(c.commandLine).not.toContain(pw);
      }
      if (/New-LocalUser|Set-LocalUser/.test(c.script)) expect(passwords.has(c.stdin)).toBe(true);
    }
    expect(winrm.results.length).toBeGreaterThan(20);
    for (const { result } of winrm.results) expect(result.stderr).not.toMatch(/unsupported|internal error/);
  });
});

describe('WS-Man stand-in: the block subset the builders use', () => {
  const run = (script: string, stdin?: string) => winrm.exec(hostId, script, { stdin });

  it('runs the builders: lookups, membership, idempotent group adds, missing groups', async () => {
    ws.addUser('blocky', 'Blocky-Pass#1');
    expect(await run(windows.userExists('blocky'))).toMatchObject({ exitCode: 0, stdout: 'HOSTFLOW_USER_EXISTS blocky\r\n' });
    expect(await run(windows.userExists('nobody'))).toMatchObject({ exitCode: windows.WINDOWS_EXIT.NOT_FOUND, stdout: 'HOSTFLOW_NO_SUCH_USER nobody\r\n' });
    expect(await run(windows.userGroups('nobody'))).toMatchObject({ exitCode: windows.WINDOWS_EXIT.NO_SUCH_USER });

    const missing = await run(windows.addToGroups('blocky', ['Remote Management Users', 'Nope']));
    expect(missing).toMatchObject({ exitCode: windows.WINDOWS_EXIT.MISSING_GROUP, stdout: 'HOSTFLOW_MISSING_GROUP Nope\r\n' });
    expect([...ws.users.get('blocky')!.groups]).toEqual(['Users']);

    const add = await run(windows.addToGroups('blocky', ['Remote Management Users', 'Users']));
    expect(add).toMatchObject({ exitCode: 0, stderr: '', stdout: 'HOSTFLOW_ADDED_GROUP Remote Management Users\r\nHOSTFLOW_ALREADY_MEMBER Users\r\n' });
    expect(await run(windows.userGroups('blocky'))).toMatchObject({
      exitCode: 0,
      stdout: 'HOSTFLOW_MEMBER_OF Users\r\nHOSTFLOW_MEMBER_OF Remote Management Users\r\n',
    });

    const sp = windows.setPassword('blocky');
    expect(await run(sp.script, sp.stdin('Second-Pass#2'))).toMatchObject({ exitCode: 0, stdout: 'HOSTFLOW_PASSWORD_SET blocky\r\n' });
    expect(ws.checkPassword('blocky', 'Second-Pass#2')).toBe(true);
    // Without stdin there is no $HostflowStdin: the stand-in refuses rather than set an empty password.
    expect(await run(sp.script)).toMatchObject({ exitCode: 1, stderr: expect.stringContaining('unsupported variable in stand-in') });
    expect(ws.checkPassword('blocky', 'Second-Pass#2')).toBe(true);
  });

  it('assignments and variable conditions ($v = Get-Local*, $null -eq $v, $flag)', async () => {
    const script = [
      "$ErrorActionPreference = 'Stop'",
      "$user = Get-LocalUser -Name 'blocky' -ErrorAction SilentlyContinue",
      "$ghost = Get-LocalUser -Name 'ghost' -ErrorAction SilentlyContinue",
      '$missing = $false',
      'if ($null -ne $user) {',
      "  Write-Output ('found ' + $user.Name)",
      '}',
      'if ($null -eq $ghost) {',
      '  $missing = $true',
      '}',
      'if ($missing) {',
      "  Write-Output 'ghost missing'",
      '  exit 4',
      '}',
      "Write-Output 'not reached'",
    ].join('\n');
    expect(await run(script)).toMatchObject({ exitCode: 4, stdout: 'found blocky\r\nghost missing\r\n', stderr: '' });
  });

  it('a catch handles only its exception type; other errors end the script with exit 1', async () => {
    const script = [
      "$ErrorActionPreference = 'Stop'",
      'try {',
      "  Remove-LocalUser -Name 'ghost'",
      '}',
      'catch [Microsoft.PowerShell.Commands.MemberExistsException] {',
      "  Write-Output 'wrongly caught'",
      '}',
      "Write-Output 'not reached'",
    ].join('\n');
    expect(await run(script)).toMatchObject({ exitCode: 1, stdout: '', stderr: 'Remove-LocalUser : User ghost was not found.\r\n' });
  });

  it.each([
    ['an unknown condition', 'if ($a -gt 1) {\n}', 'unsupported condition in stand-in'],
    ['a comparison with an expression operand', "if ($a -eq (Get-Date)) {\n}", 'unsupported condition in stand-in'],
    ['else', "if ($null -eq $a) {\n}\nelse {\nWrite-Output 'x'\n}", 'unsupported block in stand-in'],
    ['a generic catch', "try {\nWrite-Output 'x'\n}\ncatch {\n}", 'unsupported block in stand-in'],
    ['a one-line block', "if ($null -eq $a) { Write-Output 'x' }", 'unsupported block in stand-in'],
    ['a missing }', 'if ($null -eq $a) {', 'unsupported block in stand-in'],
    ['a CIM pipeline', "Get-CimInstance -ClassName Win32_UserProfile | Where-Object { $_.Loaded } | Remove-CimInstance", 'unsupported'],
    ['a CIM filter other than SID', "$p = Get-CimInstance -ClassName Win32_UserProfile -Filter ('Loaded = ''true''')", 'unsupported'],
    ['a double-quoted string', 'Write-Output "$(whoami)"', 'unsupported syntax in stand-in'],
  ])('refuses %s before running anything', async (_label, tail, message) => {
    const r = await run(`Remove-LocalUser -Name 'blocky'\n${tail}`);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(message);
    expect(ws.users.has('blocky')).toBe(true);
  });
});
