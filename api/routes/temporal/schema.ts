import { z } from '../../openapi.js';

const b64 = z.string().max(4 * 1024 * 1024).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');

/** One payload as the Temporal Web UI's remote codec protocol sends it (proto3 JSON: base64 bytes). */
export const CodecPayload = z
  .object({
    metadata: z.record(z.string().max(256), b64).optional().default({}),
    data: b64.optional(),
  })
  .openapi('CodecPayload');

export const CodecBody = z.object({ payloads: z.array(CodecPayload).max(1000) }).openapi('CodecRequest');
export const CodecResponse = z.object({ payloads: z.array(CodecPayload) }).openapi('CodecResponse');
export type CodecPayloadJson = z.infer<typeof CodecPayload>;

export const CodecSession = z
  .object({ expires_at: z.string().describe('When the cookie (and the codec token in it) expires; the session ending ends it sooner'), cookie_path: z.string() })
  .openapi('CodecSession');
