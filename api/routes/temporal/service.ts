import type { Client } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { appendAudit } from '../../../db/audit/service.js';
import { payloadKeyId } from '../../../config/payload-codec.js';
import { validationError } from '../../errors.js';
import type { AuthDeps } from '../../deps.js';
import type { AuthedUser } from '../../middleware/auth.js';
import { signCodecToken } from '../auth/tokens.js';
import type { CodecPayloadJson } from './schema.js';

/**
 * The Web UI's remote codec (https://docs.temporal.io/production-deployment/data-encryption):
 * the same codecs as the API's Temporal client, so what the UI shows decoded is exactly what the
 * workers read. Decodes are audited (namespace, count, key ids: never content).
 */
export interface CodecDeps {
  em: SqlEntityManager;
  temporal: { client: Client };
}

const toPayload = (p: CodecPayloadJson): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))])),
  ...(p.data === undefined ? {} : { data: new Uint8Array(Buffer.from(p.data, 'base64')) }),
});

const toJson = (p: Payload): CodecPayloadJson => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  ...(p.data ? { data: Buffer.from(p.data).toString('base64') } : {}),
});

/**
 * The X-Namespace header (sent by the Web UI) must name the namespace this platform's keys are for.
 * Absent or empty (the `temporal` CLI sends `X-Namespace: ""`) means ours.
 */
export function checkNamespace(deps: CodecDeps, header: string | undefined): string {
  const ours = deps.temporal.client.options.namespace;
  if (header && header !== ours) throw validationError([{ field: 'X-Namespace', message: `this codec serves namespace "${ours}" only` }]);
  return ours;
}

export async function decodePayloads(deps: CodecDeps, input: { namespace: string; payloads: CodecPayloadJson[] }): Promise<{ payloads: CodecPayloadJson[] }> {
  let payloads = input.payloads.map(toPayload);
  const ids = payloads.map(payloadKeyId).filter((k): k is string => k !== undefined);
  const keyIds = [...new Set(ids)].sort();
  const codecs = deps.temporal.client.options.loadedDataConverter.payloadCodecs;
  let failure: string | null = null;
  try {
    for (const codec of [...codecs].reverse()) payloads = await codec.decode(payloads);
  } catch (err) {
    failure = (err as Error).message;
  }
  await appendAudit(deps.em, {
    action: 'temporal.decode',
    targetType: 'temporal_namespace',
    targetId: input.namespace,
    result: failure ? 'failure' : 'success',
    reason: failure,
    detail: { payloads: input.payloads.length, encrypted: ids.length, key_ids: keyIds },
  });
  if (failure) throw validationError([{ field: 'payloads', message: failure }]);
  return { payloads: payloads.map(toJson) };
}

export async function encodePayloads(deps: CodecDeps, input: { payloads: CodecPayloadJson[] }): Promise<{ payloads: CodecPayloadJson[] }> {
  let payloads = input.payloads.map(toPayload);
  for (const codec of deps.temporal.client.options.loadedDataConverter.payloadCodecs) payloads = await codec.encode(payloads);
  return { payloads: payloads.map(toJson) };
}

/**
 * The codec token for the Web UI's cookie: only for a login session (it is bound to it and dies
 * with it); an API key caller already has a Bearer credential for `--codec-auth`.
 */
export async function openCodecSession(deps: Pick<AuthDeps, 'identity'>, user: AuthedUser): Promise<{ token: string; expiresAt: Date }> {
  if (!user.sessionId) throw validationError([{ field: 'authorization', message: 'the codec cookie is bound to a login session; with an API key, send it as Bearer (temporal --codec-auth)' }]);
  return signCodecToken(deps.identity, { userId: user.id, sessionId: user.sessionId });
}
