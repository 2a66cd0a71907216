import type { Request, Response, Router, RequestHandler } from 'express';
import type { z } from 'zod';
import type { RouteConfig } from '@asteasolutions/zod-to-openapi';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { ErrorEnvelope, envelope, z as zod, type OpenAPIRegistry } from './openapi.js';
import { validationError, forbidden, unauthenticated, restrictedSession, stepUpRequired } from './errors.js';
import type { SessionRestriction } from '../db/entities/index.js';
import type { AuthedUser } from './middleware/auth.js';
import { isPermission, PERMISSIONS, type Permission } from './authz/permissions.js';
import { can, resolvePrincipal, type Principal, type RoleCache } from './authz/principal.js';
import { scopeFor, type Scope } from './authz/scope.js';
import { maskBySchema } from './authz/mask.js';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** `'public'`: no authentication; `'authenticated'`: any logged-in principal; else the one permission the route needs. */
export type RouteAccess = Permission | 'public' | 'authenticated';

export interface RouteSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType, R extends z.ZodType> {
  method: Method;
  /** Express path, e.g. `/api/v1/hosts/:id`. */
  path: string;
  summary: string;
  tags: string[];
  /** The one permission this route needs (api/authz/permissions.ts). */
  permission: RouteAccess;
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
  /**
   * The success response is not the `{code, message, data}` envelope: the handler streams the
   * body itself (sets headers, writes, ends; defineRoute skips the envelope once headers are
   * sent). Documents the success status with these media types instead of `envelope(response)`.
   */
  rawResponse?: { description?: string; contentTypes: Record<string, z.ZodType> };
  /**
   * Further error statuses the route can answer beyond the ones derived from the spec
   * (400; 401/403 unless public; 404 with params; 409 unless GET), each with its description;
   * documented with the error envelope.
   */
  errors?: Record<number, string>;
  handler: (ctx: {
    params: z.infer<P>;
    query: z.infer<Q>;
    body: z.infer<B>;
    user: AuthedUser | undefined;
    /** The caller resolved against the roles table (undefined only on public routes without credentials). */
    principal: Principal | undefined;
    /** Row-scope helpers bound to the principal: every query of a scoped entity goes through them. */
    scope: Scope;
    req: Request;
    res: Response;
  }) => Promise<z.input<R>>;
}

/** What createApp puts in `app.locals.authz` for defineRoute's check. */
export interface AuthzContext {
  em: SqlEntityManager;
  roles: RoleCache;
}

/** The route table: every spec defineRoute registered, per registry (one registry per app). */
export interface RouteEntry {
  method: Method;
  path: string;
  summary: string;
  permission: RouteAccess;
  hasBody: boolean;
  /** Needs a recent MFA check (RouteSpec.stepUp). */
  stepUp: boolean;
}
const tables = new WeakMap<OpenAPIRegistry, RouteEntry[]>();
export const routeTableOf = (registry: OpenAPIRegistry): RouteEntry[] => tables.get(registry) ?? [];

function zodIssuesToFields(err: z.ZodError, where: string) {
  return err.issues.flatMap((i) => {
    const at = i.path.map(String).join('.');
    // An unknown field is named itself (`body.extra` → field `extra`), not the object around it.
    if (i.code === 'unrecognized_keys') return i.keys.map((k) => ({ field: at ? `${at}.${k}` : k, message: 'unknown field' }));
    return [{ field: at || where, message: i.message }];
  });
}

const describeAccess = (a: RouteAccess) =>
  a === 'public' ? 'Access: public.' : a === 'authenticated' ? 'Access: any authenticated principal.' : `Permission: \`${a}\` (${PERMISSIONS[a]}).`;

const noScope: Scope = scopeFor({ id: '', username: '', roles: [], customerId: null, mfaEnrolled: false, permissions: new Set(), rowScope: 'own', hostGroups: [] });
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
 * validate it, and wires authenticate → authorize (the one permission check) → validate →
 * handler (row scope via ctx.scope) → mask PII → envelope. A route without a known permission
 * throws here, so the app does not start.
 */
