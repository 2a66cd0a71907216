import type { SqlEntityManager } from '@mikro-orm/sql';
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Logger } from '../../config/logger.js';
import { AccountOpeningRequestSchema, AllocationSchema, HostSchema, type RequestStatus } from '../../db/entities/index.js';

/** One row whose workflow has closed while the row still says the lifecycle is under way. */
export interface ReconciledRow {
  kind: 'account-opening' | 'allocation' | 'reclaim' | 'host-onboarding';
  id: string;
  workflowId: string;
  /** Temporal's status of the workflow (COMPLETED, FAILED, TERMINATED, TIMED_OUT, CANCELLED, NOT_FOUND). */
  workflowStatus: string;
  from: string;
  to: string;
}

export interface ReconcileResult {
  checked: number;
  fixed: ReconciledRow[];
}

type Closed = { status: string; result?: unknown } | null;

const FINAL_REQUEST_PHASES: readonly RequestStatus[] = ['done', 'failed', 'rejected', 'withdrawn', 'expired'];

/**
 * What the status-reconciler Schedule runs: finds rows whose workflow is closed (or was never
 * started) but whose status is not final, sets a final status with the reason, and reports them.
 * Only rows untouched for `minAgeMs` are considered, so a row the API just moved (e.g. `process`
 * setting a failed request back in motion before it starts the new run) is left alone.
 */
export function createReconcileActivities(deps: { em: SqlEntityManager; logger: Logger; client?: Client }) {
  const clientOf = (): Client => deps.client ?? Context.current().client;

  /** null while the workflow runs; its close status (and a completed run's result) otherwise. */
  async function closed(client: Client, workflowId: string): Promise<Closed> {
    const h = client.workflow.getHandle(workflowId);
    try {
      const d = await h.describe();
      if (d.status.name === 'RUNNING') return null;
      if (d.status.name === 'COMPLETED') return { status: d.status.name, result: await h.result().catch(() => undefined) };
      return { status: d.status.name };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return { status: 'NOT_FOUND' };
      throw err;
    }
  }

  return {
    async reconcileStatuses(input: { minAgeMs?: number } = {}): Promise<ReconcileResult> {
      const client = clientOf();
      const before = new Date(Date.now() - (input.minAgeMs ?? 2 * 60_000));
      const em = deps.em.fork();
      const fixed: ReconciledRow[] = [];
      let checked = 0;
      const reason = (workflowId: string, status: string) =>
        status === 'NOT_FOUND' ? `workflow ${workflowId} was never started or is gone` : `workflow ${workflowId} ended ${status} without recording a final status`;

      for (const row of await em.find(AccountOpeningRequestSchema, { status: { $in: ['pending', 'approved', 'provisioning'] }, updatedAt: { $lt: before } })) {
        checked++;
        const workflowId = `account-opening/${row.id}`;
        const c = await closed(client, workflowId);
        if (!c) continue;
        const from = row.status;
        const state = c.result as { phase?: RequestStatus; hostAccountId?: string; error?: { type: string; message: string } } | undefined;
        if (state?.phase && FINAL_REQUEST_PHASES.includes(state.phase)) {
          // The run finished and knows its outcome: record that (a missed final write).
          row.status = state.phase;
          if (state.phase === 'done' && state.hostAccountId) row.hostAccountId = state.hostAccountId;
          if (state.phase === 'failed') row.failureType = state.error?.type ?? 'Reconciled';
          row.resultMessage = `${state.error ? `${state.error.type}: ${state.error.message}; ` : ''}final status recorded by the status reconciler`.slice(0, 2000);
        } else {
          row.status = 'failed';
          row.failureType = 'Reconciled';
          row.resultMessage = `${reason(workflowId, c.status)}; marked failed by the status reconciler (process it again to retry)`;
        }
        fixed.push({ kind: 'account-opening', id: row.id, workflowId, workflowStatus: c.status, from, to: row.status });
      }

      for (const a of await em.find(AllocationSchema, { status: { $in: ['provisioning', 'reclaiming'] }, updatedAt: { $lt: before } })) {
        checked++;
        const reclaiming = a.status === 'reclaiming';
        const workflowId = `${reclaiming ? 'reclaim' : 'allocation'}/${a.id}`;
        const c = await closed(client, workflowId);
        if (!c) continue;
        const from = a.status;
        a.status = reclaiming ? 'reclaim-failed' : 'failed';
        a.error = `${reason(workflowId, c.status)}; marked ${a.status} by the status reconciler`;
        fixed.push({ kind: reclaiming ? 'reclaim' : 'allocation', id: a.id, workflowId, workflowStatus: c.status, from, to: a.status });
      }

      for (const h of await em.find(HostSchema, { status: 'onboarding', updatedAt: { $lt: before } })) {
        checked++;
        const workflowId = `host-onboarding/${h.id}`;
        const c = await closed(client, workflowId);
        if (!c) continue;
        const result = c.result as { result?: string } | undefined;
        h.status = result?.result === 'online' ? 'online' : 'failed';
        fixed.push({ kind: 'host-onboarding', id: h.id, workflowId, workflowStatus: c.status, from: 'onboarding', to: h.status });
      }

      await em.flush();
      for (const f of fixed) deps.logger.warn(f, 'status reconciler: workflow closed but its row was not final; fixed');
      if (fixed.length === 0) deps.logger.debug({ checked }, 'status reconciler: nothing to fix');
      return { checked, fixed };
    },
  };
}
