/**
 * Connection-bound security contexts for WinRM's `Negotiate` scheme: NTLM (./ntlm.ts, ours) and
 * Kerberos (the `kerberos` binding from mongodb-js: GSSAPI init_sec_context, wrap, unwrap).
 * Each gives the HTTP layer tokens to send and, once complete, wrap/unwrap for message encryption
 * split the way [MS-WSMV] frames it (signature/header part, sealed data part).
 */
import { createRequire } from 'node:module';
import { NtlmClient, NtlmError, type NtlmSession } from './ntlm.js';
import type { EncryptionProtocol } from './wsman-encryption.js';

export interface SecurityContext {
  readonly mechanism: 'ntlm' | 'kerberos';
  readonly protocol: EncryptionProtocol;
  /** Next token to send (first call: `null` input); null when nothing more is to be sent. */
  step(input: Buffer | null): Promise<Buffer | null>;
  readonly complete: boolean;
  wrap(data: Buffer): Promise<{ header: Buffer; sealed: Buffer }>;
  unwrap(header: Buffer, sealed: Buffer): Promise<Buffer>;
}

export class AuthContextError extends Error {
  override name = 'AuthContextError';
}

export function ntlmContext(o: { username: string; password: string; certHash?: () => Buffer | undefined; spnHost?: string }): SecurityContext {
  const client = new NtlmClient({
    username: o.username,
    password: o.password,
    get certHash() {
      return o.certHash?.();
    },
    targetName: o.spnHost ? `HTTP/${o.spnHost}` : undefined,
  });
  let session: NtlmSession | undefined;
  let started = false;
  return {
    mechanism: 'ntlm',
    protocol: 'application/HTTP-SPNEGO-session-encrypted',
    get complete() {
      return !!session;
    },
    async step(input) {
      if (!started) {
        started = true;
        return client.start();
      }
      if (!input) throw new AuthContextError('NTLM: the server sent no CHALLENGE');
      if (session) return null;
      try {
        const out = client.respond(input);
        session = client.session;
        return out;
      } catch (err) {
        throw new AuthContextError(err instanceof NtlmError ? err.message : String(err));
      }
    },
    async wrap(data) {
      if (!session) throw new AuthContextError('NTLM: wrap before the context is complete');
      const { signature, sealed } = session.wrap(data);
      return { header: signature, sealed };
    },
    async unwrap(header, sealed) {
      if (!session) throw new AuthContextError('NTLM: unwrap before the context is complete');
      try {
        return session.unwrap(header, sealed);
      } catch (err) {
        throw new AuthContextError((err as Error).message);
      }
    },
  };
}

interface KerberosClientLike {
  step(challenge: string): Promise<string>;
  wrap(challenge: string, options?: { protect?: boolean }): Promise<string>;
  unwrap(challenge: string): Promise<string>;
  contextComplete: boolean;
}
interface KerberosModule {
  initializeClient(service: string, options: { principal?: string; mechOID?: number; flags?: number }): Promise<KerberosClientLike>;
  GSS_MECH_OID_KRB5: number;
  GSS_C_MUTUAL_FLAG: number;
  GSS_C_SEQUENCE_FLAG: number;
  GSS_C_CONF_FLAG: number;
  GSS_C_INTEG_FLAG: number;
  GSS_C_REPLAY_FLAG: number;
}

let kerberosModule: KerberosModule | null | undefined;
/** The optional native binding; null when it is not installed or did not build. */
export function loadKerberos(): KerberosModule | null {
  if (kerberosModule === undefined) {
    try {
      kerberosModule = createRequire(import.meta.url)('kerberos') as KerberosModule;
    } catch {
      kerberosModule = null;
    }
  }
  return kerberosModule;
}

/**
 * Measured with kerberos 7.0.0: its `wrap()` is SASL-only. kerberos_unix.cc passes `user.c_str()`
 * (never NULL, "" when no user is given) and the C code then replaces the input with a 4-byte SASL
 * security-layer offer, so arbitrary data cannot be sealed. Kerberos is therefore used for
 * authentication (init_sec_context) over HTTPS, where TLS encrypts; message encryption over HTTP
 * stays with NTLM until the binding wraps data as given.
 */
export const KERBEROS_WRAP_LIMIT =
  'The kerberos npm binding (7.0.0) only wraps SASL security-layer tokens, not data, so WinRM message encryption with Kerberos over plain HTTP is not available: use HTTPS with Kerberos, or NTLM over HTTP.';

