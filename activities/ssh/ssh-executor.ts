import { createHash } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { Client, type ClientChannel } from 'ssh2';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { HostSchema } from '../../db/entities/index.js';
import type { Vault } from '../../db/vault.js';
import type { Logger } from '../../config/logger.js';
import { RemoteError, type ExecOptions, type ExecResult, type RemoteExecutor } from '../remote/executor.js';
import { pinHostKey, resolveHostTarget, type HostTarget } from '../remote/host-targets.js';
import { noteActivityHostOs } from '../../config/metrics.js';
import { keepAlive } from '../remote/activity-keepalive.js';

/** OpenSSH-style fingerprint of a raw public key blob: `SHA256:<base64 without padding>`. */
export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

interface PooledConnection {
  client: Client;
  /** The host's OS (for the per-OS activity series; a pooled connection skips resolveHostTarget). */
  os?: HostTarget['os'];
  fingerprint: string;
  idleTimer?: NodeJS.Timeout;
  active: number;
}

export interface SshExecutorDeps {
  em: SqlEntityManager;
  vault: Vault;
  logger?: Logger;
  connectTimeoutMs?: number;
  /** Pooled connections close after this long without use. */
  idleMs?: number;
}

/**
 * RemoteExecutor over SSH (ssh2): one pooled connection per host, a channel per command,
 * Nagle off, host key pinned on first contact and enforced afterwards.
 */
export class SshExecutor implements RemoteExecutor {
  private readonly pool = new Map<string, Promise<PooledConnection>>();
  private readonly connectTimeoutMs: number;
  private readonly idleMs: number;

  constructor(private readonly deps: SshExecutorDeps) {
    this.connectTimeoutMs = deps.connectTimeoutMs ?? 10_000;
    this.idleMs = deps.idleMs ?? 60_000;
  }

  async exec(hostId: string, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const conn = await this.acquire(hostId);
    if (conn.os) noteActivityHostOs(conn.os);
    conn.active++;
    if (conn.idleTimer) clearTimeout(conn.idleTimer);
    try {
      return await runCommand(conn.client, command, opts);
    } finally {
      conn.active--;
      if (conn.active === 0) {
        // Closes this connection only: by then the pool may hold a newer one for the host.
        conn.idleTimer = setTimeout(() => this.closeIdle(hostId, conn), this.idleMs);
        conn.idleTimer.unref();
      }
    }
  }

  /** Opens a connection with explicit settings (no DB): used to verify a freshly created login. */
  /**
   * Logs in as someone other than the management user (a new account, with its own credential) to
   * prove the login works. Only against a pinned host key: with none pinned yet, any key would be
   * accepted and a password sent to whoever answers, so this refuses (HostKeyNotPinned) instead.
   * `hostId` lets it read a pin made since the caller loaded the host.
   */
  async verifyLogin(target: Omit<HostTarget, 'hostId' | 'os' | 'winrmPort' | 'winrmHttps'> & { hostId?: string }, command = 'true'): Promise<ExecResult> {
    let pinned = target.pinnedFingerprint ?? null;
    if (!pinned && target.hostId) pinned = (await this.deps.em.fork().findOne(HostSchema, { id: target.hostId }, { fields: ['hostKeyFingerprint'] }))?.hostKeyFingerprint ?? null;
    if (!pinned) throw new RemoteError('HostKeyNotPinned', `host key of ${target.address}:${target.port} is not pinned yet: connect with the management login first (onboarding pins it)`);
    const { client } = await this.open({ ...target, pinnedFingerprint: pinned, hostId: target.hostId ?? '(verify)', os: 'linux', winrmPort: null, winrmHttps: false }, false);
    try {
      return await runCommand(client, command, { timeoutMs: this.connectTimeoutMs });
    } finally {
      client.end();
    }
  }

  evict(hostId: string): void {
    const p = this.pool.get(hostId);
    this.pool.delete(hostId);
    p?.then((c) => c.client.end()).catch(() => undefined);
  }

  private closeIdle(hostId: string, conn: PooledConnection): void {
    if (conn.active > 0) return;
    const pooled = this.pool.get(hostId);
    if (!pooled) {
      conn.client.end();
      return;
    }
    void pooled.then(
      (current) => {
        if (current === conn && conn.active === 0) {
          if (this.pool.get(hostId) === pooled) this.pool.delete(hostId);
          conn.client.end();
        } else if (current !== conn) {
          conn.client.end();
        }
      },
      () => undefined,
    );
  }

  async close(): Promise<void> {
    for (const id of [...this.pool.keys()]) this.evict(id);
  }

