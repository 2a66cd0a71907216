import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { dbRetry } from './shared/policies.js';

/**
 * Run by the Temporal Schedule `security-alerts` (every SECURITY_ALERT_INTERVAL, default 1 minute):
 * the security events raised since the last run reach people as notifications (events
 * security.<kind>, activities/notify/security-alerts.activities.ts). The rows are the outbox, each
 * message keyed by the row id: overlapping or retried runs send nothing twice.
 */
const alerts = proxyActivities<Pick<Activities, 'deliverSecurityAlerts'>>({
  // A batch is up to 50 events, each a few messages (SMTP, webhooks).
  startToCloseTimeout: '5 minutes',
  // Beats once per event: a batch whose worker died is retried within seconds, not minutes.
  heartbeatTimeout: '20 seconds',
  retry: dbRetry,
});

export async function securityAlerts(input: { batch?: number; maxBatches?: number } = {}): Promise<{ delivered: number; more: boolean }> {
  let delivered = 0;
  let more = false;
  for (let i = 0; i < (input.maxBatches ?? 20); i++) {
    const r = await alerts.deliverSecurityAlerts({ limit: input.batch ?? 50 });
    delivered += r.delivered;
    more = r.more;
    if (!more) break;
  }
  return { delivered, more };
}
