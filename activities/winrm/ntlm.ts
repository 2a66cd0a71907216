/**
 * NTLMv2 initiator ([MS-NLMP]): NEGOTIATE → CHALLENGE → AUTHENTICATE, the NTLMv2 response, key
 * exchange (KEY_EXCH: a random exported session key sent RC4-encrypted under the key exchange key),
 * the MIC over all three messages, and session security with extended session security: RC4 sealing
 * with one key-stream per direction, HMAC-MD5 signatures with sequence numbers (§3.4.4.2).
 *
 * Written here because no npm package seals NTLM messages, which WinRM over HTTP needs (Windows'
 * default listener refuses unencrypted bodies). Proven against MS-NLMP §4.2.4's published vectors
 * in test/activities/ntlm.test.ts and, interactively, against pyspnego's acceptor (the stand-in).
 * NTLMv1 and LM are never produced: a CHALLENGE that does not offer extended session security and
 * target info (NTLMv2) is refused.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { md4, rc4, Rc4 } from './legacy-crypto.js';

export const NTLM_FLAGS = {
  UNICODE: 0x0000_0001,
  OEM: 0x0000_0002,
  REQUEST_TARGET: 0x0000_0004,
  SIGN: 0x0000_0010,
  SEAL: 0x0000_0020,
  LM_KEY: 0x0000_0080,
  NTLM: 0x0000_0200,
  ANONYMOUS: 0x0000_0800,
  ALWAYS_SIGN: 0x0000_8000,
  EXTENDED_SESSIONSECURITY: 0x0008_0000,
  IDENTIFY: 0x0010_0000,
  TARGET_INFO: 0x0080_0000,
  VERSION: 0x0200_0000,
  N128: 0x2000_0000,
  KEY_EXCH: 0x4000_0000,
  N56: 0x8000_0000,
} as const;

/** What this client asks for (as Windows' own client does for WinRM with encryption). */
export const CLIENT_FLAGS =
  (NTLM_FLAGS.UNICODE |
    NTLM_FLAGS.REQUEST_TARGET |
    NTLM_FLAGS.SIGN |
    NTLM_FLAGS.SEAL |
    NTLM_FLAGS.NTLM |
    NTLM_FLAGS.ALWAYS_SIGN |
    NTLM_FLAGS.EXTENDED_SESSIONSECURITY |
    NTLM_FLAGS.TARGET_INFO |
    NTLM_FLAGS.VERSION |
    NTLM_FLAGS.N128 |
    NTLM_FLAGS.KEY_EXCH |
    NTLM_FLAGS.N56) >>>
  0;

const SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1');
/** Windows 10 / Server 2016+ build 19041, NTLMSSP revision 15 (sent in VERSION; informational only). */
const CLIENT_VERSION = Buffer.from([10, 0, 0x61, 0x4a, 0, 0, 0, 0x0f]);

export const AV = { EOL: 0, NB_COMPUTER: 1, NB_DOMAIN: 2, DNS_COMPUTER: 3, DNS_DOMAIN: 4, DNS_TREE: 5, FLAGS: 6, TIMESTAMP: 7, SINGLE_HOST: 8, TARGET_NAME: 9, CHANNEL_BINDINGS: 10 } as const;

export class NtlmError extends Error {
  override name = 'NtlmError';
}

