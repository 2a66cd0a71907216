/**
 * The NTLM message layer against the published worked example of [MS-NLMP] §4.2 (4.2.1 common
 * values, 4.2.4 NTLMv2: calculations, results, messages, GSS_WrapEx), plus MD4 (RFC 1320 A.5) and
 * RC4 vectors for the two primitives written here because OpenSSL 3 refuses them.
 */
import { describe, expect, it } from 'vitest';
import { md4, rc4 } from '../../activities/winrm/legacy-crypto.js';
import {
  authenticateMessage,
  computeNtlmV2,
  negotiateMessage,
  NtlmClient,
  NtlmSession,
  NTLM_FLAGS,
  ntlmv2Temp,
  ntowfV2,
  parseAvPairs,
  parseChallenge,
  sealKey,
  signKey,
  splitAccount,
} from '../../activities/winrm/ntlm.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// §4.2.1 Common Values
const USER = 'User';
const DOMAIN = 'Domain';
const PASSWORD = 'Password';
const WORKSTATION = 'COMPUTER';
const RANDOM_SESSION_KEY = Buffer.alloc(16, 0x55);
const TIME = Buffer.alloc(8);
const CLIENT_CHALLENGE = Buffer.alloc(8, 0xaa);
const SERVER_CHALLENGE = hex('01 23 45 67 89 ab cd ef');

// §4.2.4.3 CHALLENGE_MESSAGE (flags 33 82 8a e2 = the 4.2.4 "Challenge Flags")
const CHALLENGE = hex(`
  4e 54 4c 4d 53 53 50 00 02 00 00 00 0c 00 0c 00 38 00 00 00 33 82 8a e2 01 23 45 67 89 ab cd ef
  00 00 00 00 00 00 00 00 24 00 24 00 44 00 00 00 06 00 70 17 00 00 00 0f 53 00 65 00 72 00 76 00
  65 00 72 00 02 00 0c 00 44 00 6f 00 6d 00 61 00 69 00 6e 00 01 00 0c 00 53 00 65 00 72 00 76 00
  65 00 72 00 00 00 00 00`);
// §4.2.4.3 AUTHENTICATE_MESSAGE (no MIC field: its CHALLENGE carries no MsvAvTimestamp)
const AUTHENTICATE = hex(`
  4e 54 4c 4d 53 53 50 00 03 00 00 00 18 00 18 00 6c 00 00 00 54 00 54 00 84 00 00 00 0c 00 0c 00
  48 00 00 00 08 00 08 00 54 00 00 00 10 00 10 00 5c 00 00 00 10 00 10 00 d8 00 00 00 35 82 88 e2
  05 01 28 0a 00 00 00 0f 44 00 6f 00 6d 00 61 00 69 00 6e 00 55 00 73 00 65 00 72 00 43 00 4f 00
  4d 00 50 00 55 00 54 00 45 00 52 00 86 c3 50 97 ac 9c ec 10 25 54 76 4a 57 cc cc 19 aa aa aa aa
  aa aa aa aa 68 cd 0a b8 51 e5 1c 96 aa bc 92 7b eb ef 6a 1c 01 01 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 aa aa aa aa aa aa aa aa 00 00 00 00 02 00 0c 00 44 00 6f 00 6d 00 61 00 69 00 6e 00
  01 00 0c 00 53 00 65 00 72 00 76 00 65 00 72 00 00 00 00 00 00 00 00 00 c5 da d2 54 4f c9 79 90
  94 ce 1c e9 0b c9 d0 3e`);

