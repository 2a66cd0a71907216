import { z } from '../../openapi.js';
import { SECURITY_EVENT_KINDS, LOGIN_EVENT_KINDS } from '../../../db/entities/index.js';

const time = z.string().datetime({ offset: true }).transform((s) => new Date(s));
const cursor = z.string().max(200).optional().openapi({ description: 'Opaque keyset cursor: next_cursor of the previous page' });
const limit = z.coerce.number().int().min(1).max(500).default(50);

export const AuditQuery = z.object({
  actor: z.string().max(200).optional().openapi({ description: 'Actor display name, user id, API key id or workflow id' }),
  action: z.string().max(100).optional().openapi({ description: 'Exact action, or a prefix ending in * (e.g. `host.*`)' }),
  target_type: z.string().max(50).optional(),
  target_id: z.string().max(200).optional(),
  result: z.enum(['success', 'failure']).optional(),
  from: time.optional().openapi({ description: 'Inclusive lower bound (ISO 8601)' }),
  to: time.optional().openapi({ description: 'Exclusive upper bound (ISO 8601)' }),
  limit,
  cursor,
});
export const AuditExportQuery = AuditQuery.omit({ limit: true, cursor: true }).extend({ format: z.enum(['csv', 'json']).default('json') });

export const AuditEventDto = z
  .object({
    id: z.string(), seq: z.number().nullable(), at: z.string(), actor: z.string(), actor_type: z.string(), actor_id: z.string().nullable(),
    action: z.string(), target_type: z.string(), target_id: z.string(), result: z.string(), reason: z.string().nullable(),
    ip: z.string().nullable(), user_agent: z.string().nullable(), request_id: z.string().nullable(),
    before: z.record(z.string(), z.unknown()).nullable(), after: z.record(z.string(), z.unknown()).nullable(), detail: z.record(z.string(), z.unknown()).nullable(),
    prev_hash: z.string().nullable(), hash: z.string().nullable(),
  })
  .openapi('AuditEvent');
export const keysetPage = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), next_cursor: z.string().nullable() });

export const LoginEventQuery = z.object({
  user_id: z.string().uuid().optional(),
  username: z.string().max(64).optional(),
  kind: z.enum(LOGIN_EVENT_KINDS).optional(),
  from: time.optional(),
  to: time.optional(),
  limit,
  cursor,
});
export const LoginEventDto = z
  .object({ id: z.string(), at: z.string(), kind: z.string(), user_id: z.string().nullable(), username: z.string().nullable(), session_id: z.string().nullable(), ip: z.string().nullable(), user_agent: z.string().nullable(), reason: z.string().nullable(), security_event: z.boolean() })
  .openapi('LoginEvent');

export const SecurityEventQuery = z.object({
  kind: z.enum(SECURITY_EVENT_KINDS).optional(),
  user_id: z.string().uuid().optional(),
  from: time.optional(),
  to: time.optional(),
  limit,
  cursor,
});
export const SecurityEventDto = z
  .object({ id: z.string(), at: z.string(), kind: z.string(), severity: z.string(), user_id: z.string().nullable(), username: z.string().nullable(), ip: z.string().nullable(), detail: z.record(z.string(), z.unknown()).nullable() })
  .openapi('SecurityEvent');
