import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from '../../config/logger.js';
import { withLogContext } from '../../config/log-context.js';
import { ApiError, notFound, validationError } from '../errors.js';
import type { OpenAPIRegistry } from '../openapi.js';

export const requestId: RequestHandler = (req, res, next) => {
  const incoming = req.headers['x-request-id'];
  req.requestId = typeof incoming === 'string' && /^[\w.-]{1,64}$/.test(incoming) ? incoming : randomUUID();
  res.setHeader('x-request-id', req.requestId);
  // Every log line written while serving the request carries its id, and workflows it starts get
  // it in their memo (config/log-context.ts, config/temporal.ts requestMemoInterceptor).
  withLogContext({ requestId: req.requestId }, next);
};

/**
 * A path the API serves, asked with a method it does not: 405 (40501) with an `Allow` header,
 * from the registered OpenAPI paths (so it matches the document). Runs before the routes, so a
 * literal path (`/hosts/onboard`) is not answered by a parameterised one (`/hosts/:id`) for a
 * method only the latter has. OPTIONS answers 204 with the same `Allow`.
 */
export function methodNotAllowed(registry: OpenAPIRegistry): RequestHandler {
  let table: Array<{ re: RegExp; params: number; methods: Set<string> }> | undefined;
  const build = () => {
    const byPath = new Map<string, Set<string>>();
    for (const d of registry.definitions) {
      if (d.type !== 'route') continue;
      const set = byPath.get(d.route.path) ?? new Set<string>();
      set.add(d.route.method.toUpperCase());
      byPath.set(d.route.path, set);
    }
    return [...byPath].map(([path, methods]) => {
      const re = new RegExp(`^${path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{\w+\}/g, '[^/]+')}/?$`);
      return { re, params: (path.match(/\{/g) ?? []).length, methods };
    });
  };
  // The Allow list per request path, computed once: polled paths repeat. Bounded (ids make paths
  // unbounded): cleared when full, which costs one recomputation per path.
  const allowed = new Map<string, string[] | null>();
  const allowOf = (path: string): string[] | null => {
    let allow = allowed.get(path);
    if (allow !== undefined) return allow;
    table ??= build();
    const hits = table.filter((t) => t.re.test(path));
    if (hits.length) {
      const fewest = Math.min(...hits.map((h) => h.params));
      allow = [...new Set(hits.filter((h) => h.params === fewest).flatMap((h) => [...h.methods]))].sort();
    } else allow = null;
    if (allowed.size >= 10_000) allowed.clear();
    allowed.set(path, allow);
    return allow;
  };
  return (req, res, next) => {
    const allow = allowOf(req.path);
    if (!allow) return next();
    if (allow.includes(req.method) || (req.method === 'HEAD' && allow.includes('GET'))) return next();
    res.setHeader('Allow', allow.join(', '));
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    throw new ApiError(405, 40501, `method ${req.method} is not allowed on ${req.path}; allowed: ${allow.join(', ')}`);
  };
}

export const notFoundHandler: RequestHandler = (req) => {
  throw notFound(`route ${req.method} ${req.path}`);
};

/** Every error leaves as an envelope; unknown errors become 50001 with a request id and no stack. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    let apiErr: ApiError;
    if (err instanceof ApiError) apiErr = err;
    else if (err?.type === 'entity.parse.failed') apiErr = validationError([{ field: 'body', message: 'malformed JSON' }]);
    else if (err?.type === 'entity.too.large') apiErr = new ApiError(413, 40001, 'request body too large', [{ field: 'body', message: 'too large' }]);
    else {
      logger.error({ err, requestId: req.requestId, method: req.method, path: req.path }, 'unhandled error');
      apiErr = new ApiError(500, 50001, 'internal error');
    }
    if (res.headersSent) return;
    const retryAfter = (apiErr.data as { retry_after_seconds?: unknown } | undefined)?.retry_after_seconds;
    if (apiErr.status === 429 && typeof retryAfter === 'number') res.setHeader('Retry-After', String(retryAfter));
    res.status(apiErr.status).json({
      code: apiErr.code,
      message: apiErr.message,
      data: apiErr.data ?? null,
      ...(apiErr.errors ? { errors: apiErr.errors } : {}),
      request_id: req.requestId,
    });
  };
}
