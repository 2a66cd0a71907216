import { Router, type RequestHandler, type Response } from 'express';
import type { AppDeps } from '../../deps.js';
import type { OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { CodecBody, CodecResponse } from './schema.js';
import { checkNamespace, decodePayloads, encodePayloads } from './service.js';

export const CODEC_PATH = '/api/v1/temporal/codec';

/** Sends the bare protocol body now (res.json is deferred by the audit middleware, and defineRoute would add its envelope). */
const sendJson = (res: Response, body: unknown) => void res.status(200).type('application/json').send(JSON.stringify(body));

/**
 * CORS for the Web UI's codec calls: only the configured UI origins, credentials allowed (the UI's
 * "pass access token" sends Authorization), preflight answered before authentication.
 */
export function codecCors(origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins.map((o) => o.replace(/\/+$/, '')));
  return (req, res, next) => {
    const origin = req.get('origin');
    if (origin && allowed.has(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'authorization, content-type, x-namespace');
      res.setHeader('Access-Control-Max-Age', '600');
    }
    res.vary('Origin');
    if (req.method === 'OPTIONS') {
      res.status(origin && allowed.has(origin) ? 204 : 403).end();
      return;
    }
    next();
  };
}

/** The Temporal Web UI's remote codec endpoint: /decode and /encode, bodies `{ payloads: [...] }` (not the envelope). */
export function temporalCodecRoutes(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  const raw = { description: 'The payloads, in order (the Web UI remote codec protocol: not the {code, message, data} envelope)', contentTypes: { 'application/json': CodecResponse } };
  defineRoute(r, registry, {
    method: 'post',
    path: `${CODEC_PATH}/decode`,
    summary: 'Decode (decrypt) Temporal payloads for the Web UI or `temporal --codec-endpoint`; every call is audited',
    tags: ['temporal'],
    permission: 'temporal.decode',
    body: CodecBody,
    response: CodecResponse,
    rawResponse: raw,
    handler: async ({ body, req, res }) => {
      const namespace = checkNamespace(deps, req.get('x-namespace'));
      sendJson(res, await decodePayloads(deps, { namespace, payloads: body.payloads }));
      return undefined as never;
    },
  });
  defineRoute(r, registry, {
    method: 'post',
    path: `${CODEC_PATH}/encode`,
    summary: 'Encode (encrypt) payloads, e.g. the input of a workflow started or signalled from the Web UI',
    tags: ['temporal'],
    permission: 'temporal.decode',
    body: CodecBody,
    response: CodecResponse,
    rawResponse: raw,
    handler: async ({ body, req, res }) => {
      checkNamespace(deps, req.get('x-namespace'));
      sendJson(res, await encodePayloads(deps, { payloads: body.payloads }));
      return undefined as never;
    },
  });
  return r;
}
