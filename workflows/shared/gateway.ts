import { executeChild, log, ParentClosePolicy, patched } from '@temporalio/workflow';
import { RENTAL_MEMO_FIELDS, childRunSummary, inheritedMemo } from './child-summary.js';
import type { GatewaySyncResult } from '../../activities/gateway/gateway.activities.js';

/**
 * Runs `gateway-sync/<trigger>` as a child and waits for it. A lifecycle never fails because the
 * gateway refused its config (the drift schedule and the next change retry); the outcome goes
 * into the caller's step detail. Deterministic: used only behind the callers' patches.
 */
export async function syncGatewayFrom(trigger: string, reason: string): Promise<{ gateway: GatewaySyncResult['status'] | 'failed'; error?: string }> {
  try {
    // Patch `gateway-sync-memo`: the sync says whose change it carries (the caller's names).
    const names = patched('gateway-sync-memo') ? inheritedMemo(RENTAL_MEMO_FIELDS) : null;
    const r = await executeChild('gatewaySync', {
      ...(names ? childRunSummary(`Gateway sync for the ${reason} of ${names.host ?? trigger}${names.customer ? ` (${names.customer})` : ''}`, names) : {}),
      workflowId: `gateway-sync/${trigger}`,
      args: [{ reason }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
    });
    return { gateway: (r as GatewaySyncResult).status };
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    log.warn('gateway-sync failed', { trigger, error: cause });
    return { gateway: 'failed', error: String(cause).slice(0, 500) };
  }
}
