import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { GatewaySyncResult } from '../activities/gateway/gateway.activities.js';

/**
 * gateway-sync/<trigger>: turns the remote-access entries into the gateway's one nginx config and
 * makes nginx run it (activities/gateway/gateway.activities.ts: render, `nginx -t` on a candidate,
 * atomic rename, `nginx -s reload`). Started on every access change: a host's access switched on
 * or off (`gateway-sync/host-<hostId>/<ms>`), an allocation opening its entries
 * (`gateway-sync/allocation-<id>`), a reclaim closing them (`gateway-sync/reclaim-<id>`), a host
 * retired; and by the `gateway-sync` Schedule for drift (a hand-edited file, a dead nginx).
 * Each run renders the database's state at that moment, so runs started close together converge.
 * A refused config fails the run (non-retryable) naming the entry; the running config stays.
 */
export interface GatewaySyncInput {
  reason: string;
  /** Who changed access (audit); absent for the schedule. */
  actor?: string;
}

const gateway = proxyActivities<Pick<Activities, 'syncGateway'>>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10, nonRetryableErrorTypes: ['GatewayConfigInvalid'] },
});

export async function gatewaySync(input: GatewaySyncInput): Promise<GatewaySyncResult> {
  return gateway.syncGateway({ reason: input.reason, ...(input.actor ? { actor: input.actor } : {}) });
}
