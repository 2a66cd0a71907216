import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import type { Keyring } from '../db/vault.js';

/**
 * Temporal payload encryption: every payload a client or worker sends (workflow inputs and results,
 * signals, updates, queries, memos, heartbeats, failure messages) leaves the process as AES-256-GCM
 * ciphertext under a key id. Decoding picks the key by the id in the payload's metadata, so after a
 * rotation (a new key put first in HOSTFLOW_PAYLOAD_KEYS, the old ones kept) runs that started
 * under an older key stay readable.
 *
 * Payloads without this codec's encoding (histories recorded before the codec existed, or
 * payloads another codec produced) pass through decode unchanged: that keeps old runs and the
 * replay fixtures working. Search attributes are not payloads the codec sees (they are indexed in
 * plaintext by the server): keep them to ids and statuses.
 */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

const ENCODING_KEY = 'encoding';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const te = new TextEncoder();
const td = new TextDecoder();

export class PayloadCodecError extends Error {
  override name = 'PayloadCodecError';
}

/** Which key (if any) a stored payload was encrypted under; undefined for a plaintext payload. */
export function payloadKeyId(p: Payload): string | undefined {
  if (!p.metadata || td.decode(p.metadata[ENCODING_KEY] ?? new Uint8Array()) !== ENCRYPTED_ENCODING) return undefined;
  return td.decode(p.metadata[KEY_ID_METADATA] ?? new Uint8Array());
}

const aad = (keyId: string) => Buffer.from(`hostflow-payload:v1:${keyId}`);

/** The inner payload as bytes: a small JSON document (metadata values and data as base64). */
function serialize(p: Payload): Buffer {
  const metadata = Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
  return Buffer.from(JSON.stringify({ metadata, data: p.data ? Buffer.from(p.data).toString('base64') : null }));
}

function deserialize(b: Buffer): Payload {
  const o = JSON.parse(b.toString('utf8')) as { metadata: Record<string, string>; data: string | null };
  return {
    metadata: Object.fromEntries(Object.entries(o.metadata).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))])),
    ...(o.data === null ? {} : { data: new Uint8Array(Buffer.from(o.data, 'base64')) }),
  };
}

export class AesGcmPayloadCodec implements PayloadCodec {
  constructor(private readonly ring: Keyring) {
    if (!ring.keys.has(ring.activeKeyId)) throw new PayloadCodecError(`payload keyring: active key "${ring.activeKeyId}" is not in the ring`);
  }

  get activeKeyId(): string {
    return this.ring.activeKeyId;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.encodeOne(p));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.decodeOne(p));
  }

  encodeOne(p: Payload): Payload {
    const keyId = this.ring.activeKeyId;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.ring.keys.get(keyId)!, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(keyId));
    const ct = Buffer.concat([cipher.update(serialize(p)), cipher.final()]);
    return {
      metadata: { [ENCODING_KEY]: te.encode(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: te.encode(keyId) },
      data: new Uint8Array(Buffer.concat([iv, ct, cipher.getAuthTag()])),
    };
  }

  decodeOne(p: Payload): Payload {
    const keyId = payloadKeyId(p);
    if (keyId === undefined) return p;
    const key = this.ring.keys.get(keyId);
    if (!key) throw new PayloadCodecError(`payload was encrypted with key "${keyId}", which is not in HOSTFLOW_PAYLOAD_KEYS (keep retired keys in the ring while runs that used them exist)`);
    const raw = Buffer.from(p.data ?? new Uint8Array());
    if (raw.length < IV_BYTES + TAG_BYTES) throw new PayloadCodecError('encrypted payload is truncated');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
      decipher.setAAD(aad(keyId));
      decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
      return deserialize(Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]));
    } catch {
      throw new PayloadCodecError(`encrypted payload failed authentication under key "${keyId}"`);
    }
  }
}

/**
 * Decrypts every payload this codec encrypted inside a proto3-JSON document (what `temporal
 * workflow show --output json` prints: payloads as `{ metadata: { k: base64 }, data: base64 }`),
 * leaving everything else as it is. Replay fixtures are stored this way (readable, no key needed:
 * the data converter passes plaintext payloads through), and tests scan the result for secrets.
 */
export function decryptPayloadsInJson(value: unknown, codec: AesGcmPayloadCodec): unknown {
  if (Array.isArray(value)) return value.map((v) => decryptPayloadsInJson(v, codec));
  if (!value || typeof value !== 'object') return value;
  const o = value as Record<string, unknown>;
  const md = o.metadata as Record<string, unknown> | undefined;
  if (md && typeof md === 'object' && typeof md.encoding === 'string' && Buffer.from(md.encoding, 'base64').toString('utf8') === ENCRYPTED_ENCODING) {
    const payload: Payload = {
      metadata: Object.fromEntries(Object.entries(md).map(([k, v]) => [k, new Uint8Array(Buffer.from(String(v), 'base64'))])),
      data: new Uint8Array(Buffer.from(typeof o.data === 'string' ? o.data : '', 'base64')),
    };
    const plain = codec.decodeOne(payload);
    return {
      metadata: Object.fromEntries(Object.entries(plain.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
      ...(plain.data ? { data: Buffer.from(plain.data).toString('base64') } : {}),
    };
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, decryptPayloadsInJson(v, codec)]));
}
