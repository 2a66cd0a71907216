import { describe, expect, it } from 'vitest';
import { defaultPayloadConverter } from '@temporalio/common';
import { AesGcmPayloadCodec, ENCRYPTED_ENCODING, PayloadCodecError, decryptPayloadsInJson, payloadKeyId } from '../../config/payload-codec.js';
import { generateKeyring, type Keyring } from '../../db/vault.js';

const td = new TextDecoder();
const ring = (...ids: string[]): Keyring => {
  const keys = new Map(ids.map((id) => [id, generateKeyring(id).keys.get(id)!]));
  return { activeKeyId: ids[0]!, keys };
};

describe('AES-256-GCM payload codec', () => {
  const input = { customer: 'Alice Example', email: 'alice@example.com', host: '10.1.2.3' };
  const plain = defaultPayloadConverter.toPayload(input);

  it('encrypts under the active key id, carries the id in metadata, and round-trips', async () => {
    const codec = new AesGcmPayloadCodec(ring('k1'));
    const [enc] = await codec.encode([plain]);
    expect(td.decode(enc!.metadata!.encoding)).toBe(ENCRYPTED_ENCODING);
    expect(payloadKeyId(enc!)).toBe('k1');
    const bytes = Buffer.from(enc!.data!).toString('latin1');
    for (const s of Object.values(input)) expect(bytes).not.toContain(s);
    const [dec] = await codec.decode([enc!]);
    expect(defaultPayloadConverter.fromPayload(dec!)).toEqual(input);
    // A fresh IV each time: the same input never gives the same ciphertext.
    const [again] = await codec.encode([plain]);
    expect(Buffer.from(again!.data!).equals(Buffer.from(enc!.data!))).toBe(false);
  });

  it('after rotation (k2 active, k1 kept) decodes k1 payloads and encodes under k2; without k1 it names the missing key', async () => {
    const [old] = await new AesGcmPayloadCodec(ring('k1')).encode([plain]);
    const shared = ring('k1');
    const rotated: Keyring = { activeKeyId: 'k2', keys: new Map([...generateKeyring('k2').keys, ...shared.keys]) };
    const [oldAgain] = await new AesGcmPayloadCodec(shared).encode([plain]);
    const codec = new AesGcmPayloadCodec(rotated);
    expect(defaultPayloadConverter.fromPayload((await codec.decode([oldAgain!]))[0]!)).toEqual(input);
    expect(payloadKeyId((await codec.encode([plain]))[0]!)).toBe('k2');
    await expect(codec.decode([old!])).rejects.toThrow(PayloadCodecError); // a different k1 (other bytes)
    await expect(new AesGcmPayloadCodec(ring('k3')).decode([oldAgain!])).rejects.toThrow(/key "k1", which is not in HOSTFLOW_PAYLOAD_KEYS/);
  });

  it('passes plaintext payloads (histories from before the codec) through decode unchanged', async () => {
    const codec = new AesGcmPayloadCodec(ring('k1'));
    expect(await codec.decode([plain])).toEqual([plain]);
  });

  it('refuses a tampered ciphertext', async () => {
    const codec = new AesGcmPayloadCodec(ring('k1'));
    const [enc] = await codec.encode([plain]);
    const data = Buffer.from(enc!.data!);
    data[20] = data[20]! ^ 1;
    await expect(codec.decode([{ ...enc!, data: new Uint8Array(data) }])).rejects.toThrow(/failed authentication/);
    // Relabelled under another key id of the ring: the key id is bound (AAD), so it fails too.
    const two = new AesGcmPayloadCodec({ activeKeyId: 'k1', keys: new Map([['k1', ring('k1').keys.get('k1')!], ['k2', ring('k1').keys.get('k1')!]]) });
    const [e2] = await two.encode([plain]);
    await expect(two.decode([{ ...e2!, metadata: { ...e2!.metadata, 'encryption-key-id': new TextEncoder().encode('k2') } }])).rejects.toThrow(/failed authentication/);
  });

  it('decrypts the payloads inside a proto3-JSON history and leaves the rest alone', async () => {
    const codec = new AesGcmPayloadCodec(ring('k1'));
    const [enc] = await codec.encode([plain]);
    const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');
    const doc = { events: [{ eventId: '1', input: { payloads: [{ metadata: Object.fromEntries(Object.entries(enc!.metadata!).map(([k, v]) => [k, b64(v)])), data: b64(enc!.data!) }] } }] };
    const out = decryptPayloadsInJson(doc, codec) as typeof doc;
    expect(out.events[0]!.eventId).toBe('1');
    const p = out.events[0]!.input.payloads[0]!;
    expect(Buffer.from(p.metadata.encoding!, 'base64').toString()).toBe('json/plain');
    expect(JSON.parse(Buffer.from(p.data, 'base64').toString())).toEqual(input);
  });
});
