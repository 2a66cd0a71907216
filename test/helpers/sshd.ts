/**
 * Throwaway OpenSSH test host on loopback.
 *
 * `startSshd()` creates a temp dir, a fresh ed25519 host key, a unique admin OS user
 * (`hfadm<random5>`, password + key login, passwordless sudo) and starts one dedicated
 * `/usr/sbin/sshd -D` on 127.0.0.1:<free port>. `stop()` tears all of it down again.
 *
 * Needs root (creates OS users, writes /etc/sudoers.d) plus the `openssh-server` and
 * `sudo` packages.
 *
 * Notes measured on these machines:
 * - one sshd listens on at most 16 sockets, so every test host gets its own daemon;
 * - users created with plain `useradd` are locked and refused with `UsePAM no`: we set a
 *   real password (chpasswd) or `-p '*'` (key-only, not locked);
 * - logging in as root runs a slow shell init (~70 ms per exec), so tests use the admin
 *   user + sudo instead;
 * - ssh2 without `setNoDelay(true)` adds ~40 ms per exec (Nagle).
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, type ConnectConfig } from 'ssh2';

export interface SshTestUser {
  name: string;
  /** Login password; without one the user is created key-only (`useradd -p '*'`, not locked). */
  password?: string;
  /** Passwordless sudo via /etc/sudoers.d/<name>. */
  sudo?: boolean;
  /** Public keys (OpenSSH one-line format) to put into ~/.ssh/authorized_keys. */
  authorizedKeys?: string[];
}

export interface StartSshdOptions {
  users?: SshTestUser[];
  /** Appended verbatim to the generated sshd_config. */
  extraConfig?: string;
  /** sshd's LogLevel (default ERROR). INFO logs every accepted login ("Accepted publickey for <user> …"), which `npm run testhost` reads to find the accounts used through it. */
  logLevel?: 'ERROR' | 'INFO' | 'VERBOSE';
}

export interface SshTestHost {
  host: '127.0.0.1';
  port: number;
  adminUser: string;
  /** OpenSSH-format ed25519 private key (no passphrase). */
  adminPrivateKey: string;
  /** OpenSSH one-line public key of the admin key pair. */
  adminPublicKey: string;
  adminPassword: string;
  /** 'SHA256:...' exactly as `ssh-keygen -lf` prints it. Updated by regenerateHostKey(). */
  hostKeyFingerprintSha256: string;
  /** Host public key line ('ssh-ed25519 AAAA... comment'). Updated by regenerateHostKey(). */
  hostPublicKey: string;
  /** Temp dir holding config, keys, pid file and sshd.log. */
  dir: string;
  /** Kills the daemon (and its sessions), deletes created users, sudoers files and the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** Replaces the host key and restarts sshd on the same port. */
  regenerateHostKey(): Promise<void>;
  /** Fault injection: kills the daemon and every session it serves (connections are refused until resume()). */
  pause(): Promise<void>;
  /** Starts the daemon again on the same port with the same host key. */
  resume(): Promise<void>;
  /** Last lines of sshd.log (handy in assertion messages). */
  logTail(lines?: number): string;
}

