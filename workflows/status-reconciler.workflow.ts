import { patched, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { ReconcileResult } from '../activities/db/reconcile.activities.js';
import { dbRetry, remoteRetry } from './shared/policies.js';

/**
 * Run by the Temporal Schedule `status-reconciler`: rows whose workflow is closed (or was never
 * started) but whose status is not final — a request stuck in `provisioning`, an allocation in
 * `provisioning` or `reclaiming`, a host in `onboarding` — get a final status with the reason
 * (`failed`, so `/process` works again), and are reported in the result and the worker log.
 * Then (patch `pending-passwords`) every host account whose password change has been pending for
 * a while is reconciled: the pending password, then the current one, is tried on the host and the
 * one that logs in is kept (activities/remote/pending-password.ts).
 */
const db = proxyActivities<Pick<Activities, 'reconcileStatuses'>>({ startToCloseTimeout: '2 minutes', retry: dbRetry });
const remote = proxyActivities<Pick<Activities, 'reconcilePendingPasswords'>>({ startToCloseTimeout: '10 minutes', heartbeatTimeout: '1 minute', retry: remoteRetry });

export async function statusReconciler(input: { minAgeMs?: number; passwordMinAgeMs?: number } = {}): Promise<ReconcileResult & { passwords?: Awaited<ReturnType<Activities['reconcilePendingPasswords']>> }> {
  const result = await db.reconcileStatuses({ minAgeMs: input.minAgeMs });
  if (!patched('pending-passwords')) return result;
  return { ...result, passwords: await remote.reconcilePendingPasswords({ minAgeMs: input.passwordMinAgeMs }) };
}
