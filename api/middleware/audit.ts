import type { Request, RequestHandler, Response } from 'express';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Logger } from '../../config/logger.js';
import { appendAudit } from '../../db/audit/service.js';
import { auditScope, type AuditActor } from '../../db/audit/context.js';
import { evaluateForbiddenRule, type SecurityRuleSettings } from '../../db/audit/security-rules.js';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function requestActor(req: Request): AuditActor {
  const u = req.user;
  const base = { ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null, requestId: req.requestId ?? null };
  if (!u) return { actor: 'anonymous', actorType: 'anonymous', actorId: null, ...base };
  if (u.apiKeyId) return { actor: u.username, actorType: 'api_key', actorId: u.apiKeyId, ...base };
  return { actor: u.username, actorType: 'user', actorId: u.id, ...base };
}

/** The route template (`/api/v1/hosts/:id`), never the raw path with ids or junk in it. */
function routeOf(req: Request): string {
  const r = (req as Request & { route?: { path?: unknown } }).route?.path;
  return typeof r === 'string' ? r : '(no route)';
}

/**
 * Records every mutating request (POST/PUT/PATCH/DELETE) and every refused one (401/403) with
 * method, route template, status and actor — so no handler can forget it. The row is committed
 * before the JSON response leaves (responses sent otherwise are recorded on `finish`). Handlers add
 * their own rows with before/after in their transaction (same request id). Never records bodies.
 */
export function auditRequests(deps: { em: SqlEntityManager; logger: Logger; securityRules?: SecurityRuleSettings }): RequestHandler {
  return (req, res, next) => {
    const started = Date.now();
    let done = false;
    let errorCode: number | undefined;
    let errorMessage: string | undefined;
    const mutating = MUTATING.has(req.method);
    const recorded = (status: number) => mutating || status === 401 || status === 403;
    const record = async (r: Response) => {
      if (done) return;
      const status = r.statusCode;
      if (!recorded(status)) return;
      done = true;
      const actor = requestActor(req);
      const route = routeOf(req);
      try {
        await appendAudit(deps.em, {
          ...actor,
          action: `http.${req.method.toLowerCase()}`,
          targetType: 'route',
          targetId: `${req.method} ${route}`,
          result: status < 400 ? 'success' : 'failure',
          reason: status < 400 ? null : `${status}${errorCode ? ` ${errorCode}` : ''}${errorMessage ? `: ${errorMessage}` : ''}`,
          detail: { method: req.method, route, status, duration_ms: Date.now() - started, ...(route === '(no route)' ? { path: req.path.slice(0, 200) } : {}) },
        });
        if (status === 403 && deps.securityRules) await evaluateForbiddenRule(deps.em, deps.securityRules, actor, new Date());
      } catch (err) {
        deps.logger.error({ err, requestId: req.requestId }, 'audit: could not record request');
      }
    };
    const json = res.json.bind(res);
    res.json = (body: unknown) => {
      if (res.statusCode >= 400 && body && typeof body === 'object') {
        const b = body as { code?: unknown; message?: unknown };
        if (typeof b.code === 'number') errorCode = b.code;
        if (typeof b.message === 'string') errorMessage = b.message.slice(0, 300);
      }
      // A read answered 2xx/404/…: nothing to record, the body leaves now (no promise per request).
      if (done || !recorded(res.statusCode)) return json(body);
      void record(res).finally(() => json(body));
      return res;
    };
    res.on('finish', () => void record(res));
    auditScope.run({ actor: () => requestActor(req) }, next);
  };
}