describe('MS-NLMP §4.2.4 NTLMv2 vectors', () => {
  const challenge = parseChallenge(CHALLENGE);

  it('parses the §4.2.4.3 CHALLENGE_MESSAGE (flags, server challenge, target info)', () => {
    expect(challenge.flags >>> 0).toBe(0xe28a8233);
    expect(challenge.serverChallenge).toEqual(SERVER_CHALLENGE);
    expect(challenge.targetName.toString('utf16le')).toBe('Server');
    const av = parseAvPairs(challenge.targetInfo);
    expect(av.get(2)!.toString('utf16le')).toBe('Domain');
    expect(av.get(1)!.toString('utf16le')).toBe('Server');
  });

  it('§4.2.4.1.1 NTOWFv2 and §4.2.4.1.3 temp', () => {
    expect(ntowfV2(PASSWORD, USER, DOMAIN)).toEqual(hex('0c 86 8a 40 3b fd 7a 93 a3 00 1e f2 2e f0 2e 3f'));
    // only the user name is upper-cased
    expect(ntowfV2(PASSWORD, 'user', DOMAIN)).toEqual(ntowfV2(PASSWORD, USER, DOMAIN));
    expect(ntowfV2(PASSWORD, USER, 'domain')).not.toEqual(ntowfV2(PASSWORD, USER, DOMAIN));
    expect(ntlmv2Temp(TIME, CLIENT_CHALLENGE, challenge.targetInfo)).toEqual(AUTHENTICATE.subarray(0x94, 0xd8));
  });

  it('§4.2.4.1.2 session base key, §4.2.4.2.1 LMv2, §4.2.4.2.2 NTLMv2 response, §4.2.4.2.3 encrypted session key', () => {
    const r = computeNtlmV2(ntowfV2(PASSWORD, USER, DOMAIN), SERVER_CHALLENGE, CLIENT_CHALLENGE, TIME, challenge.targetInfo);
    expect(r.sessionBaseKey).toEqual(hex('8d e4 0c ca db c1 4a 82 f1 5c b0 ad 0d e9 5c a3'));
    expect(r.lmChallengeResponse).toEqual(hex('86 c3 50 97 ac 9c ec 10 25 54 76 4a 57 cc cc 19 aa aa aa aa aa aa aa aa'));
    expect(r.ntProofStr).toEqual(hex('68 cd 0a b8 51 e5 1c 96 aa bc 92 7b eb ef 6a 1c'));
    expect(r.ntChallengeResponse).toEqual(AUTHENTICATE.subarray(0x84, 0xd8));
    // KXKEY = SessionBaseKey for NTLMv2; EncryptedRandomSessionKey = RC4K(KXKEY, RandomSessionKey)
    expect(rc4(r.sessionBaseKey, RANDOM_SESSION_KEY)).toEqual(hex('c5 da d2 54 4f c9 79 90 94 ce 1c e9 0b c9 d0 3e'));
  });

  it('§4.2.4.3 AUTHENTICATE_MESSAGE byte for byte', () => {
    const r = computeNtlmV2(ntowfV2(PASSWORD, USER, DOMAIN), SERVER_CHALLENGE, CLIENT_CHALLENGE, TIME, challenge.targetInfo);
    const { message } = authenticateMessage({
      flags: 0xe2888235,
      lmChallengeResponse: r.lmChallengeResponse,
      ntChallengeResponse: r.ntChallengeResponse,
      domain: DOMAIN,
      user: USER,
      workstation: WORKSTATION,
      encryptedRandomSessionKey: rc4(r.sessionBaseKey, RANDOM_SESSION_KEY),
      withMic: false,
    });
    // The spec's dump carries VERSION 05 01 28 0a (Windows XP era); ours differs only there.
    const expected = Buffer.from(AUTHENTICATE);
    message.copy(expected, 64, 64, 72);
    expect(message).toEqual(expected);
  });

  it('§4.2.4.4 SEALKEY/SIGNKEY and GSS_WrapEx of "Plaintext" (sequence 0)', () => {
    const flags = challenge.flags;
    expect(sealKey(RANDOM_SESSION_KEY, flags, 'client')).toEqual(hex('59 f6 00 97 3c c4 96 0a 25 48 0a 7c 19 6e 4c 58'));
    expect(signKey(RANDOM_SESSION_KEY, 'client')).toEqual(hex('47 88 dc 86 1b 47 82 f3 5d 43 fd 98 fe 1a 2d 39'));
    const s = new NtlmSession(RANDOM_SESSION_KEY, flags, 'client');
    const { sealed, signature } = s.wrap(Buffer.from('Plaintext', 'utf16le'));
    expect(sealed).toEqual(hex('54 e5 01 65 bf 19 36 dc 99 60 20 c1 81 1b 0f 06 fb 5f'));
    expect(signature).toEqual(hex('01 00 00 00 7f b3 8e c5 c5 5d 49 76 00 00 00 00'));
  });
});