export interface SshExecResult {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

const SSHD = '/usr/sbin/sshd';
const SSH_KEYGEN = '/usr/bin/ssh-keygen';
const READY_TIMEOUT_MS = 10_000;

// ---------------------------------------------------------------------------------------
// small process helpers

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
        reject(new Error(`${cmd}: ${err.message}`));
        return;
      }
      resolve({ code: child.exitCode ?? (err ? 1 : 0), stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function runOk(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await run(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** useradd/userdel/chpasswd fail at once when another process holds /etc/passwd's lock: retry. */
async function runUserCmd(cmd: string, args: string[], input?: string): Promise<RunResult> {
  for (let attempt = 0; ; attempt++) {
    const r = await run(cmd, args, input);
    if (r.code === 0 || attempt >= 50 || !/lock|try again/i.test(r.stderr)) return r;
    await sleep(20 + Math.random() * 80);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function tcpConnects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function randomName(prefix: string): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(5);
  let s = prefix;
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}

/** Pids (by /proc scan) whose parent is `ppid` or whose real uid is one of `uids`. */
function findPids(ppids: number[], uids: number[]): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    try {
      const status = readFileSync(`/proc/${e}/status`, 'utf8');
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]);
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
      if (ppids.includes(ppid) || uids.includes(uid)) out.push(pid);
    } catch {
      // process went away
    }
  }
  return out;
}

function killPids(pids: number[], signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

// ---------------------------------------------------------------------------------------
// global bookkeeping + process-exit safety net

interface HostState {
  dir: string;
  daemon: ChildProcess | undefined;
  users: Array<{ name: string; uid: number }>;
  sudoersFiles: string[];
}

const liveHosts = new Set<HostState>();
let safetyNetInstalled = false;

/** Synchronous best-effort cleanup; used from 'exit' and fatal-signal handlers. */
function cleanupSync(): void {
  for (const st of liveHosts) {
    const daemonPid = st.daemon?.pid;
    if (daemonPid !== undefined) {
      const children = findPids([daemonPid], []);
      killPids([daemonPid, ...children]);
    }
    killPids(findPids([], st.users.map((u) => u.uid)));
    for (const u of st.users) spawnSync('userdel', ['-r', '-f', u.name], { stdio: 'ignore' });
    for (const f of st.sudoersFiles) rmSync(f, { force: true });
    rmSync(st.dir, { recursive: true, force: true });
  }
  liveHosts.clear();
}

function installSafetyNet(): void {
  if (safetyNetInstalled) return;
  safetyNetInstalled = true;
  process.on('exit', cleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = () => {
      cleanupSync();
      // Only act as the terminator when nobody else handles the signal: restore default and re-raise.
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, handler);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, handler);
  }
}

// ---------------------------------------------------------------------------------------
// users

async function getUid(name: string): Promise<number | undefined> {
  const r = await run('id', ['-u', name]);
  return r.code === 0 ? Number(r.stdout.trim()) : undefined;
}

async function createUser(st: HostState, u: SshTestUser): Promise<void> {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(u.name)) throw new Error(`invalid user name for test host: ${JSON.stringify(u.name)}`);
  if ((await getUid(u.name)) !== undefined) throw new Error(`user ${u.name} already exists on this machine; pick a unique name`);
  const args = ['-m', '-s', '/bin/bash'];
  if (u.password === undefined) args.push('-p', '*'); // key-only but not locked ('!' would be locked)
  const r = await runUserCmd('useradd', [...args, u.name]);
  if (r.code !== 0) throw new Error(`useradd ${u.name} failed (${r.code}): ${r.stderr.trim()}`);
  const uid = await getUid(u.name);
  if (uid === undefined) throw new Error(`useradd ${u.name} succeeded but id -u fails`);
  st.users.push({ name: u.name, uid });

  if (u.password !== undefined) {
    const c = await runUserCmd('chpasswd', [], `${u.name}:${u.password}\n`);
    if (c.code !== 0) throw new Error(`chpasswd ${u.name} failed: ${c.stderr.trim()}`);
  }
  if (u.sudo) {
    const file = `/etc/sudoers.d/${u.name}`;
    st.sudoersFiles.push(file);
    await writeFile(file, `${u.name} ALL=(ALL:ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
    await chmod(file, 0o440);
  }
  if (u.authorizedKeys?.length) {
    const home = (await runOk('getent', ['passwd', u.name])).split(':')[5]?.trim() || `/home/${u.name}`;
    const sshDir = path.join(home, '.ssh');
    const gid = Number((await runOk('id', ['-g', u.name])).trim());
    await mkdir(sshDir, { recursive: true, mode: 0o700 });
    await chmod(sshDir, 0o700);
    const ak = path.join(sshDir, 'authorized_keys');
    await writeFile(ak, u.authorizedKeys.map((k) => k.trim()).join('\n') + '\n', { mode: 0o600 });
    await chown(sshDir, uid, gid);
    await chown(ak, uid, gid);
  }
}

async function deleteUsers(st: HostState): Promise<void> {
  killPids(findPids([], st.users.map((u) => u.uid)));
  for (const u of st.users) {
    // -f: remove even when processes linger; a missing user (exit 6) is fine.
    await runUserCmd('userdel', ['-r', '-f', u.name]);
  }
  st.users = [];
}

// ---------------------------------------------------------------------------------------
// ssh2 helpers

function connectClient(cfg: ConnectConfig): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    const onError = (err: Error) => {
      c.end();
      reject(err);
    };
    c.once('error', onError);
    c.once('ready', () => {
      c.removeListener('error', onError);
      c.on('error', () => {}); // late errors (e.g. daemon killed) must not crash the test process
      resolve(c);
    });
    c.connect({ readyTimeout: READY_TIMEOUT_MS, ...cfg });
  });
}

/** ssh2 connect options for the admin user (key auth, Nagle off). Spread extra options over it. */
export function adminConnectConfig(h: Pick<SshTestHost, 'host' | 'port' | 'adminUser' | 'adminPrivateKey'>): ConnectConfig {
  return { host: h.host, port: h.port, username: h.adminUser, privateKey: h.adminPrivateKey, readyTimeout: READY_TIMEOUT_MS };
}

/** Connects with ssh2 and turns Nagle off on the socket (saves ~40 ms per exec). */
export async function sshConnect(cfg: ConnectConfig, onSocket?: (sock: net.Socket) => void): Promise<Client> {
  const sock = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: cfg.host ?? '127.0.0.1', port: cfg.port ?? 22 });
    s.setNoDelay(true);
    onSocket?.(s);
    s.once('connect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
  try {
    return await connectClient({ ...cfg, sock });
  } catch (err) {
    sock.destroy();
    throw err;
  }
}

/** Runs `command` on an open ssh2 connection. */
export function execOn(client: Client, command: string): Promise<SshExecResult> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, stream) => {
      if (err) {
        reject(err);
        return;
      }
      const out: Buffer[] = [];
      const errOut: Buffer[] = [];
      let code: number | null = null;
      let signal: string | undefined;
      stream.on('data', (d: Buffer) => out.push(d));
      stream.stderr.on('data', (d: Buffer) => errOut.push(d));
      stream.on('exit', (c: number | null, sig?: string) => {
        code = c;
        if (sig) signal = sig;
      });
      stream.on('close', () => {
        resolve({ code, ...(signal ? { signal } : {}), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errOut).toString('utf8') });
      });
    });
  });
}

/** POSIX-shell single-quote a string. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

// One cached admin connection per host for sshExec(): a fresh ssh2 login costs ~45 ms, an exec
// on an open connection ~5 ms. Sockets are unref'd while idle so they never keep a process alive.
interface CachedConn {
  client: Promise<Client>;
  sock?: net.Socket;
  inFlight: number;
}
const execConns = new Map<string, CachedConn>();
const connKey = (h: { host: string; port: number; adminUser: string }) => `${h.adminUser}@${h.host}:${h.port}`;

function dropExecConns(port: number): void {
  for (const [key, cc] of execConns) {
    if (key.endsWith(`:${port}`)) {
      execConns.delete(key);
      cc.client.then((c) => c.end()).catch(() => {});
    }
  }
}

function cachedClient(hostInfo: Pick<SshTestHost, 'host' | 'port' | 'adminUser' | 'adminPrivateKey'>): CachedConn {
  const key = connKey(hostInfo);
  let cc = execConns.get(key);
  if (!cc) {
    const entry: CachedConn = { inFlight: 0, client: Promise.resolve(undefined as unknown as Client) };
    entry.client = sshConnect(adminConnectConfig(hostInfo), (sock) => (entry.sock = sock)).then(
      (c) => {
        c.on('close', () => {
          if (execConns.get(key) === entry) execConns.delete(key);
        });
        if (entry.inFlight === 0) entry.sock?.unref();
        return c;
      },
      (err: unknown) => {
        if (execConns.get(key) === entry) execConns.delete(key);
        throw err;
      },
    );
    execConns.set(key, entry);
    cc = entry;
  }
  return cc;
}

/**
 * Runs `command` on the test host as the admin user (key auth, Nagle off) over a cached ssh2
 * connection per host. With `asUser` the command runs through
 * `sudo -n -H -u <asUser> -- bash -c <command>` (so 'root' works without a root login and any
 * user works without knowing its password).
 */
export async function sshExec(
  hostInfo: Pick<SshTestHost, 'host' | 'port' | 'adminUser' | 'adminPrivateKey'>,
  command: string,
  asUser?: string,
): Promise<SshExecResult> {
  const cmd = asUser && asUser !== hostInfo.adminUser ? `sudo -n -H -u ${shq(asUser)} -- bash -c ${shq(command)}` : command;
  for (let attempt = 0; ; attempt++) {
    const cc = cachedClient(hostInfo);
    cc.inFlight++;
    cc.sock?.ref();
    try {
      const client = await cc.client;
      cc.sock?.ref();
      return await execOn(client, cmd);
    } catch (err) {
      // A stale cached connection (daemon restarted, session killed): retry once on a fresh one.
      if (execConns.get(connKey(hostInfo)) === cc) execConns.delete(connKey(hostInfo));
      cc.client.then((c) => c.end()).catch(() => {});
      if (attempt >= 1) throw err;
    } finally {
      if (--cc.inFlight === 0) cc.sock?.unref();
    }
  }
}

/** 'SHA256:<base64 without padding>' of a raw SSH public key blob, as ssh-keygen prints it. */
export function fingerprintSha256(keyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

// ---------------------------------------------------------------------------------------
// sshd

async function generateHostKey(dir: string): Promise<{ publicKey: string; fingerprint: string }> {
  const keyFile = path.join(dir, 'ssh_host_ed25519_key');
  await rm(keyFile, { force: true });
  await rm(`${keyFile}.pub`, { force: true });
  await runOk(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', 'hostflow-test-host', '-f', keyFile]);
  const publicKey = (await readFile(`${keyFile}.pub`, 'utf8')).trim();
  const lf = await runOk(SSH_KEYGEN, ['-lf', `${keyFile}.pub`]);
  const fingerprint = lf.trim().split(/\s+/)[1] ?? '';
  if (!fingerprint.startsWith('SHA256:')) throw new Error(`unexpected ssh-keygen -lf output: ${lf}`);
  return { publicKey, fingerprint };
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no sshd log)';
  }
}

async function stopDaemon(st: HostState): Promise<void> {
  const d = st.daemon;
  st.daemon = undefined;
  if (!d || d.pid === undefined) return;
  // Per-connection sshd processes are children of the listener (they setsid, so not in its
  // process group): kill them too so sessions do not outlive the host.
  const children = findPids([d.pid], []);
  if (d.exitCode === null && d.signalCode === null) {
    const exited = new Promise<void>((r) => d.once('exit', () => r()));
    killPids([d.pid], 'SIGTERM');
    killPids(children, 'SIGKILL');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), 3000)))]);
    clearTimeout(timer);
    if (timedOut) {
      killPids([d.pid], 'SIGKILL');
      await exited;
    }
  } else {
    killPids(children, 'SIGKILL');
  }
}

/** Starts sshd and waits (≤10 s) until the admin user can log in; throws with the sshd log tail otherwise. */
async function launchDaemon(st: HostState, h: SshTestHost, configFile: string, logFile: string): Promise<void> {
  await rm(logFile, { force: true });
  // stdio ignored (sshd -E logs everything, including bind errors, to logFile) and unref'd, so a
  // host somebody forgot to stop() does not keep the test process alive; the exit safety net
  // kills it.
  const child = spawn(SSHD, ['-D', '-f', configFile, '-E', logFile], { stdio: 'ignore' });
  child.unref();
  st.daemon = child;
  let stderr = '';
  let exited = false;
  child.once('exit', () => (exited = true));
  child.once('error', (e) => {
    exited = true;
    stderr += String(e);
  });

  const deadline = Date.now() + READY_TIMEOUT_MS;
  const fail = (why: string): never => {
    throw new Error(`sshd test host on 127.0.0.1:${h.port} not ready: ${why}\n${stderr ? `spawn error: ${stderr}` : ''}\n--- ${logFile} (tail) ---\n${tail(logFile)}`);
  };

  // 1) port accepts TCP
  for (;;) {
    if (exited) fail(`sshd exited early (code ${child.exitCode}, signal ${child.signalCode})`);
    if (await tcpConnects(h.port)) break;
    if (Date.now() > deadline) fail('port does not accept TCP connections within 10 s');
    await sleep(10);
  }
  // 2) admin can log in with ssh2
  let lastErr: unknown;
  for (;;) {
    if (exited) fail(`sshd exited (code ${child.exitCode}, signal ${child.signalCode})`);
    try {
      const c = await sshConnect({ ...adminConnectConfig(h), readyTimeout: Math.max(500, deadline - Date.now()) });
      c.end();
      return;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) fail(`ssh2 login as ${h.adminUser} failed: ${String(lastErr)}`);
    await sleep(25);
  }
}

function isPortInUse(logFile: string): boolean {
  return /Address already in use|Cannot bind any address/i.test(tail(logFile, 50));
}

export async function startSshd(opts: StartSshdOptions = {}): Promise<SshTestHost> {
  if (process.getuid?.() !== 0) throw new Error('startSshd() needs root (it creates OS users and writes /etc/sudoers.d)');
  if (!existsSync(SSHD)) throw new Error(`${SSHD} missing: install openssh-server (apt-get install openssh-server)`);
  if (!existsSync('/usr/bin/sudo')) throw new Error('sudo missing: install sudo (apt-get install sudo)');
  installSafetyNet();

  const dir = await mkdtemp(path.join(os.tmpdir(), 'hostflow-sshd-'));
  const st: HostState = { dir, daemon: undefined, users: [], sudoersFiles: [] };
  liveHosts.add(st);

  let stopped = false;
  let port = 0; // mirrors h.port (h is built later; stop() may run from the error path before that)
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (port) dropExecConns(port);
    await stopDaemon(st);
    await deleteUsers(st);
    for (const f of st.sudoersFiles) await rm(f, { force: true });
    st.sudoersFiles = [];
    await rm(dir, { recursive: true, force: true });
    liveHosts.delete(st);
  };

  try {
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation dir
    await mkdir('/etc/sudoers.d', { recursive: true, mode: 0o755 });

    const adminKeyFile = path.join(dir, 'admin_key');
    const [hostKey] = await Promise.all([
      generateHostKey(dir),
      runOk(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', 'hostflow-test-admin', '-f', adminKeyFile]),
    ]);
    const adminPrivateKey = await readFile(adminKeyFile, 'utf8');
    const adminPublicKey = (await readFile(`${adminKeyFile}.pub`, 'utf8')).trim();

    let adminUser = randomName('hfadm');
    while ((await getUid(adminUser)) !== undefined) adminUser = randomName('hfadm');
    const adminPassword = randomBytes(18).toString('base64url');
    await createUser(st, { name: adminUser, password: adminPassword, sudo: true, authorizedKeys: [adminPublicKey] });
    for (const u of opts.users ?? []) await createUser(st, u);

    const configFile = path.join(dir, 'sshd_config');
    const logFile = path.join(dir, 'sshd.log');
    const hostKeyFile = path.join(dir, 'ssh_host_ed25519_key');
    const writeConfig = async (port: number) => {
      const cfg = [
        `ListenAddress 127.0.0.1`,
        `Port ${port}`,
        `HostKey ${hostKeyFile}`,
        `PidFile ${path.join(dir, 'sshd.pid')}`,
        `UsePAM no`,
        `PasswordAuthentication yes`,
        `KbdInteractiveAuthentication no`,
        `PubkeyAuthentication yes`,
        `PermitRootLogin no`,
        `MaxStartups 200:30:400`,
        `MaxSessions 200`,
        `StrictModes no`,
        `LogLevel ${opts.logLevel ?? 'ERROR'}`,
        `UseDNS no`,
        `AuthorizedKeysFile .ssh/authorized_keys`,
        `Subsystem sftp internal-sftp`,
        opts.extraConfig ?? '',
        '',
      ].join('\n');
      await writeFile(configFile, cfg, { mode: 0o600 });
      const t = await run(SSHD, ['-t', '-f', configFile]);
      if (t.code !== 0) throw new Error(`sshd -t rejected ${configFile}:\n${t.stderr.trim()}\n--- config ---\n${cfg}`);
    };

    const h: SshTestHost = {
      host: '127.0.0.1',
      port: 0,
      adminUser,
      adminPrivateKey,
      adminPublicKey,
      adminPassword,
      hostKeyFingerprintSha256: hostKey.fingerprint,
      hostPublicKey: hostKey.publicKey,
      dir,
      stop,
      logTail: (lines = 30) => tail(logFile, lines),
      pause: async () => {
        if (stopped) throw new Error('pause() after stop()');
        dropExecConns(h.port);
        await stopDaemon(st);
      },
      resume: async () => {
        if (stopped) throw new Error('resume() after stop()');
        for (let attempt = 0; ; attempt++) {
          try {
            await launchDaemon(st, h, configFile, logFile);
            return;
          } catch (err) {
            await stopDaemon(st);
            if (attempt >= 20 || !isPortInUse(logFile)) throw err;
            await sleep(50);
          }
        }
      },
      regenerateHostKey: async () => {
        if (stopped) throw new Error('regenerateHostKey() after stop()');
        dropExecConns(h.port);
        await stopDaemon(st);
        const k = await generateHostKey(dir);
        h.hostKeyFingerprintSha256 = k.fingerprint;
        h.hostPublicKey = k.publicKey;
        // Same port: the old listener is gone (sshd sets SO_REUSEADDR). Retry briefly in case
        // the kernel has not released it yet.
        for (let attempt = 0; ; attempt++) {
          try {
            await launchDaemon(st, h, configFile, logFile);
            return;
          } catch (err) {
            await stopDaemon(st);
            if (attempt >= 20 || !isPortInUse(logFile)) throw err;
            await sleep(50);
          }
        }
      },
    };

    // Free-port race with parallel test files: retry with a new port when bind fails.
    for (let attempt = 0; ; attempt++) {
      h.port = port = await freePort();
      await writeConfig(h.port);
      try {
        await launchDaemon(st, h, configFile, logFile);
        break;
      } catch (err) {
        await stopDaemon(st);
        if (attempt >= 4 || !isPortInUse(logFile)) throw err;
      }
    }
    return h;
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}
