// WinRmExecutor against the WS-Management stand-in (test/helpers/wsman-host.ts): real SOAP over
// HTTP/HTTPS on loopback, hosts and encrypted credentials in a real (PGlite) database.
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { initORM, type Db } from '../../db/orm.js';
import { Vault, generateKeyring } from '../../db/vault.js';
import { HostSchema, HostCredentialSchema } from '../../db/entities/index.js';
import { credentialContext } from '../../activities/remote/host-targets.js';
import { RemoteError } from '../../activities/remote/executor.js';
import {
  WinRmExecutor,
  decodeClixml,
  decodePowerShell,
  encodePowerShell,
} from '../../activities/winrm/winrm-executor.js';
import { startWsManHost, type WsManHost } from '../helpers/wsman-host.js';

/** PowerShell single-quoted literal (the quoting windows.ts command builders must do). */
const psQuote = (s: string) => `'${s.replace(/'/g, "''")}'`;

let db: Db;
let vault: Vault;
let ws: WsManHost;
let wss: WsManHost;
let winrm: WinRmExecutor;
let seq = 0;

async function addHost(
  target: { port: number; https?: boolean },
  cred: { username: string; password: string; pinned?: string },
): Promise<string> {
  const em = db.em.fork();
  const host = em.create(HostSchema, {
    slug: `win-${++seq}`,
    name: `win ${seq}`,
    address: '127.0.0.1',
    port: target.port,
    os: 'windows',
    username: cred.username,
    winrmPort: target.port,
    winrmHttps: target.https ?? false,
    // This file tests the transport against the Basic stand-in; Basic over HTTP is allowed per host here.
    winrmAuth: 'basic',
    winrmAllowUnencryptedBasic: !(target.https ?? false),
    hostKeyFingerprint: cred.pinned ?? null,
  });
  const enc = vault.encrypt(cred.password, credentialContext(host.id, 'winrm-password'));
  em.create(HostCredentialSchema, { host, kind: 'winrm-password', ...enc });
  await em.flush();
  return host.id;
}

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function remoteError(p: Promise<unknown>): Promise<RemoteError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RemoteError);
  return err as RemoteError;
}

let hostId: string;

beforeAll(async () => {
  db = await initORM({ pgliteDir: 'memory://' });
  vault = new Vault(generateKeyring('t'));
  [ws, wss] = await Promise.all([startWsManHost(), startWsManHost({ https: true })]);
  winrm = new WinRmExecutor({ em: db.em, vault, connectTimeoutMs: 3000 });
  hostId = await addHost({ port: ws.port }, { username: ws.adminUser, password: ws.adminPassword });
});

afterAll(async () => {
  await winrm?.close();
  await Promise.all([ws?.stop(), wss?.stop()]);
  await db?.close();
});