  private acquire(hostId: string): Promise<PooledConnection> {
    let p = this.pool.get(hostId);
    if (!p) {
      p = (async () => {
        const target = await resolveHostTarget(this.deps.em, this.deps.vault, hostId);
        return Object.assign(await this.open(target, true), { os: target.os });
      })();
      this.pool.set(hostId, p);
      p.then(
        (c) => {
          const drop = () => {
            if (this.pool.get(hostId) === p) this.pool.delete(hostId);
          };
          c.client.once('close', drop);
          c.client.once('error', drop);
        },
        () => {
          if (this.pool.get(hostId) === p) this.pool.delete(hostId);
        },
      );
    }
    return p;
  }

  private open(target: HostTarget, pin: boolean): Promise<PooledConnection> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      let fingerprint = '';
      let keyMismatch: string | null = null;
      let settled = false;
      const fail = (err: RemoteError) => {
        if (settled) return;
        settled = true;
        client.end();
        reject(err);
      };
      const sock: Socket = netConnect({ host: target.address, port: target.port });
      sock.setNoDelay(true);
      sock.once('error', (err: NodeJS.ErrnoException) => {
        fail(new RemoteError('HostUnreachable', `cannot reach ${target.address}:${target.port}: ${err.code ?? err.message}`));
      });
      client.once('ready', () => {
        if (settled) return;
        settled = true;
        resolve({ client, fingerprint, active: 0 });
      });
      client.on('error', (err: Error & { level?: string }) => {
        if (keyMismatch) {
          fail(new RemoteError('HostKeyMismatch', keyMismatch));
        } else if (err.level === 'client-authentication') {
          fail(new RemoteError('AuthenticationFailed', `authentication failed for ${target.username}@${target.address}:${target.port}`));
        } else if (/timed out/i.test(err.message)) {
          fail(new RemoteError('ConnectTimeout', `timed out connecting to ${target.address}:${target.port}`));
        } else {
          fail(new RemoteError('HostUnreachable', `SSH to ${target.address}:${target.port} failed: ${err.message}`));
        }
      });
      client.connect({
        sock,
        username: target.username,
        password: target.password,
        privateKey: target.privateKey,
        readyTimeout: this.connectTimeoutMs,
        keepaliveInterval: 15_000,
        keepaliveCountMax: 3,
        tryKeyboard: false,
        hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
          fingerprint = sshFingerprint(key);
          const expected = target.pinnedFingerprint;
          if (expected) {
            if (expected !== fingerprint) {
              keyMismatch = `host key of ${target.address}:${target.port} changed: pinned ${expected}, presented ${fingerprint}`;
              verify(false);
            } else verify(true);
            return;
          }
          if (!pin) return verify(true);
          pinHostKey(this.deps.em, target.hostId, fingerprint).then(
            (pinned) => {
              if (pinned !== fingerprint) {
                keyMismatch = `host key of ${target.address}:${target.port} changed: pinned ${pinned}, presented ${fingerprint}`;
                verify(false);
              } else {
                this.deps.logger?.info({ hostId: target.hostId, fingerprint }, 'pinned SSH host key on first contact');
                verify(true);
              }
            },
            () => verify(false),
          );
        },
      } as Parameters<Client['connect']>[0]);
    });
  }
}

/** First stdout line of every command: the pid of the login shell sshd started (a session and process-group leader). */
const PGID_MARK = 'HOSTFLOW_PGID:';

/**
 * Prefixes a command so it reports its process group first. sshd runs each exec request as
 * `$SHELL -c <command>` in a new session (setsid), so `$$` is the group every child belongs to
 * (sudo keeps its own pty session only for the command it runs, and relays signals to it).
 */
export function withPgidReport(command: string): string {
  return `printf '${PGID_MARK}%s\\n' "$$"; ${command}`;
}

/**
 * The script that stops a command's process group: TERM, up to 2 s for it to go, then KILL. As
 * root through sudo when the login may (children run under sudo), else as the login user.
 */
export function killProcessGroupScript(pgid: number): string {
  if (!Number.isInteger(pgid) || pgid <= 1) throw new RangeError(`refusing to kill process group ${pgid}`);
  return [
    `P=${pgid}`,
    `pg=$(ps -o pgid= -p "$P" 2>/dev/null | tr -d ' '); [ -n "$pg" ] && [ "$pg" -gt 1 ] 2>/dev/null || pg=$P`,
    'k() { sudo -n kill "$@" 2>/dev/null || kill "$@" 2>/dev/null; }',
    'k -TERM -- "-$pg"',
    'i=0; while [ $i -lt 20 ] && k -0 -- "-$pg"; do sleep 0.1; i=$((i+1)); done',
    'k -KILL -- "-$pg"',
    'true',
  ].join('\n');
}

