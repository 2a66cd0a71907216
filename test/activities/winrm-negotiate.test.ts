/**
 * WinRM with NTLM (our ./ntlm.ts) and message encryption against pyspnego's acceptor in front of the
 * WS-Man stand-in (test/helpers/wsman-auth-proxy.py): the independent peer decides whether our
 * NEGOTIATE/AUTHENTICATE, MIC, channel binding, sealing and sequence numbers are right.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WinRmExecutor } from '../../activities/winrm/winrm-executor.js';
import { WsManClient, WsManError } from '../../activities/winrm/wsman-client.js';
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

  it('accepts a domain account (DOMAIN\\user)', async () => {
    const r = await exec.verifyLogin(
      { address: '127.0.0.1', winrmPort: ws.port, winrmHttps: false, winrmAuth: 'negotiate', username: 'CORP\\alice', password: 'Domain-Pw-1!' },
      "Write-Output 'as alice'",
    );
    expect(r.stdout.trim()).toBe('as alice');
    expect(ws.principals.at(-1)).toBe('CORP\\alice');
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
});
