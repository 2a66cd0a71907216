import type { Request, Response, Router, RequestHandler } from 'express';
import type { z } from 'zod';
import type { RouteConfig } from '@asteasolutions/zod-to-openapi';
import { ErrorEnvelope, envelope, z as zod, type OpenAPIRegistry } from './openapi.js';
import { validationError, forbidden, unauthenticated, restrictedSession, stepUpRequired } from './errors.js';
import type { Role, SessionRestriction } from '../db/entities/index.js';
import type { AuthedUser } from './middleware/auth.js';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface RouteSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType, R extends z.ZodType> {
  method: Method;
  /** Express path, e.g. `/api/v1/hosts/:id`. */
  path: string;
  summary: string;
  tags: string[];
  /** Roles allowed; `'public'` skips authentication; `'any'` needs any authenticated user. */
  auth: Role[] | 'public' | 'any';
  /**
   * Sensitive operation: a user with MFA enrolled needs an MFA check within the last
   * AUTH_STEP_UP_MINUTES in this session (else 401 / 40103: step up via POST /auth/mfa/verify).
   */
  stepUp?: true;
  /** Restricted sessions (must change password / must enrol MFA) may call only routes listing their restriction. */
  allowRestricted?: SessionRestriction[];
  params?: P;
  query?: Q;
  body?: B;
  response: R;
  status?: number;
  handler: (ctx: {
    params: z.infer<P>;
    query: z.infer<Q>;
    body: z.infer<B>;
    user: AuthedUser | undefined;
    req: Request;
    res: Response;
  }) => Promise<z.input<R>>;
}

function zodIssuesToFields(err: z.ZodError, where: string) {
  return err.issues.flatMap((i) => {
    const at = i.path.map(String).join('.');
    // An unknown field is named itself (`body.extra` → field `extra`), not the object around it.
    if (i.code === 'unrecognized_keys') return i.keys.map((k) => ({ field: at ? `${at}.${k}` : k, message: 'unknown field' }));
    return [{ field: at || where, message: i.message }];
  });
}

/** Where a string (or key) holds U+0000, which PostgreSQL text and jsonb cannot store (it would be a 500). */
function nulPaths(v: unknown, at = ''): string[] {
  if (typeof v === 'string') return v.includes('\u0000') ? [at] : [];
  if (Array.isArray(v)) return v.flatMap((x, i) => nulPaths(x, at ? `${at}.${i}` : String(i)));
  if (v && typeof v === 'object') {
    return Object.entries(v).flatMap(([k, x]) => (k.includes('\u0000') ? [at || 'body'] : nulPaths(x, at ? `${at}.${k}` : k)));
  }
  return [];
}

/** Request bodies are closed: an object body refuses fields it does not declare (40001 naming them). */
function closed<B extends z.ZodType>(schema: B): B {
  const s = schema as unknown as { strict?: () => z.ZodType };
  return (schema instanceof zObject && typeof s.strict === 'function' ? s.strict() : schema) as B;
}

const zObject = zod.ZodObject;
const json = (schema: z.ZodType, description: string) => ({ description, content: { 'application/json': { schema } } });

/**
 * Declares one endpoint: registers its OpenAPI description from the same zod schemas that
 * validate it, and wires validate → authorize → handler → envelope.
 */
export function defineRoute<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType, R extends z.ZodType>(
  router: Router,
  registry: OpenAPIRegistry,
  spec: RouteSpec<P, Q, B, R>,
): void {
  const openapiPath = spec.path.replace(/:(\w+)/g, '{$1}');
  const doc: RouteConfig = {
    method: spec.method,
    path: openapiPath,
    summary: spec.summary,
    tags: spec.tags,
    security: spec.auth === 'public' ? [] : [{ bearerAuth: [] }],
    request: {
      ...(spec.params ? { params: spec.params as never } : {}),
      ...(spec.query ? { query: spec.query as never } : {}),
      // Required when an empty body would be refused (handlers parse a missing body as `{}`).
      ...(spec.body ? { body: { required: !spec.body.safeParse({}).success, content: { 'application/json': { schema: spec.body } } } } : {}),
    },
    responses: {
      [spec.status ?? 200]: json(envelope(spec.response), 'OK'),
      400: json(ErrorEnvelope, 'Validation failed (code 40001, naming the field)'),
      ...(spec.auth === 'public' ? {} : { 401: json(ErrorEnvelope, 'Unauthenticated (40101)') }),
      ...(spec.auth !== 'public' ? { 403: json(ErrorEnvelope, 'Forbidden (40301)') } : {}),
      ...(spec.params ? { 404: json(ErrorEnvelope, 'Not found (40401)') } : {}),
      // Every change can meet a conflicting state (a unique name, a workflow already running, a status that forbids it).
      ...(spec.method !== 'get' ? { 409: json(ErrorEnvelope, 'Conflict with the current state (40901)') } : {}),
    },
  };
  registry.registerPath(doc);

  const bodySchema = spec.body ? closed(spec.body) : undefined;
  const handler: RequestHandler = async (req, res) => {
    const user = req.user;
    if (spec.auth !== 'public') {
      if (!user) throw unauthenticated();
      if (user.restricted && !spec.allowRestricted?.includes(user.restricted)) throw restrictedSession(user.restricted);
      if (Array.isArray(spec.auth) && !spec.auth.some((r) => user.roles.includes(r))) {
        throw forbidden(`requires role ${spec.auth.join(' or ')}`);
      }
      if (spec.stepUp && user.mfaEnrolled) {
        const ctx = req.authContext!;
        if (!user.mfaAt || ctx.now.getTime() - user.mfaAt.getTime() > ctx.stepUpMinutes * 60_000) throw stepUpRequired(ctx.stepUpMinutes);
      }
    }
    const parse = <S extends z.ZodType | undefined>(schema: S, value: unknown, where: string) => {
      if (!schema) return undefined;
      const nul = nulPaths(value);
      if (nul.length) throw validationError(nul.map((f) => ({ field: f || where, message: 'must not contain the NUL character (U+0000)' })));
      const r = schema.safeParse(value ?? (where === 'body' ? {} : value));
      if (!r.success) throw validationError(zodIssuesToFields(r.error, where));
      return r.data;
    };
    const params = parse(spec.params, req.params, 'params');
    const query = parse(spec.query, req.query, 'query');
    const body = parse(bodySchema, req.body, 'body');
    const data = await spec.handler({ params, query, body, user, req, res } as never);
    if (res.headersSent) return;
    res.status(spec.status ?? 200).json({ code: 0, message: 'ok', data: data ?? null });
  };
  router[spec.method](spec.path, handler);
}
