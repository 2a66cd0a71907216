import { Router, type RequestHandler, type Response } from 'express';
import type { AppDeps } from '../../deps.js';
import type { OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { CodecBody, CodecResponse, CodecSession } from './schema.js';
import { checkNamespace, decodePayloads, encodePayloads, openCodecSession } from './service.js';
import { CODEC_PATH, clearCodecCookie, setCodecCookie } from './codec-cookie.js';
import { Ok } from '../auth/schema.js';
import type { AuthDeps } from '../../deps.js';

export { CODEC_PATH } from './codec-cookie.js';

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
export function temporalCodecRoutes(deps: AppDeps & AuthDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  defineRoute(r, registry, {
    method: 'post',
    path: `${CODEC_PATH}/session`,
    summary: 'Set the Temporal Web UI codec cookie (httpOnly, SameSite=Strict, path /api/v1/temporal/codec) for this login session, so the UI can decode with "Include cross-origin credentials"; ends with the session',
    tags: ['temporal'],
    permission: 'temporal.decode',
    response: CodecSession,
    errors: { 400: 'Called with an API key: the cookie is bound to a login session (40001, field authorization)' },
    handler: async ({ user, req, res }) => {
      const { token, expiresAt } = await openCodecSession(deps, user!);
      setCodecCookie(req, res, token, expiresAt);
      return { expires_at: expiresAt.toISOString(), cookie_path: CODEC_PATH };
    },
  });
  defineRoute(r, registry, {
    method: 'delete',
    path: `${CODEC_PATH}/session`,
    summary: 'Clear the Temporal Web UI codec cookie (logout clears it too)',
    tags: ['temporal'],
    permission: 'public',
    response: Ok,
    handler: async ({ req, res }) => {
      clearCodecCookie(req, res);
      return { ok: true as const };
    },
  });
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