const utf16 = (s: string) => Buffer.from(s, 'utf16le');
const hmacMd5 = (key: Uint8Array, ...parts: Uint8Array[]) => {
  const h = createHmac('md5', key);
  for (const p of parts) h.update(p);
  return h.digest();
};
const md5 = (...parts: Uint8Array[]) => {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** NTOWFv1: MD4 of the UTF-16LE password (the "NT hash"). */
export const ntHash = (password: string) => md4(utf16(password));

/** NTOWFv2(Passwd, User, UserDom) = HMAC_MD5(MD4(UNICODE(Passwd)), UNICODE(Uppercase(User) + UserDom)). */
export function ntowfV2(password: string, user: string, domain: string): Buffer {
  return hmacMd5(ntHash(password), utf16(user.toUpperCase() + domain));
}

/** The NTLMv2_CLIENT_CHALLENGE ("temp" of §3.3.2): 0x0101, zeros, time, client challenge, zeros, AV pairs, zeros. */
export function ntlmv2Temp(time: Buffer, clientChallenge: Buffer, avPairs: Buffer): Buffer {
  return Buffer.concat([Buffer.from([1, 1, 0, 0, 0, 0, 0, 0]), time, clientChallenge, Buffer.alloc(4), avPairs, Buffer.alloc(4)]);
}

export interface NtlmV2Results {
  ntProofStr: Buffer;
  ntChallengeResponse: Buffer;
  lmChallengeResponse: Buffer;
  sessionBaseKey: Buffer;
}

/** §3.3.2 ComputeResponse for NTLMv2. */
export function computeNtlmV2(
  responseKey: Buffer,
  serverChallenge: Buffer,
  clientChallenge: Buffer,
  time: Buffer,
  avPairs: Buffer,
): NtlmV2Results {
  const temp = ntlmv2Temp(time, clientChallenge, avPairs);
  const ntProofStr = hmacMd5(responseKey, serverChallenge, temp);
  return {
    ntProofStr,
    ntChallengeResponse: Buffer.concat([ntProofStr, temp]),
    lmChallengeResponse: Buffer.concat([hmacMd5(responseKey, serverChallenge, clientChallenge), clientChallenge]),
    sessionBaseKey: hmacMd5(responseKey, ntProofStr),
  };
}

const MAGIC = {
  clientSign: 'session key to client-to-server signing key magic constant\0',
  serverSign: 'session key to server-to-client signing key magic constant\0',
  clientSeal: 'session key to client-to-server sealing key magic constant\0',
  serverSeal: 'session key to server-to-client sealing key magic constant\0',
};

/** SIGNKEY (§3.4.5.2), extended session security. */
export const signKey = (exportedSessionKey: Buffer, mode: 'client' | 'server') =>
  md5(exportedSessionKey, Buffer.from(mode === 'client' ? MAGIC.clientSign : MAGIC.serverSign, 'latin1'));

/** SEALKEY (§3.4.5.3), extended session security, by the negotiated key strength. */
export function sealKey(exportedSessionKey: Buffer, flags: number, mode: 'client' | 'server'): Buffer {
  const key = flags & NTLM_FLAGS.N128 ? exportedSessionKey : flags & NTLM_FLAGS.N56 ? exportedSessionKey.subarray(0, 7) : exportedSessionKey.subarray(0, 5);
  return md5(key, Buffer.from(mode === 'client' ? MAGIC.clientSeal : MAGIC.serverSeal, 'latin1'));
}

export function parseAvPairs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const id = buf.readUInt16LE(off);
    const len = buf.readUInt16LE(off + 2);
    if (id === AV.EOL) return out;
    if (off + 4 + len > buf.length) throw new NtlmError('CHALLENGE target info: AV pair runs past the end');
    out.set(id, buf.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  throw new NtlmError('CHALLENGE target info: no MsvAvEOL');
}

export function encodeAvPairs(pairs: Array<[number, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [id, value] of pairs) {
    const h = Buffer.alloc(4);
    h.writeUInt16LE(id, 0);
    h.writeUInt16LE(value.length, 2);
    parts.push(h, value);
  }
  parts.push(Buffer.alloc(4));
  return Buffer.concat(parts);
}

export interface ChallengeMessage {
  flags: number;
  serverChallenge: Buffer;
  targetName: Buffer;
  targetInfo: Buffer;
}

export function parseChallenge(msg: Buffer): ChallengeMessage {
  if (msg.length < 48 || !msg.subarray(0, 8).equals(SIGNATURE) || msg.readUInt32LE(8) !== 2) {
    throw new NtlmError('not an NTLM CHALLENGE message');
  }
  const field = (at: number) => {
    const len = msg.readUInt16LE(at);
    const off = msg.readUInt32LE(at + 4);
    if (off + len > msg.length) throw new NtlmError('CHALLENGE field runs past the end of the message');
    return msg.subarray(off, off + len);
  };
  return { targetName: field(12), flags: msg.readUInt32LE(20), serverChallenge: Buffer.from(msg.subarray(24, 32)), targetInfo: field(40) };
}

export function negotiateMessage(flags = CLIENT_FLAGS): Buffer {
  const m = Buffer.alloc(40);
  SIGNATURE.copy(m, 0);
  m.writeUInt32LE(1, 8);
  m.writeUInt32LE(flags >>> 0, 12);
  // Domain and workstation fields empty (offset 40 = end of the fixed part).
  m.writeUInt32LE(40, 20);
  m.writeUInt32LE(40, 28);
  CLIENT_VERSION.copy(m, 32);
  return m;
}

export interface AuthenticateParts {
  flags: number;
  lmChallengeResponse: Buffer;
  ntChallengeResponse: Buffer;
  domain: string;
  user: string;
  workstation: string;
  encryptedRandomSessionKey: Buffer;
  /** Include a (zeroed, to be filled) 16-byte MIC field after the version. */
  withMic: boolean;
}

/** AUTHENTICATE_MESSAGE (§2.2.1.3); payload in the order Windows writes it. Returns the message and the MIC offset. */
export function authenticateMessage(p: AuthenticateParts): { message: Buffer; micOffset: number | null } {
  const fixed = 64 + 8 + (p.withMic ? 16 : 0);
  const payloads = [p.lmChallengeResponse, p.ntChallengeResponse, utf16(p.domain), utf16(p.user), utf16(p.workstation), p.encryptedRandomSessionKey];
  const m = Buffer.alloc(fixed + payloads.reduce((n, b) => n + b.length, 0));
  SIGNATURE.copy(m, 0);
  m.writeUInt32LE(3, 8);
  // Field descriptors in header order: Lm(12) Nt(20) Domain(28) User(36) Workstation(44) Key(52);
  // payload order: Domain, User, Workstation, Lm, Nt, Key (as in §4.2.4.3).
  const order = [2, 3, 4, 0, 1, 5];
  const offsets = new Array<number>(6);
  let off = fixed;
  for (const i of order) {
    offsets[i] = off;
    payloads[i]!.copy(m, off);
    off += payloads[i]!.length;
  }
  for (let i = 0; i < 6; i++) {
    m.writeUInt16LE(payloads[i]!.length, 12 + i * 8);
    m.writeUInt16LE(payloads[i]!.length, 14 + i * 8);
    m.writeUInt32LE(offsets[i]!, 16 + i * 8);
  }
  m.writeUInt32LE(p.flags >>> 0, 60);
  CLIENT_VERSION.copy(m, 64);
  return { message: m, micOffset: p.withMic ? 72 : null };
}

/**
 * Channel binding hash for HTTPS (RFC 5929 tls-server-end-point inside gss_channel_bindings_struct,
 * MD5'd into MsvAvChannelBindings). `certHash` is the server certificate hashed with its signature's
 * hash (SHA-256 for SHA-1/MD5/SHA-256 signed certificates).
 */
export function channelBindingsHash(certHash: Buffer): Buffer {
  const app = Buffer.concat([Buffer.from('tls-server-end-point:', 'latin1'), certHash]);
  const head = Buffer.alloc(20);
  head.writeUInt32LE(app.length, 16);
  return md5(head, app);
}

/** Splits `DOMAIN\user` (domain) and `user@realm` (UPN, sent as the user name with an empty domain, as Windows' client does). */
export function splitAccount(account: string): { user: string; domain: string } {
  const bs = account.indexOf('\\');
  if (bs > 0) return { domain: account.slice(0, bs), user: account.slice(bs + 1) };
  return { domain: '', user: account };
}

export interface NtlmClientOptions {
  username: string;
  password: string;
  workstation?: string;
  /** HTTPS: the SHA-256 of the server certificate's DER, for channel binding. */
  certHash?: Buffer;
  /** The SPN `HTTP/<host>` put in MsvAvTargetName. */
  targetName?: string;
  /** Deterministic inputs for tests; random/now otherwise. */
  random?: (n: number) => Buffer;
}

/** Drives one NTLM handshake; `session` is set once AUTHENTICATE is built. */
export class NtlmClient {
  private negotiate?: Buffer;
  session?: NtlmSession;

  constructor(private readonly o: NtlmClientOptions) {}

  start(): Buffer {
    this.negotiate = negotiateMessage();
    return this.negotiate;
  }

  respond(challengeBytes: Buffer): Buffer {
    if (!this.negotiate) throw new NtlmError('respond() before start()');
    const ch = parseChallenge(challengeBytes);
    const need = NTLM_FLAGS.EXTENDED_SESSIONSECURITY | NTLM_FLAGS.TARGET_INFO | NTLM_FLAGS.SEAL | NTLM_FLAGS.SIGN;
    if ((ch.flags & need) !== need) {
      throw new NtlmError(`server does not offer NTLMv2 with sealing (CHALLENGE flags 0x${(ch.flags >>> 0).toString(16)})`);
    }
    const flags = (ch.flags & CLIENT_FLAGS) >>> 0;
    const random = this.o.random ?? randomBytes;
    const pairs = parseAvPairs(ch.targetInfo);
    const ts = pairs.get(AV.TIMESTAMP);
    const time = ts ? Buffer.from(ts) : fileTimeNow();
    // The AV pairs of the response: the server's, plus flags (MIC present), channel bindings, target name.
    const ours: Array<[number, Buffer]> = [];
    for (const [id, v] of pairs) if (id !== AV.FLAGS && id !== AV.CHANNEL_BINDINGS && id !== AV.TARGET_NAME) ours.push([id, v]);
    const avFlags = Buffer.alloc(4);
    avFlags.writeUInt32LE(((pairs.get(AV.FLAGS)?.readUInt32LE(0) ?? 0) | (ts ? 0x2 : 0)) >>> 0);
    ours.push([AV.FLAGS, avFlags]);
    ours.push([AV.CHANNEL_BINDINGS, this.o.certHash ? channelBindingsHash(this.o.certHash) : Buffer.alloc(16)]);
    if (this.o.targetName) ours.push([AV.TARGET_NAME, utf16(this.o.targetName)]);
    const { user, domain } = splitAccount(this.o.username);
    const responseKey = ntowfV2(this.o.password, user, domain);
    const r = computeNtlmV2(responseKey, ch.serverChallenge, random(8), time, encodeAvPairs(ours));
    const exported = flags & NTLM_FLAGS.KEY_EXCH ? random(16) : r.sessionBaseKey;
    const encryptedKey = flags & NTLM_FLAGS.KEY_EXCH ? rc4(r.sessionBaseKey, exported) : Buffer.alloc(0);
    const { message, micOffset } = authenticateMessage({
      flags,
      // With MsvAvTimestamp the client sends Z(24) instead of LMv2 (§3.1.5.1.2).
      lmChallengeResponse: ts ? Buffer.alloc(24) : r.lmChallengeResponse,
      ntChallengeResponse: r.ntChallengeResponse,
      domain,
      user,
      workstation: this.o.workstation ?? 'HOSTFLOW',
      encryptedRandomSessionKey: encryptedKey,
      withMic: !!ts,
    });
    if (micOffset !== null) hmacMd5(exported, this.negotiate, challengeBytes, message).copy(message, micOffset);
    this.session = new NtlmSession(exported, flags, 'client');
    return message;
  }
}

function fileTimeNow(): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE((BigInt(Date.now()) + 11_644_473_600_000n) * 10_000n);
  return b;
}

