/**
 * WinRM with Kerberos (the `kerberos` GSSAPI binding: init_sec_context, wrap, unwrap) and message
 * encryption, against a real MIT KDC on loopback and pyspnego/python-gssapi as the acceptor in
 * front of the WS-Man stand-in.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WinRmExecutor, resolveWinRmAuth } from '../../activities/winrm/winrm-executor.js';
import { RemoteError } from '../../activities/remote/executor.js';
import { startKdc, type Kdc } from '../helpers/kdc.js';
import { startWsManHost, type WsManHost } from '../helpers/wsman-host.js';
import { startTcpTap } from '../helpers/tcp-tap.js';

const exec = new WinRmExecutor({ em: undefined as never, vault: undefined as never, connectTimeoutMs: 5000 });

describe('Kerberos over HTTP with message encryption (MIT KDC + pyspnego acceptor)', () => {
  let kdc: Kdc;
  let ws: WsManHost;
  let principal: string;
  const password = `Krb-${Math.random().toString(36).slice(2)}-1!`;
  beforeAll(async () => {
    kdc = await startKdc();
    process.env.KRB5_CONFIG = kdc.krb5Config;
    principal = await kdc.addUser('winadmin', password);
    const keytab = await kdc.addService('HTTP/localhost');
    ws = await startWsManHost({ auth: 'negotiate', kerberos: { krb5Config: kdc.krb5Config, keytab }, spnHost: 'localhost' });
    ws.addDomainUser(principal, password);
  }, 90_000);
  afterAll(async () => {
    await ws?.stop();
    await kdc?.stop();
  });

  it('negotiate picks Kerberos for user@REALM when configured, NTLM otherwise', () => {
    expect(resolveWinRmAuth({ winrmAuth: 'negotiate', username: principal })).toBe('kerberos');
    expect(resolveWinRmAuth({ winrmAuth: 'negotiate', username: 'Administrator' })).toBe('ntlm');
  });

  it('authenticates with a ticket from the KDC and runs a command; the bodies are Kerberos-sealed', async () => {
    const tap = await startTcpTap(ws.port);
    try {
      const r = await exec.verifyLogin(
        { address: 'localhost', winrmPort: tap.port, winrmHttps: false, winrmAuth: 'negotiate', username: principal, password },
        "Write-Output 'über kerberos'",
      );
      expect(r.exitCode).toBe(0);
      expect(r.stdout.trim()).toBe('über kerberos');
    } finally {
      await tap.close();
    }
    expect(ws.principals.at(-1)).toBe(principal);
    const sent = Buffer.concat(tap.toServer).toString('latin1');
    expect(sent).toContain('protocol="application/HTTP-Kerberos-session-encrypted"');
    expect(sent).not.toMatch(/Envelope|ShellId/);
    expect(Buffer.concat(tap.toClient).toString('latin1')).not.toMatch(/Envelope|ShellId/);
  });

  it('a wrong password fails at the KDC (AuthenticationFailed), without the password in the message', async () => {
    const err = await exec
      .verifyLogin({ address: 'localhost', winrmPort: ws.port, winrmHttps: false, winrmAuth: 'kerberos', username: principal, password: 'not-it' })
      .then(
        () => null,
        (e: unknown) => e as RemoteError,
      );
    expect(err).toBeInstanceOf(RemoteError);
    expect(err!.type).toBe('AuthenticationFailed');
    expect(err!.message).not.toContain('not-it');
  });
});