export function defineRoute<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType, R extends z.ZodType>(
  router: Router,
  registry: OpenAPIRegistry,
  spec: RouteSpec<P, Q, B, R>,
): void {
  const access = spec.permission as RouteAccess | undefined;
  if (!access || (access !== 'public' && access !== 'authenticated' && !isPermission(access))) {
    throw new Error(`route ${spec.method.toUpperCase()} ${spec.path} declares no known permission (got ${JSON.stringify(access)})`);
  }
  const table = tables.get(registry) ?? [];
  tables.set(registry, table);
  table.push({ method: spec.method, path: spec.path, summary: spec.summary, permission: access, hasBody: Boolean(spec.body), stepUp: Boolean(spec.stepUp) });

  const openapiPath = spec.path.replace(/:(\w+)/g, '{$1}');
  const doc: RouteConfig & { 'x-permission': RouteAccess } = {
    method: spec.method,
    path: openapiPath,
    summary: spec.summary,
    description: describeAccess(access),
    'x-permission': access,
    tags: spec.tags,
    security: access === 'public' ? [] : [{ bearerAuth: [] }],
    request: {
      ...(spec.params ? { params: spec.params as never } : {}),
      ...(spec.query ? { query: spec.query as never } : {}),
      // Required when an empty body would be refused (handlers parse a missing body as `{}`).
      ...(spec.body ? { body: { required: !spec.body.safeParse({}).success, content: { 'application/json': { schema: spec.body } } } } : {}),
    },
    responses: {
      [spec.status ?? 200]: spec.rawResponse
        ? { description: spec.rawResponse.description ?? 'OK', content: Object.fromEntries(Object.entries(spec.rawResponse.contentTypes).map(([type, schema]) => [type, { schema }])) }
        : json(envelope(spec.response), 'OK'),
      400: json(ErrorEnvelope, 'Validation failed (code 40001, naming the field)'),
      ...(access === 'public' ? {} : { 401: json(ErrorEnvelope, 'Unauthenticated (40101)') }),
      ...(access !== 'public' ? { 403: json(ErrorEnvelope, access !== 'authenticated' ? `Forbidden (40301): needs \`${access}\`` : 'Forbidden (40301)') } : {}),
      ...(spec.params ? { 404: json(ErrorEnvelope, 'Not found, or not in your scope (40401)') } : {}),
      // Every change can meet a conflicting state (a unique name, a workflow already running, a status that forbids it).
      ...(spec.method !== 'get' ? { 409: json(ErrorEnvelope, 'Conflict with the current state (40901)') } : {}),
      ...Object.fromEntries(Object.entries(spec.errors ?? {}).map(([status, description]) => [status, json(ErrorEnvelope, description)])),
    },
  };
  registry.registerPath(doc);

  const bodySchema = spec.body ? closed(spec.body) : undefined;
  const handler: RequestHandler = async (req, res) => {
    const user = req.user;
    const authz = req.app.locals.authz as AuthzContext;
    let principal: Principal | undefined;
    if (user) principal = await resolvePrincipal(authz.roles, user);
    if (access !== 'public') {
      if (!principal || !user) throw unauthenticated();
      if (user.restricted && !spec.allowRestricted?.includes(user.restricted)) throw restrictedSession(user.restricted);
      if (access !== 'authenticated' && !can(principal, access)) throw forbidden(`requires permission ${access}`);
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
    const scope = principal ? scopeFor(principal) : noScope;
    const data = await spec.handler({ params, query, body, user, principal, scope, req, res } as never);
    if (res.headersSent) return;
    const out = principal && can(principal, 'pii.read') ? data : maskBySchema(spec.response, data);
    res.status(spec.status ?? 200).json({ code: 0, message: 'ok', data: out ?? null });
  };
  router[spec.method](spec.path, handler);
}
