/**
 * WinRM with NTLM (our ./ntlm.ts) and message encryption against pyspnego's acceptor in front of the
 * WS-Man stand-in (test/helpers/wsman-auth-proxy.py): the independent peer decides whether our
 * NEGOTIATE/AUTHENTICATE, MIC, channel binding, sealing and sequence numbers are right.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WinRmExecutor } from '../../activities/winrm/winrm-executor.js';
import { WsManClient, WsManError } from '../../activities/winrm/wsman-client.js';
import { startTcpTap } from '../helpers/tcp-tap.js';
import { RemoteError } from '../../activities/remote/executor.js';
import { startWsManHost, type WsManHost } from '../helpers/wsman-host.js';

const exec = new WinRmExecutor({ em: undefined as never, vault: undefined as never, connectTimeoutMs: 5000 });
const remoteError = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return err as RemoteError;
  }
  throw new Error('expected a failure');
};

describe('NTLM over HTTP with message encryption (pyspnego acceptor)', () => {
  let ws: WsManHost;
  beforeAll(async () => {
    ws = await startWsManHost({ auth: 'negotiate' });
    ws.addDomainUser('CORP\\alice', 'Domain-Pw-1!');
    ws.addDomainUser('bob@corp.example', 'Upn-Pw-1!');
  }, 60_000);
  afterAll(async () => ws?.stop());

  it('runs a command as the local administrator; every body on the wire is multipart/encrypted', async () => {
    const r = await exec.verifyLogin(
      { address: '127.0.0.1', winrmPort: ws.port, winrmHttps: false, winrmAuth: 'ntlm', username: ws.adminUser, password: ws.adminPassword },
      "Write-Output 'über sealed'",
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toBe('über sealed');
    expect(ws.principals.at(-1)).toBe(ws.adminUser);
  });

  it('accepts domain accounts (DOMAIN\\user and user@realm)', async () => {
    const r = await exec.verifyLogin(
      { address: '127.0.0.1', winrmPort: ws.port, winrmHttps: false, winrmAuth: 'negotiate', username: 'CORP\\alice', password: 'Domain-Pw-1!' },
      "Write-Output 'as alice'",
    );
    expect(r.stdout.trim()).toBe('as alice');
    expect(ws.principals.at(-1)).toBe('CORP\\alice');
    const upn = await exec.verifyLogin(
      { address: '127.0.0.1', winrmPort: ws.port, winrmHttps: false, winrmAuth: 'ntlm', username: 'bob@corp.example', password: 'Upn-Pw-1!' },
      "Write-Output 'as bob'",
    );
    expect(upn.stdout.trim()).toBe('as bob');
    expect(ws.principals.at(-1)).toBe('bob@corp.example');
  });

  it('a wrong password is refused by the acceptor (AuthenticationFailed)', async () => {
    const err = await remoteError(
      exec.verifyLogin({ address: '127.0.0.1', winrmPort: ws.port, winrmHttps: false, winrmAuth: 'ntlm', username: ws.adminUser, password: 'wrong' }),
    );
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.type).toBe('AuthenticationFailed');
  });

  it('Basic over plain HTTP is refused before anything is sent (InsecureTransport), and refused by the host too', async () => {
    const err = await remoteError(
      exec.verifyLogin({ address: '127.0.0.1', winrmPort: ws.port, winrmHttps: false, winrmAuth: 'basic', username: ws.adminUser, password: ws.adminPassword }),
    );
    expect(err.type).toBe('InsecureTransport');
    const allowed = await remoteError(
      exec.verifyLogin({ address: '127.0.0.1', winrmPort: ws.port, winrmHttps: false, winrmAuth: 'basic', winrmAllowUnencryptedBasic: true, username: ws.adminUser, password: ws.adminPassword }),
    );
    // This listener has Basic off (Windows' default): 401.
    expect(allowed.type).toBe('AuthenticationFailed');
  });

  it('many messages on one session keep the sequence numbers in step (shell, command, receive, delete)', async () => {
    const c = new WsManClient({ host: '127.0.0.1', port: ws.port, https: false, username: ws.adminUser, password: ws.adminPassword, auth: 'ntlm', connectTimeoutMs: 5000 });
    try {
      for (let i = 0; i < 5; i++) {
        const shell = await c.createShell();
        await c.deleteShell(shell);
      }
    } finally {
      c.close();
    }
  });

  it('on the wire: only the handshake is clear; SOAP bodies and answers are sealed (no envelope, no script text)', async () => {
    const tap = await startTcpTap(ws.port);
    const c = new WsManClient({ host: '127.0.0.1', port: tap.port, https: false, username: ws.adminUser, password: ws.adminPassword, auth: 'ntlm', connectTimeoutMs: 5000 });
    try {
      const shell = await c.createShell();
      await c.command(shell, 'powershell.exe', ['-NoProfile', '-EncodedCommand', Buffer.from("Write-Output 'secret-marker'", 'utf16le').toString('base64')], { skipCmdShell: true });
      await c.deleteShell(shell);
    } finally {
      c.close();
      await tap.close();
    }
    const sent = Buffer.concat(tap.toServer).toString('latin1');
    const got = Buffer.concat(tap.toClient).toString('latin1');
    expect(sent).toContain('Authorization: Negotiate TlRMTVNTUAAB'); // NEGOTIATE, then AUTHENTICATE
    expect(sent).toContain('Content-Type: multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted"');
    expect(got).toContain('multipart/encrypted');
    for (const wire of [sent, got]) {
      expect(wire).not.toMatch(/Envelope|ShellId|soap-envelope/);
    }
    expect(sent).not.toContain(Buffer.from("Write-Output 'secret-marker'", 'utf16le').toString('base64'));
  });

  it('a tampered encrypted body is refused by the acceptor (HTTP 400), and the client does not take it for an answer', async () => {
    const tap = await startTcpTap(ws.port);
    const c = new WsManClient({ host: '127.0.0.1', port: tap.port, https: false, username: ws.adminUser, password: ws.adminPassword, auth: 'ntlm', connectTimeoutMs: 5000 });
    try {
      const shell = await c.createShell();
      const shellsBefore = ws.openShells().length;
      tap.tamperNext();
      const err = await c.createShell().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WsManError);
      expect((err as WsManError).info.statusCode).toBe(400);
      expect(ws.openShells().length).toBe(shellsBefore); // nothing reached the WS-Man service
      // The client dropped that connection; the next message authenticates anew and works.
      await c.deleteShell(shell);
    } finally {
      c.close();
      await tap.close();
    }
  });

  it('a replayed encrypted request (same sequence number) is refused (HTTP 400)', async () => {
    const tap = await startTcpTap(ws.port);
    const c = new WsManClient({ host: '127.0.0.1', port: tap.port, https: false, username: ws.adminUser, password: ws.adminPassword, auth: 'ntlm', connectTimeoutMs: 5000 });
    try {
      const shell = await c.createShell();
      const recorded = tap.toServer.map((b) => b.toString('latin1')).join('');
      // the last complete encrypted request on this connection: the Create shell message
      const start = recorded.lastIndexOf('POST /wsman');
      const request = Buffer.from(recorded.slice(start), 'latin1');
      expect(request.toString('latin1')).toContain('multipart/encrypted');
      const shells = ws.openShells().length;
      const answer = await tap.replay(request);
      expect(answer.toString('latin1')).toMatch(/^HTTP\/1\.1 400/);
      expect(ws.openShells().length).toBe(shells);
      await c.deleteShell(shell).catch(() => undefined);
    } finally {
      c.close();
      await tap.close();
    }
  });
});

describe('NTLM over HTTPS (TLS carries the encryption; channel binding checked by the acceptor)', () => {
  let ws: WsManHost;
  beforeAll(async () => {
    ws = await startWsManHost({ auth: 'negotiate', https: true });
  }, 60_000);
  afterAll(async () => ws?.stop());

  it('authenticates with NTLM + channel binding and runs a command; bodies are plain SOAP inside TLS', async () => {
    const r = await exec.verifyLogin(
      { address: '127.0.0.1', winrmPort: ws.port, winrmHttps: true, winrmAuth: 'ntlm', username: ws.adminUser, password: ws.adminPassword },
      "Write-Output 'over tls'",
    );
    expect(r.stdout.trim()).toBe('over tls');
  });

  it('a wrong channel binding (other certificate) is refused', async () => {
    const c = new WsManClient({ host: '127.0.0.1', port: ws.port, https: true, username: ws.adminUser, password: ws.adminPassword, auth: 'ntlm', connectTimeoutMs: 5000 });
    // Simulate a TLS-terminating man in the middle: the binding is computed over a different certificate.
    (c as unknown as { channels: unknown[] }).channels.length = 0;
    const orig = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(c), 'handshake')!.value as (...a: unknown[]) => Promise<void>;
    (c as unknown as { handshake: typeof orig }).handshake = async function (this: unknown, ...args: unknown[]) {
      const [ch, opts] = args as [{ cert?: { raw: Buffer } }, unknown];
      Object.defineProperty(ch, 'cert', { get: () => ({ raw: Buffer.from('another certificate') }), set: () => undefined, configurable: true });
      return orig.call(this, ch, opts);
    };
    try {
      const err = await c.createShell().then(
        () => null,
        (e: unknown) => e,
      );
      expect((err as WsManError).kind).toBe('auth');
    } finally {
      c.close();
    }
  });
});
