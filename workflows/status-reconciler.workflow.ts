import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { ReconcileResult } from '../activities/db/reconcile.activities.js';
import { dbRetry } from './shared/policies.js';

/**
 * Run by the Temporal Schedule `status-reconciler`: rows whose workflow is closed (or was never
 * started) but whose status is not final — a request stuck in `provisioning`, an allocation in
 * `provisioning` or `reclaiming`, a host in `onboarding` — get a final status with the reason
 * (`failed`, so `/process` works again), and are reported in the result and the worker log.
 */
const db = proxyActivities<Pick<Activities, 'reconcileStatuses'>>({ startToCloseTimeout: '2 minutes', retry: dbRetry });

export async function statusReconciler(input: { minAgeMs?: number } = {}): Promise<ReconcileResult> {
  return db.reconcileStatuses({ minAgeMs: input.minAgeMs });
}