/** Session security after authentication: seal/sign outgoing, unseal/verify incoming, each with its own sequence. */
export class NtlmSession {
  private readonly outSign: Buffer;
  private readonly inSign: Buffer;
  private readonly outSeal: Rc4;
  private readonly inSeal: Rc4;
  private outSeq = 0;
  private inSeq = 0;

  constructor(
    exportedSessionKey: Buffer,
    private readonly flags: number,
    mode: 'client' | 'server',
  ) {
    const other = mode === 'client' ? 'server' : 'client';
    this.outSign = signKey(exportedSessionKey, mode);
    this.inSign = signKey(exportedSessionKey, other);
    this.outSeal = new Rc4(sealKey(exportedSessionKey, flags, mode));
    this.inSeal = new Rc4(sealKey(exportedSessionKey, flags, other));
  }

  /** GSS_WrapEx with confidentiality: returns the 16-byte signature and the sealed data. */
  wrap(data: Buffer): { signature: Buffer; sealed: Buffer } {
    const seq = this.outSeq++;
    const sealed = this.outSeal.update(data);
    return { signature: this.signature(this.outSign, this.outSeal, seq, data), sealed };
  }

  /** GSS_UnwrapEx: unseals, then checks the signature against the next expected sequence number. */
  unwrap(signature: Buffer, sealed: Buffer): Buffer {
    const seq = this.inSeq++;
    const data = this.inSeal.update(sealed);
    const expected = this.signature(this.inSign, this.inSeal, seq, data);
    if (signature.length !== 16 || !timingSafeEqual(signature, expected)) {
      throw new NtlmError('NTLM message signature does not verify (tampered, replayed or out of sequence)');
    }
    return data;
  }

  private signature(key: Buffer, handle: Rc4, seq: number, data: Buffer): Buffer {
    const seqBuf = Buffer.alloc(4);
    seqBuf.writeUInt32LE(seq >>> 0);
    let checksum: Buffer = hmacMd5(key, seqBuf, data).subarray(0, 8);
    if (this.flags & NTLM_FLAGS.KEY_EXCH) checksum = handle.update(checksum);
    return Buffer.concat([Buffer.from([1, 0, 0, 0]), checksum, seqBuf]);
  }
}