describe('WinRmExecutor', () => {
  it('runs a PowerShell script: stdout, exit 0, shell deleted afterwards', async () => {
    const r = await winrm.exec(hostId, "Write-Output 'hello'");
    expect(r).toMatchObject({ exitCode: 0, stdout: 'hello\r\n', stderr: '' });
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
    const cmd = ws.commands.at(-1)!;
    expect(cmd.commandLine).toMatch(/^powershell\.exe -NoProfile -NonInteractive -EncodedCommand [A-Za-z0-9+/=]+$/);
    expect(cmd.script.split('\n').at(-1)).toBe("Write-Output 'hello'");
    expect(cmd.user).toBe(ws.adminUser);
    await vi.waitFor(() => expect(ws.openShells()).toEqual([]));
  });

  it('returns the script exit code', async () => {
    const r = await winrm.exec(hostId, "Write-Output 'before'\nexit 3");
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toBe('before\r\n');
  });

  it('decodes CLIXML error records and reports a failed last statement as exit 1', async () => {
    const r = await winrm.exec(hostId, "Get-LocalUser -Name 'nobody-here'");
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('Get-LocalUser : User nobody-here was not found.\r\n');
  });

  it('fails loudly on a statement the stand-in does not know', async () => {
    const r = await winrm.exec(hostId, 'Get-Process | Stop-Process');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('unsupported cmdlet in stand-in: Get-Process | Stop-Process');
  });

  it('wrong password → AuthenticationFailed (non-retryable)', async () => {
    const id = await addHost({ port: ws.port }, { username: ws.adminUser, password: 'Wrong-password-1' });
    const err = await remoteError(winrm.exec(id, "Write-Output 'x'"));
    expect(err.type).toBe('AuthenticationFailed');
    expect(err.retryable).toBe(false);
    expect(err.message).not.toContain('Wrong-password-1');
    expect(ws.requests.at(-1)).toMatchObject({ user: null, status: 401 });
  });

  it('closed port → HostUnreachable (retryable)', async () => {
    const id = await addHost({ port: await closedPort() }, { username: 'Administrator', password: 'x' });
    const err = await remoteError(winrm.exec(id, "Write-Output 'x'"));
    expect(err.type).toBe('HostUnreachable');
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.retryable).toBe(true);
  });

  it('a port that accepts TCP but never answers TLS → ConnectTimeout', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const quick = new WinRmExecutor({ em: db.em, vault, connectTimeoutMs: 300 });
    try {
      const id = await addHost({ port, https: true }, { username: 'Administrator', password: 'x' });
      const err = await remoteError(quick.exec(id, 'exit 0'));
      expect(err.type).toBe('ConnectTimeout');
    } finally {
      await quick.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('refuses domain accounts with Basic (local accounts only) without sending anything', async () => {
    const before = ws.requests.length;
    const id = await addHost({ port: ws.port }, { username: 'CORP\\svc-hostflow', password: 'x' });
    const err = await remoteError(winrm.exec(id, 'exit 0'));
    expect(err.type).toBe('AuthenticationFailed');
    expect(ws.requests.length).toBe(before);
  });

  it('refuses Basic over plain HTTP unless the host allows it (InsecureTransport), without sending anything', async () => {
    const before = ws.requests.length;
    const id = await addHost({ port: ws.port }, { username: ws.adminUser, password: ws.adminPassword });
    await db.em.fork().nativeUpdate(HostSchema, { id }, { winrmAllowUnencryptedBasic: false });
    const err = await remoteError(winrm.exec(id, 'exit 0'));
    expect(err.type).toBe('InsecureTransport');
    expect(ws.requests.length).toBe(before);
  });

  it('creates a local user (password via stdin, never in the script) and the user can log in', async () => {
    const password = `Pw-${Date.now()}-Zq!`;
    const script = [
      "$ErrorActionPreference = 'Stop'",
      `New-LocalUser -Name ${psQuote('alice')} -Password (ConvertTo-SecureString $HostflowStdin -AsPlainText -Force) -FullName ${psQuote("Alice O'Hara")} -Description ${psQuote('hostflow')} | Out-Null`,
      `Add-LocalGroupMember -Group ${psQuote('Remote Management Users')} -Member ${psQuote('alice')}`,
      `Get-LocalUser -Name ${psQuote('alice')}`,
    ].join('\n');
    const r = await winrm.exec(hostId, script, { stdin: password });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ Name: 'alice', Enabled: true, FullName: "Alice O'Hara" });

    const alice = ws.users.get('alice')!;
    expect(alice).toMatchObject({ fullName: "Alice O'Hara", description: 'hostflow', enabled: true });
    expect([...alice.groups]).toEqual(expect.arrayContaining(['Users', 'Remote Management Users']));
    expect(ws.checkPassword('alice', password)).toBe(true);
    const cmd = ws.commands.at(-1)!;
    expect(cmd.stdin).toBe(password);
    expect(cmd.script).not.toContain(password);
    expect(cmd.commandLine).not.toContain(Buffer.from(password, 'utf16le').toString('base64').slice(0, 12));

    // Verify by logging in as the new user over WinRM.
    const login = await winrm.verifyLogin({ address: '127.0.0.1', winrmPort: ws.port, winrmHttps: false, winrmAuth: 'basic', winrmAllowUnencryptedBasic: true, username: 'alice', password }, "Write-Output 'as alice'");
    expect(login).toMatchObject({ exitCode: 0, stdout: 'as alice\r\n' });
    expect(ws.commands.at(-1)!.user).toBe('alice');
    const bad = await remoteError(winrm.verifyLogin({ address: '127.0.0.1', winrmPort: ws.port, winrmHttps: false, winrmAuth: 'basic', winrmAllowUnencryptedBasic: true, username: 'alice', password: 'nope' }));
    expect(bad.type).toBe('AuthenticationFailed');

    // Disabled → login refused; removed → gone.
    expect((await winrm.exec(hostId, "Disable-LocalUser -Name 'alice'")).exitCode).toBe(0);
    expect(ws.users.get('alice')!.enabled).toBe(false);
    expect((await remoteError(winrm.verifyLogin({ address: '127.0.0.1', winrmPort: ws.port, winrmHttps: false, winrmAuth: 'basic', winrmAllowUnencryptedBasic: true, username: 'alice', password }))).type).toBe('AuthenticationFailed');
    expect((await winrm.exec(hostId, "Remove-LocalUser -Name 'alice'")).exitCode).toBe(0);
    expect(ws.users.has('alice')).toBe(false);
    expect(ws.groups.get('Remote Management Users')!.has('alice')).toBe(false);
  });

  it('an account outside Administrators / Remote Management Users cannot open a shell (as on Windows)', async () => {
    ws.addUser('rdp-only', 'Rdp-only-Pw1', ['Remote Desktop Users']);
    const err = await remoteError(winrm.verifyLogin({ address: '127.0.0.1', winrmPort: ws.port, winrmHttps: false, winrmAuth: 'basic', winrmAllowUnencryptedBasic: true, username: 'rdp-only', password: 'Rdp-only-Pw1' }));
    expect(err.type).toBe('AuthenticationFailed');
    expect(err.message).toMatch(/access denied/i);
  });

  it('quoted injection attempts stay literal values', async () => {
    const evil = `x'; Remove-LocalUser -Name '${ws.adminUser}`;
    const r = await winrm.exec(hostId, `New-LocalUser -Name ${psQuote(evil)} -Password (ConvertTo-SecureString $HostflowStdin -AsPlainText -Force)`, { stdin: 'Str0ng-Passw0rd!' });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`The name ${evil} is invalid.`);
    expect(ws.users.has(ws.adminUser.toLowerCase())).toBe(true);
  });

  it('encodePowerShell round-trips non-ASCII, and UTF-8 output survives (code page 65001)', async () => {
    const script = "Write-Output 'Grüße, Zoë — 東京 ✓ 𝄞'";
    const encoded = encodePowerShell(script);
    expect(encoded).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(decodePowerShell(encoded)).toBe(script);
    expect(Buffer.from(encoded, 'base64').length).toBe(script.length * 2);
    const r = await winrm.exec(hostId, script);
    expect(r.stdout).toBe('Grüße, Zoë — 東京 ✓ 𝄞\r\n');
  });

  it('streams output and kills the command on timeout (CommandTimeout, shell deleted)', async () => {
    const chunks: string[] = [];
    const started = performance.now();
    const err = await remoteError(
      winrm.exec(hostId, "Write-Output 'started'\nStart-Sleep -Seconds 30\nWrite-Output 'never'", {
        timeoutMs: 400,
        onOutput: (c) => chunks.push(`${c.stream}:${c.data}`),
      }),
    );
    expect(err.type).toBe('CommandTimeout');
    expect(performance.now() - started).toBeLessThan(3000);
    expect(chunks).toEqual(['stdout:started\r\n']);
    await vi.waitFor(() => expect(ws.openShells()).toEqual([]));
    expect(ws.commands.at(-1)!.exitCode).toBe(-1);
  });

  it('keeps polling across Receive OperationTimeout faults', async () => {
    const patient = new WinRmExecutor({ em: db.em, vault, operationTimeoutS: 1 });
    try {
      const r = await patient.exec(hostId, "Start-Sleep -Milliseconds 1500\nWrite-Output 'late'");
      expect(r).toMatchObject({ exitCode: 0, stdout: 'late\r\n' });
      expect(ws.requests.some((q) => q.status === 500 && q.action.endsWith('/Receive'))).toBe(true);
    } finally {
      await patient.close();
    }
  });

  it('HTTPS: pins the self-signed certificate on first contact and refuses a changed one before sending credentials', async () => {
    const id = await addHost({ port: wss.port, https: true }, { username: wss.adminUser, password: wss.adminPassword });
    const r = await winrm.exec(id, "Write-Output 'over tls'");
    expect(r.stdout).toBe('over tls\r\n');
    const row = await db.em.fork().findOneOrFail(HostSchema, { id });
    expect(row.hostKeyFingerprint).toBe(wss.certFingerprint);

    await wss.regenerateCertificate();
    winrm.evict(id);
    const before = wss.requests.length;
    const err = await remoteError(winrm.exec(id, "Write-Output 'x'"));
    expect(err.type).toBe('HostKeyMismatch');
    expect(err.retryable).toBe(false);
    expect(wss.requests.length).toBe(before);
  });

  it('decodeClixml keeps plain text and decodes escapes', () => {
    const s = '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T></TN></Obj><S S="Error">a &lt;b&gt;_x000D__x000A_</S><S S="Warning">w_x000A_</S></Objs>';
    expect(decodeClixml(s)).toBe('a <b>\r\nWARNING: w\n');
    expect(decodeClixml('plain')).toBe('plain');
  });
});
