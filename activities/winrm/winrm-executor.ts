import { createHash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { PeerCertificate } from 'node:tls';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Vault } from '../../db/vault.js';
import type { Logger } from '../../config/logger.js';
import { RemoteError, type ExecOptions, type ExecResult, type RemoteExecutor } from '../remote/executor.js';
import { pinHostKey, resolveHostTarget, type HostTarget } from '../remote/host-targets.js';
import { noteActivityHostOs } from '../../config/metrics.js';
import { WsManClient, WsManError } from './wsman-client.js';
import { keepAlive } from '../remote/activity-keepalive.js';
import type { WsManAuth } from './wsman-client.js';
import { kerberosConfigured, kinit } from './kerberos-ticket.js';
import { KERBEROS_WRAP_LIMIT, loadKerberos } from './wsman-auth.js';

/**
 * The mechanism for a host: `negotiate` picks Kerberos for a user@REALM account when a Kerberos
 * client is configured (KRB5_CONFIG / HOSTFLOW_KERBEROS and the binding loads), else NTLM.
 * Hosts without a setting (created before it existed, in memory) behave as Basic.
 */
export function resolveWinRmAuth(target: Pick<HostTarget, 'winrmAuth' | 'username' | 'winrmHttps'>): WsManAuth {
  const mode = target.winrmAuth ?? 'basic';
  if (mode === 'negotiate') {
    // Kerberos over plain HTTP would need data sealing the binding cannot do (KERBEROS_WRAP_LIMIT): NTLM then.
    return target.username.includes('@') && target.winrmHttps && kerberosConfigured() && loadKerberos() ? 'kerberos' : 'ntlm';
  }
  return mode;
}

/**
 * `powershell.exe -EncodedCommand` takes base64 of the script's UTF-16LE bytes: no quoting of the
 * script text at all, whatever characters it holds.
 */
export function encodePowerShell(script: string): string {
  return Buffer.from(script, 'utf16le').toString('base64');
}

/** Inverse of encodePowerShell (for logs and tests). */
export function decodePowerShell(encoded: string): string {
  return Buffer.from(encoded, 'base64').toString('utf16le');
}