/** Runs the kill script on a fresh channel of the same connection (bounded; best effort). */
function killRemoteGroup(client: Client, pgid: number): Promise<void> {
  return new Promise((resolve) => {
    const giveUp = setTimeout(resolve, 10_000);
    try {
      client.exec(killProcessGroupScript(pgid), (err: Error | undefined, stream: ClientChannel) => {
        if (err) {
          clearTimeout(giveUp);
          return resolve();
        }
        stream.on('data', () => undefined);
        stream.stderr.on('data', () => undefined);
        stream.on('close', () => {
          clearTimeout(giveUp);
          resolve();
        });
        stream.end();
      });
    } catch {
      clearTimeout(giveUp);
      resolve();
    }
  });
}

function runCommand(client: Client, command: string, opts: ExecOptions): Promise<ExecResult> {
  const started = performance.now();
  const live = keepAlive(opts.signal);
  const run = new Promise<ExecResult>((resolve, reject) => {
    if (live.signal?.aborted) return reject(new RemoteError('CommandTimeout', 'command cancelled before it started'));
    client.exec(withPgidReport(command), (err: Error | undefined, stream: ClientChannel) => {
      if (err) return reject(new RemoteError('HostUnreachable', `cannot open a channel: ${err.message}`));
      const out: Buffer[] = [];
      const errOut: Buffer[] = [];
      let timer: NodeJS.Timeout | undefined;
      let stopped: 'timeout' | 'cancel' | null = null;
      let pgid: number | null = null;
      let head: Buffer | null = Buffer.alloc(0);
      let killed: Promise<void> = Promise.resolve();
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        reject(e);
      };
      const stopError = (): Error =>
        stopped === 'cancel' && live.cancellation()
          ? (live.cancellation() as Error)
          : stopped === 'timeout'
          ? new RemoteError('CommandTimeout', `command did not finish within ${opts.timeoutMs} ms`)
          : new RemoteError('CommandTimeout', 'command cancelled (activity cancelled or timed out); its process group was stopped');
      const abort = (why: 'timeout' | 'cancel') => {
        if (stopped) return;
        stopped = why;
        // The channel alone does not stop a command without a pty: kill its process group first.
        killed = pgid ? killRemoteGroup(client, pgid) : Promise.resolve();
        void killed.then(() => {
          try {
            stream.signal('KILL');
            stream.close();
          } catch {
            // connection already gone
          }
        });
        // If the connection is dead the channel never closes: fail anyway once the kill gave up.
        void killed.then(() => setTimeout(() => fail(stopError()), 5_000).unref());
      };
      if (opts.timeoutMs) timer = setTimeout(() => abort('timeout'), opts.timeoutMs);
      const onAbort = () => abort('cancel');
      live.signal?.addEventListener('abort', onAbort, { once: true });
      const onStdout = (d: Buffer) => {
        out.push(d);
        opts.onOutput?.({ stream: 'stdout', data: d.toString('utf8') });
      };
      stream.on('data', (d: Buffer) => {
        if (head === null) return onStdout(d);
        head = Buffer.concat([head, d]);
        const nl = head.indexOf(0x0a);
        if (nl < 0 && head.length < 256) return;
        const first = head.subarray(0, nl < 0 ? head.length : nl).toString('utf8');
        const rest = nl < 0 ? Buffer.alloc(0) : head.subarray(nl + 1);
        head = null;
        if (first.startsWith(PGID_MARK)) {
          const n = Number(first.slice(PGID_MARK.length));
          if (Number.isInteger(n) && n > 1) pgid = n;
          if (stopped && pgid) killed = killRemoteGroup(client, pgid);
          if (rest.length) onStdout(rest);
        } else {
          onStdout(Buffer.concat([Buffer.from(first + (nl < 0 ? '' : '\n'), 'utf8'), rest]));
        }
      });
      stream.stderr.on('data', (d: Buffer) => {
        errOut.push(d);
        opts.onOutput?.({ stream: 'stderr', data: d.toString('utf8') });
      });
      let exitCode: number | null = null;
      stream.on('exit', (code: number | null) => {
        exitCode = code;
      });
      stream.on('close', () => {
        if (timer) clearTimeout(timer);
        live.signal?.removeEventListener('abort', onAbort);
        if (head !== null && head.length) {
          const h = head;
          head = null;
          const text = h.toString('utf8');
          if (!text.startsWith(PGID_MARK)) onStdout(h);
        }
        if (stopped) {
          // Settle only once the process group is gone, so a retry never overlaps this command.
          void killed.then(() => fail(stopError()));
          return;
        }
        settled = true;
        resolve({
          exitCode: exitCode ?? -1,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(errOut).toString('utf8'),
          durationMs: Math.round(performance.now() - started),
        });
      });
      if (opts.stdin !== undefined) stream.end(opts.stdin);
      else stream.end();
    });
  });
  return run.finally(() => live.stop());
}