describe('NTLM session security', () => {
  const key = Buffer.alloc(16, 0x42);
  const flags = (NTLM_FLAGS.EXTENDED_SESSIONSECURITY | NTLM_FLAGS.KEY_EXCH | NTLM_FLAGS.N128 | NTLM_FLAGS.SEAL | NTLM_FLAGS.SIGN) >>> 0;

  it('round-trips both directions with running sequence numbers', () => {
    const client = new NtlmSession(key, flags, 'client');
    const server = new NtlmSession(key, flags, 'server');
    for (let i = 0; i < 3; i++) {
      const m = client.wrap(Buffer.from(`request ${i}`));
      expect(m.signature.readUInt32LE(12)).toBe(i);
      expect(server.unwrap(m.signature, m.sealed).toString()).toBe(`request ${i}`);
      const r = server.wrap(Buffer.from(`response ${i}`));
      expect(client.unwrap(r.signature, r.sealed).toString()).toBe(`response ${i}`);
    }
  });

  it('refuses a tampered body, a tampered signature and a replayed message', () => {
    const client = new NtlmSession(key, flags, 'client');
    const mk = () => new NtlmSession(key, flags, 'server');
    const m = client.wrap(Buffer.from('hello'));
    const bad = Buffer.from(m.sealed);
    bad[0]! ^= 1;
    expect(() => mk().unwrap(m.signature, bad)).toThrow(/does not verify/);
    const badSig = Buffer.from(m.signature);
    badSig[5]! ^= 1;
    expect(() => mk().unwrap(badSig, m.sealed)).toThrow(/does not verify/);
    const server = mk();
    server.unwrap(m.signature, m.sealed);
    expect(() => server.unwrap(m.signature, m.sealed)).toThrow(/does not verify/);
  });

  it('client: refuses a CHALLENGE without NTLMv2 / sealing; adds a MIC when the server sends a timestamp', () => {
    const weak = Buffer.from(CHALLENGE);
    weak.writeUInt32LE((0xe28a8233 & ~NTLM_FLAGS.EXTENDED_SESSIONSECURITY) >>> 0, 20);
    const c1 = new NtlmClient({ username: 'u', password: 'p' });
    c1.start();
    expect(() => c1.respond(weak)).toThrow(/NTLMv2/);
    expect(negotiateMessage().readUInt32LE(8)).toBe(1);
    expect(splitAccount('CORP\\alice')).toEqual({ domain: 'CORP', user: 'alice' });
    expect(splitAccount('alice@corp.example')).toEqual({ domain: '', user: 'alice@corp.example' });
  });
});

describe('MD4 (RFC 1320 A.5) and RC4', () => {
  it.each([
    ['', '31d6cfe0d16ae931b73c59d7e0c089c0'],
    ['a', 'bde52cb31de33e46245e05fbdbd6fb24'],
    ['abc', 'a448017aaf21d8525fc10ae87aa6729d'],
    ['message digest', 'd9130a8164549fe818874806e1c7014b'],
    ['abcdefghijklmnopqrstuvwxyz', 'd79e1c308aa5bbcdeea8ed63df412da9'],
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', '043f8582f241db351ce627e153e7f0e4'],
    ['1234567890'.repeat(8), 'e33b4ddc9c38f2199c3e7b164fcc0536'],
  ])('MD4(%j)', (input, digest) => {
    expect(md4(Buffer.from(input, 'latin1')).toString('hex')).toBe(digest);
  });

  it('RC4 key-stream vectors', () => {
    expect(rc4(Buffer.from('Key'), Buffer.from('Plaintext')).toString('hex')).toBe('bbf316e8d940af0ad3');
    expect(rc4(Buffer.from('Wiki'), Buffer.from('pedia')).toString('hex')).toBe('1021bf0420');
    // RFC 6229, 40-bit key 0x0102030405, key stream at offset 0
    expect(rc4(hex('0102030405'), Buffer.alloc(16)).toString('hex')).toBe('b2396305f03dc027ccc3524a0a1118a8');
  });
});