/** `SHA256:<base64 without padding>` of a certificate's DER bytes (same shape as SSH host key fingerprints). */
export function tlsFingerprint(certDer: Buffer): string {
  return `SHA256:${createHash('sha256').update(certDer).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Statements put in front of every script. Progress records would otherwise arrive on stderr as
 * CLIXML ("Preparing modules for first use.").
 */
export const POWERSHELL_PRELUDE = "$ProgressPreference = 'SilentlyContinue'";

/**
 * With `opts.stdin`, the data goes to the process over the WS-Man Send stream (stdin, End="true"),
 * and this line, put in front of the script, reads it into `$HostflowStdin` (lines joined by "\n",
 * so a trailing newline is dropped). Scripts use `$HostflowStdin` for secrets, e.g.
 * `ConvertTo-SecureString $HostflowStdin -AsPlainText -Force`. (Ansible's WinRM transport feeds its
 * payload the same way: `-EncodedCommand` bootstrap + `$input`.)
 */
export const STDIN_PRELUDE = '$HostflowStdin = [string]::Join("`n", @($input))';

/** CreateProcess limit for the whole command line (WINRS_SKIP_CMD_SHELL: no cmd.exe and its 8191). */
const MAX_COMMAND_LINE = 32_767;
const POWERSHELL_ARGS = ['-NoProfile', '-NonInteractive', '-EncodedCommand'] as const;

/**
 * PowerShell started with -EncodedCommand and redirected streams writes errors to stderr as
 * serialized objects (`#< CLIXML` + <Objs>). Returns the plain text of error/warning records; other
 * stderr is returned as is.
 */
export function decodeClixml(stderr: string): string {
  if (!stderr.startsWith('#< CLIXML')) return stderr;
  const body = stderr.replace(/^#< CLIXML\r?\n?/, '');
  const out: string[] = [];
  // Text outside <Objs> blocks (written by something other than PowerShell's host) is kept as is.
  for (const part of body.split(/(<Objs\b[\s\S]*?<\/Objs>)/)) {
    if (!part.startsWith('<Objs')) {
      out.push(part.replace(/^#< CLIXML\r?\n?/, ''));
      continue;
    }
    for (const m of part.matchAll(/<S S="(\w+)">([\s\S]*?)<\/S>/g)) {
      const kind = m[1]!;
      if (kind !== 'Error' && kind !== 'Warning') continue;
      const s = m[2]!
        .replace(/&lt;/g, '<')
        .replace(/&gt;/g, '>')
        .replace(/&quot;/g, '"')
        .replace(/&apos;/g, "'")
        .replace(/&amp;/g, '&')
        .replace(/_x([0-9A-Fa-f]{4})_/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
      out.push(kind === 'Warning' ? `WARNING: ${s}` : s);
    }
  }
  return out.join('');
}

interface PooledClient {
  target: HostTarget;
  client: WsManClient;
  idleTimer?: NodeJS.Timeout;
  active: number;
}

export interface WinRmExecutorDeps {
  em: SqlEntityManager;
  vault: Vault;
  logger?: Logger;
  /** TCP + TLS connect timeout; also the limit for the host to answer "create shell". */
  connectTimeoutMs?: number;
  /** Pooled HTTP connections (and the decrypted credentials) are dropped after this long unused. */
  idleMs?: number;
  /** Server-side wait per Receive (w:OperationTimeout). Default 20 s. */
  operationTimeoutS?: number;
}

/**
 * RemoteExecutor over WinRM (WS-Management): each exec opens a shell, runs
 * `powershell.exe -NoProfile -NonInteractive -EncodedCommand <base64 UTF-16LE script>`, streams its
 * output until CommandState Done, and deletes the shell. HTTP connections are kept alive per host.
 *
 * - Port: `winrmPort`, else 5986 with HTTPS and 5985 without.
 * - Auth (Host.winrmAuth): negotiate (default: Kerberos for user@REALM over HTTPS when configured,
 *   else NTLMv2), ntlm, kerberos (HTTPS only, see KERBEROS_WRAP_LIMIT), basic. NTLM/Kerberos over HTTP seal every body ([MS-WSMV]
 *   multipart/encrypted), as Windows' default listener requires; over HTTPS TLS carries it (NTLM
 *   adds channel binding). Domain accounts: DOMAIN\user and user@realm. Basic over plain HTTP is
 *   refused (InsecureTransport) unless the host's winrmAllowUnencryptedBasic is set.
 * - HTTPS: WinRM listeners usually carry a self-signed certificate, so the certificate is pinned on
 *   first contact like an SSH host key (Host.hostKeyFingerprint, `SHA256:` of the DER) and enforced
 *   afterwards (HostKeyMismatch), checked before any credentials are sent.
 * - HTTP with Basic (only when allowed per host): credentials and scripts travel unencrypted (the
 *   host must allow it: AllowUnencrypted=true); a warning is logged once per connection pool.
 * - Secrets: the script itself goes in the encoded command line of powershell.exe on the host (a
 *   local administrator can see it, e.g. with process-creation auditing). Secrets therefore go
 *   through `opts.stdin` (WS-Man Send stream, read into `$HostflowStdin`), never into the script.
 */
export class WinRmExecutor implements RemoteExecutor {
  private readonly pool = new Map<string, Promise<PooledClient>>();
  private readonly cleanups = new Set<Promise<void>>();
  private readonly connectTimeoutMs: number;
  private readonly idleMs: number;

  constructor(private readonly deps: WinRmExecutorDeps) {
    this.connectTimeoutMs = deps.connectTimeoutMs ?? 10_000;
    this.idleMs = deps.idleMs ?? 60_000;
  }

  async exec(hostId: string, script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const started = performance.now();
    const deadline = new AbortController();
    let timedOut = false;
    const timer = opts.timeoutMs ? setTimeout(() => ((timedOut = true), deadline.abort()), opts.timeoutMs) : undefined;
    const onAbort = () => deadline.abort();
    // Inside an activity: heartbeats while the command runs; the activity's cancellation aborts it.
    const live = keepAlive(opts.signal);
    if (live.signal?.aborted) deadline.abort();
    live.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const entry = await this.acquire(hostId);
      // A pooled client skips resolveHostTarget: note the OS for the per-OS activity series here too.
      noteActivityHostOs(entry.target.os);
      entry.active++;
      if (entry.idleTimer) clearTimeout(entry.idleTimer);
      try {
        return await this.run(entry, script, opts, deadline.signal, () => timedOut, started, live.cancellation);
      } finally {
        entry.active--;
        if (entry.active === 0) {
          entry.idleTimer = setTimeout(() => this.evict(hostId), this.idleMs);
          entry.idleTimer.unref();
        }
      }
    } finally {
      if (timer) clearTimeout(timer);
      live.signal?.removeEventListener('abort', onAbort);
      live.stop();
    }
  }

  /**
   * Runs a script with explicit settings (no DB, nothing pooled): used to verify that a freshly
   * created account can log in. With HTTPS, `pinnedFingerprint` (if given) must match.
   */
  async verifyLogin(
    target: Pick<HostTarget, 'address' | 'username' | 'password' | 'winrmPort' | 'winrmHttps' | 'winrmAuth' | 'winrmAllowUnencryptedBasic'> & { pinnedFingerprint?: string | null },
    script = 'exit 0',
  ): Promise<ExecResult> {
    const full: HostTarget = { ...target, hostId: '(verify)', os: 'windows', port: 0, pinnedFingerprint: target.pinnedFingerprint ?? null };
    const entry: PooledClient = { target: full, client: await this.createClient(full, false), active: 1 };
    try {
      return await this.run(entry, script, { timeoutMs: this.connectTimeoutMs * 3 }, undefined, () => false, performance.now());
    } finally {
      entry.client.close();
    }
  }

  evict(hostId: string): void {
    const p = this.pool.get(hostId);
    this.pool.delete(hostId);
    p?.then((c) => {
      if (c.idleTimer) clearTimeout(c.idleTimer);
      c.client.close();
    }).catch(() => undefined);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.cleanups]);
    for (const id of [...this.pool.keys()]) this.evict(id);
  }

  private acquire(hostId: string): Promise<PooledClient> {
    let p = this.pool.get(hostId);
    if (!p) {
      p = resolveHostTarget(this.deps.em, this.deps.vault, hostId).then(async (target) => {
        if (target.os !== 'windows') throw new RemoteError('HostNotFound', `host ${hostId} is not a Windows host`);
        if (!target.password) throw new RemoteError('CredentialMissing', `host ${hostId} has no WinRM password`);
        return { target, client: await this.createClient(target, true), active: 0 };
      });
      this.pool.set(hostId, p);
      p.catch(() => {
        if (this.pool.get(hostId) === p) this.pool.delete(hostId);
      });
    }
    return p;
  }

  private async createClient(target: HostTarget, pin: boolean): Promise<WsManClient> {
    const port = target.winrmPort ?? (target.winrmHttps ? 5986 : 5985);
    const auth = resolveWinRmAuth(target);
    if (auth === 'basic') {
      if (/[\\@]/.test(target.username)) {
        throw new RemoteError(
          'AuthenticationFailed',
          `WinRM Basic login as ${target.username}: Basic takes local accounts only; set the host's winrm_auth to negotiate (NTLM or Kerberos) for domain accounts`,
        );
      }
      if (!target.winrmHttps) {
        if (!target.winrmAllowUnencryptedBasic) {
          throw new RemoteError(
            'InsecureTransport',
            `WinRM Basic over plain HTTP to ${target.address}:${port} is refused: credentials and scripts would travel in clear text. Use HTTPS, negotiate (NTLM/Kerberos with message encryption), or set winrm_allow_unencrypted_basic on the host (audited)`,
          );
        }
        this.deps.logger?.warn(
          { hostId: target.hostId, address: target.address, port },
          'WinRM Basic over plain HTTP (allowed for this host): credentials and scripts are sent unencrypted',
        );
      }
    }
    if (auth === 'kerberos') {
      if (!target.winrmHttps) throw new RemoteError('InsecureTransport', `WinRM Kerberos over plain HTTP to ${target.address}:${port}: ${KERBEROS_WRAP_LIMIT}`);
      try {
        await kinit(target.username, target.password ?? '');
      } catch (err) {
        throw new RemoteError('AuthenticationFailed', `Kerberos login as ${target.username} failed: ${(err as Error).message}`);
      }
    }
    return new WsManClient({
      host: target.address,
      port,
      https: target.winrmHttps,
      username: target.username,
      password: target.password ?? '',
      auth,
      spnHost: target.address,
      principal: auth === 'kerberos' ? target.username : undefined,
      connectTimeoutMs: this.connectTimeoutMs,
      operationTimeoutS: this.deps.operationTimeoutS,
      verifyCertificate: (cert) => this.verifyCertificate(target, cert, pin),
    });
  }

  /** Trust on first use for the WinRM HTTPS certificate, enforced on every new connection. */
  private async verifyCertificate(target: HostTarget, cert: PeerCertificate, pin: boolean): Promise<void> {
    if (!cert?.raw) throw new RemoteError('HostKeyMismatch', `${target.address}: no TLS certificate presented`);
    const fingerprint = tlsFingerprint(cert.raw);
    let expected = target.pinnedFingerprint;
    if (!expected) {
      if (!pin) return;
      expected = await pinHostKey(this.deps.em, target.hostId, fingerprint);
      target.pinnedFingerprint = expected;
      if (expected === fingerprint) {
        this.deps.logger?.info({ hostId: target.hostId, fingerprint }, 'pinned WinRM TLS certificate on first contact');
      }
    }
    if (expected !== fingerprint) {
      throw new RemoteError(
        'HostKeyMismatch',
        `TLS certificate of ${target.address} changed: pinned ${expected}, presented ${fingerprint}`,
      );
    }
  }

  private async run(
    entry: PooledClient,
    script: string,
    opts: ExecOptions,
    signal: AbortSignal | undefined,
    isTimeout: () => boolean,
    started: number,
    cancellation: () => unknown = () => undefined,
  ): Promise<ExecResult> {
    const { client, target } = entry;
    const where = `${target.address}:${target.winrmPort ?? (target.winrmHttps ? 5986 : 5985)}`;
    const withStdin = opts.stdin !== undefined;
    const fullScript = [POWERSHELL_PRELUDE, ...(withStdin ? [STDIN_PRELUDE] : []), script].join('\n');
    const encoded = encodePowerShell(fullScript);
    const commandLineLength = 'powershell.exe '.length + POWERSHELL_ARGS.join(' ').length + 1 + encoded.length;
    if (commandLineLength > MAX_COMMAND_LINE) {
      throw new RangeError(`PowerShell script too long for -EncodedCommand (${script.length} characters; about 12000 fit)`);
    }

    let shellId: string | undefined;
    let commandId: string | undefined;
    const out: Buffer[] = [];
    const errOut: Buffer[] = [];
    const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
    try {
      shellId = await client.createShell({ signal, timeoutMs: this.connectTimeoutMs, timeoutKind: 'connect-timeout' });
      commandId = await client.command(shellId, 'powershell.exe', [...POWERSHELL_ARGS, encoded], {
        signal,
        skipCmdShell: true,
        consoleModeStdin: !withStdin,
      });
      if (withStdin) await client.send(shellId, commandId, Buffer.from(opts.stdin!, 'utf8'), true, { signal });
      for (;;) {
        const r = await client.receive(shellId, commandId, { signal });
        for (const c of r.chunks) {
          (c.stream === 'stdout' ? out : errOut).push(c.data);
          if (opts.onOutput) {
            const data = decoders[c.stream].write(c.data);
            if (data) opts.onOutput({ stream: c.stream, data });
          }
        }
        if (r.done) {
          return {
            exitCode: r.exitCode ?? -1,
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: decodeClixml(Buffer.concat(errOut).toString('utf8')),
            durationMs: Math.round(performance.now() - started),
          };
        }
      }
    } catch (err) {
      if (signal?.aborted) {
        // Signal terminate, and wait for it (bounded), so a retry never overlaps this command.
        if (shellId && commandId) {
          await client.terminate(shellId, commandId, { timeoutMs: 5_000 }).catch((e: unknown) => {
            this.deps.logger?.warn({ err: (e as Error).message, host: where }, 'WinRM terminate failed');
          });
        }
        if (!isTimeout() && cancellation()) throw cancellation();
        throw commandId
          ? new RemoteError('CommandTimeout', isTimeout() ? `command did not finish within ${opts.timeoutMs} ms` : 'command aborted', { host: where })
          : new RemoteError('ConnectTimeout', isTimeout() ? `no shell on ${where} within ${opts.timeoutMs} ms` : 'aborted before the command started', { host: where });
      }
      throw toRemoteError(err, where, target.username, commandId !== undefined);
    } finally {
      if (shellId) this.background(client.deleteShell(shellId, { timeoutMs: 10_000 }));
    }
  }

  /** Cleanup requests (terminate, delete shell) run after exec returns; close() waits for them. */
  private background(p: Promise<void>): void {
    const tracked = p.catch((err: unknown) => {
      this.deps.logger?.debug({ err: (err as Error).message }, 'WinRM cleanup request failed');
    });
    this.cleanups.add(tracked);
    void tracked.finally(() => this.cleanups.delete(tracked));
  }
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

/** Classifies WS-Man failures for workflows (see RemoteErrorType). */
export function toRemoteError(err: unknown, where: string, username: string, commandStarted: boolean): unknown {
  if (err instanceof RemoteError) return err;
  if (!(err instanceof WsManError)) return err;
  const details = { host: where, ...err.info };
  switch (err.kind) {
    case 'auth':
      return new RemoteError('AuthenticationFailed', `WinRM authentication failed for ${username}@${where}`, details);
    case 'connect-timeout':
      return new RemoteError('ConnectTimeout', `timed out connecting to ${where}`, details);
    case 'response-timeout':
      return commandStarted
        ? new RemoteError('CommandTimeout', `${where} stopped answering while the command ran: ${err.message}`, details)
        : new RemoteError('ConnectTimeout', `${where} did not answer: ${err.message}`, details);
    case 'network':
      return new RemoteError(
        'HostUnreachable',
        `cannot reach ${where}: ${err.info.code && UNREACHABLE_CODES.has(err.info.code) ? err.info.code : err.message}`,
        details,
      );
    case 'fault':
      if (err.info.faultSubcode === 'AccessDenied') {
        return new RemoteError(
          'AuthenticationFailed',
          `WinRM access denied for ${username}@${where} (the account must be in Administrators or Remote Management Users): ${err.message}`,
          details,
        );
      }
      return new RemoteError('HostUnreachable', `WinRM on ${where} failed: ${err.message}`, details);
    default:
      return new RemoteError('HostUnreachable', `WinRM on ${where} failed: ${err.message}`, details);
  }
}
