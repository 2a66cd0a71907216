// Security events (db/audit/security-rules.ts) → notifications. The security_events row is the
// outbox: the rules insert it in the API process, and the `security-alerts` Schedule hands every
// row not yet `notified_at` to the notification center as event `security.<kind>`, keyed by the
// row id, so a retry (or two overlapping runs) never sends a message twice. Who hears it: whoever
// may read the audit trail (`audit.read`), and for alerts about one account (login failures, a new
// address, a reused refresh token) that account's user too; subscriptions add more.
import { Context } from '@temporalio/activity';
import { SecurityEventSchema, type SecurityEventKind } from '../../db/entities/index.js';
import { createEmitter, type NotifyDeps } from './notify.activities.js';
import type { EventName } from './events.js';

const TO_THE_USER: ReadonlySet<SecurityEventKind> = new Set(['login_failures', 'new_ip_login', 'refresh_token_reuse']);

/** Progress for Temporal (a dead worker's batch is retried after the heartbeat timeout); a no-op outside an activity. */
function heartbeat(n: number) {
  try {
    Context.current().heartbeat(n);
  } catch {
    // called outside an activity (tests, the CLI)
  }
}

export function createSecurityAlertActivities(deps: NotifyDeps) {
  const emit = createEmitter(deps);
  /** Delivers up to `limit` undelivered security events, oldest first; `more` when others wait. */
  async function deliverSecurityAlerts(input: { limit?: number } = {}): Promise<{ delivered: number; more: boolean }> {
    const limit = Math.min(Math.max(input.limit ?? 50, 1), 500);
    const em = deps.em.fork();
    const rows = await em.find(SecurityEventSchema, { notifiedAt: null }, { orderBy: { at: 'asc', id: 'asc' }, limit: limit + 1 });
    let delivered = 0;
    for (const row of rows.slice(0, limit)) {
      await emit({ event: `security.${row.kind}` as EventName, key: `security-event/${row.id}`, to: { permission: 'audit.read', owner: TO_THE_USER.has(row.kind) }, data: { securityEventId: row.id } });
      await em.nativeUpdate(SecurityEventSchema, { id: row.id, notifiedAt: null }, { notifiedAt: new Date() });
      delivered++;
      heartbeat(delivered);
    }
    return { delivered, more: rows.length > limit };
  }
  return { deliverSecurityAlerts };
}
