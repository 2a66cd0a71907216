/**
 * WinRM with Kerberos (the `kerberos` GSSAPI binding: init_sec_context; mutual authentication)
 * against a real MIT KDC on loopback and pyspnego/python-gssapi as the acceptor in front of the
 * WS-Man stand-in. Over HTTPS (TLS encrypts). Over plain HTTP the binding cannot seal data
 * (KERBEROS_WRAP_LIMIT, measured here): refused, and negotiate falls back to NTLM.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WinRmExecutor, resolveWinRmAuth } from '../../activities/winrm/winrm-executor.js';
import { RemoteError } from '../../activities/remote/executor.js';
import { startKdc, type Kdc } from '../helpers/kdc.js';
import { startWsManHost, type WsManHost } from '../helpers/wsman-host.js';

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
    ws = await startWsManHost({ auth: 'negotiate', https: true, kerberos: { krb5Config: kdc.krb5Config, keytab }, spnHost: 'localhost' });
    ws.addDomainUser(principal, password);
  }, 90_000);
  afterAll(async () => {
    await ws?.stop();
    await kdc?.stop();
  });

  it('negotiate picks Kerberos for user@REALM over HTTPS when configured, NTLM otherwise', () => {
    expect(resolveWinRmAuth({ winrmAuth: 'negotiate', username: principal, winrmHttps: true })).toBe('kerberos');
    expect(resolveWinRmAuth({ winrmAuth: 'negotiate', username: principal, winrmHttps: false })).toBe('ntlm');
    expect(resolveWinRmAuth({ winrmAuth: 'negotiate', username: 'Administrator', winrmHttps: true })).toBe('ntlm');
  });

  it('authenticates with a ticket from the KDC (kinit with the stored password) over HTTPS and runs a command', async () => {
    const r = await exec.verifyLogin(
      { address: 'localhost', winrmPort: ws.port, winrmHttps: true, winrmAuth: 'negotiate', username: principal, password },
      "Write-Output 'über kerberos'",
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toBe('über kerberos');
    expect(ws.principals.at(-1)).toBe(principal);
  });

  it('Kerberos over plain HTTP is refused up front (the binding cannot seal data), nothing sent', async () => {
    const before = ws.principals.length;
    const err = await exec
      .verifyLogin({ address: 'localhost', winrmPort: ws.port, winrmHttps: false, winrmAuth: 'kerberos', username: principal, password })
      .then(
        () => null,
        (e: unknown) => e as RemoteError,
      );
    expect(err?.type).toBe('InsecureTransport');
    expect(err?.message).toMatch(/only wraps SASL/);
    expect(ws.principals.length).toBe(before);
  });

  it('a wrong password fails at the KDC (AuthenticationFailed), without the password in the message', async () => {
    const err = await exec
      .verifyLogin({ address: 'localhost', winrmPort: ws.port, winrmHttps: true, winrmAuth: 'kerberos', username: principal, password: 'not-it' })
      .then(
        () => null,
        (e: unknown) => e as RemoteError,
      );
    expect(err).toBeInstanceOf(RemoteError);
    expect(err!.type).toBe('AuthenticationFailed');
    expect(err!.message).not.toContain('not-it');
  });
});
