import { Router } from 'express';
import type { AppDeps } from '../../deps.js';
import type { OpenAPIRegistry } from '../../openapi.js';
import { z } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { appendAudit } from '../../../db/audit/service.js';
import { auditDto, listAudit, type AuditFilter } from '../../../db/audit/query.js';
import { AuditEventDto, AuditExportQuery, AuditQuery, LoginEventDto, LoginEventQuery, SecurityEventDto, SecurityEventQuery, keysetPage } from './schema.js';
import { listLoginEvents, listSecurityEvents, parseCursor, streamExport } from './service.js';

const filterOf = (q: z.infer<typeof AuditExportQuery>): AuditFilter => ({ actor: q.actor, action: q.action, targetType: q.target_type, targetId: q.target_id, result: q.result, from: q.from, to: q.to });

/** The audit trail, the login log and security events (read side; writes happen everywhere else). */
export function auditRoutes(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/audit-events',
    summary: 'Audit events, newest first, filtered; keyset pagination (pass next_cursor as cursor)',
    tags: ['audit'],
    permission: 'audit.read',
    query: AuditQuery,
    response: keysetPage(AuditEventDto),
    handler: async ({ query }) => {
      const page = await listAudit(deps.em, filterOf({ ...query, format: 'json' }), { limit: query.limit, cursor: parseCursor(query.cursor) });
      return { items: page.items.map(auditDto), next_cursor: page.nextCursor };
    },
  });
  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/audit-events/export',
    summary: 'Export matching audit events as CSV or a JSON array, streamed from the database (oldest first); the export itself is audited',
    tags: ['audit'],
    permission: 'audit.export',
    query: AuditExportQuery,
    response: z.array(AuditEventDto),
    // Streamed, not enveloped: CSV (format=csv, one header row) or a bare JSON array of events.
    rawResponse: {
      description: 'The matching events, oldest first, as an attachment: CSV with a header row (format=csv) or a JSON array (format=json); not the {code, message, data} envelope',
      contentTypes: {
        'text/csv': z.string().openapi({ description: 'Header row then one row per event; columns as the JSON fields' }),
        'application/json': z.array(AuditEventDto),
      },
    },
    handler: async ({ query, res }) => {
      const filter = filterOf(query);
      await appendAudit(deps.em, { action: 'audit.export', targetType: 'audit-events', targetId: query.format, detail: { format: query.format, filter: { ...filter, from: filter.from?.toISOString(), to: filter.to?.toISOString() } } });
      await streamExport(deps.em, res, filter, query.format);
      return undefined as never;
    },
  });
  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/login-events',
    summary: 'Login log (success, failure reason, lockout, MFA, refresh-token reuse), newest first; keyset pagination',
    tags: ['audit'],
    permission: 'audit.read',
    query: LoginEventQuery,
    response: keysetPage(LoginEventDto),
    handler: ({ query }) => listLoginEvents(deps.em, query),
  });
  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/security-events',
    summary: 'Security events raised by the alert rules (repeated login failures, new IP, off-hours, refresh reuse, repeated 403s)',
    tags: ['audit'],
    permission: 'audit.read',
    query: SecurityEventQuery,
    response: keysetPage(SecurityEventDto),
    handler: ({ query }) => listSecurityEvents(deps.em, query),
  });
  return r;
}