/** RFC 4121 wrap token: 16-byte header (TOK_ID 05 04, flags, filler, EC, RRC, SND_SEQ). */
const CFX_WRAP = 0x0504;
/** Checksum (HMAC-SHA1-96) length of the AES enctypes, the only ones MIT and Windows use by default. */
const AES_CHECKSUM = 12;

/**
 * Turns MIT's gss_wrap token (RRC 0: header | E(confounder | data | filler | header) | checksum)
 * into Windows' layout: the last EC+16+12 bytes rotated to the front (RRC = EC+28), so that the
 * WinRM "signature" part is header + trailer + confounder and the data part holds only sealed data.
 */
export function toWinRmKerberos(token: Buffer, dataLength: number): { header: Buffer; sealed: Buffer } {
  if (token.length < 16 || token.readUInt16BE(0) !== CFX_WRAP) throw new AuthContextError('Kerberos wrap: not an RFC 4121 CFX token (only AES enctypes are supported)');
  const ec = token.readUInt16BE(4);
  const rrc = ec + 16 + AES_CHECKSUM;
  const body = token.subarray(16);
  if (token.readUInt16BE(6) !== 0 || body.length !== 16 + dataLength + ec + 16 + AES_CHECKSUM) {
    throw new AuthContextError(
      `Kerberos wrap: the token does not hold the ${dataLength} bytes given (${body.length - 44 - ec} sealed). ` + KERBEROS_WRAP_LIMIT,
    );
  }
  const hdr = Buffer.from(token.subarray(0, 16));
  hdr.writeUInt16BE(rrc, 6);
  const rotated = Buffer.concat([body.subarray(body.length - rrc), body.subarray(0, body.length - rrc)]);
  const headerLen = 16 + rrc + 16;
  const whole = Buffer.concat([hdr, rotated]);
  return { header: whole.subarray(0, headerLen), sealed: whole.subarray(headerLen) };
}

export async function kerberosContext(o: { spnHost: string; principal?: string }): Promise<SecurityContext> {
  const k = loadKerberos();
  if (!k) throw new AuthContextError('Kerberos: the `kerberos` npm binding is not available (not installed or not built)');
  let client: KerberosClientLike;
  try {
    client = await k.initializeClient(`HTTP@${o.spnHost}`, {
      principal: o.principal,
      mechOID: k.GSS_MECH_OID_KRB5,
      flags: k.GSS_C_MUTUAL_FLAG | k.GSS_C_SEQUENCE_FLAG | k.GSS_C_CONF_FLAG | k.GSS_C_INTEG_FLAG | k.GSS_C_REPLAY_FLAG,
    });
  } catch (err) {
    throw new AuthContextError(`Kerberos: ${(err as Error).message}`);
  }
  let started = false;
  return {
    mechanism: 'kerberos',
    protocol: 'application/HTTP-Kerberos-session-encrypted',
    get complete() {
      return client.contextComplete;
    },
    async step(input) {
      if (started && !input) return null;
      started = true;
      try {
        const out = await client.step(input ? input.toString('base64') : '');
        return out ? Buffer.from(out, 'base64') : null;
      } catch (err) {
        throw new AuthContextError(`Kerberos: ${(err as Error).message}`);
      }
    },
    async wrap(data) {
      const token = Buffer.from(await client.wrap(data.toString('base64'), { protect: true }), 'base64');
      return toWinRmKerberos(token, data.length);
    },
    async unwrap(header, sealed) {
      try {
        return Buffer.from(await client.unwrap(Buffer.concat([header, sealed]).toString('base64')), 'base64');
      } catch (err) {
        throw new AuthContextError(`Kerberos unwrap: ${(err as Error).message}`);
      }
    },
  };
}

/** The context for an endpoint's auth mode (NTLM or Kerberos). */
export async function createSecurityContext(
  ep: { auth?: string; username: string; password: string; host: string; spnHost?: string; principal?: string },
  certHash: () => Buffer | undefined,
): Promise<SecurityContext> {
  if (ep.auth === 'kerberos') return kerberosContext({ spnHost: ep.spnHost ?? ep.host, principal: ep.principal ?? ep.username });
  return ntlmContext({ username: ep.username, password: ep.password, certHash, spnHost: ep.spnHost ?? ep.host });
}
