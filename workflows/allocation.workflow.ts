import {
  ApplicationFailure,
  ParentClosePolicy,
  allHandlersFinished,
  WorkflowIdReusePolicy,
  CancellationScope,
  condition,
  defineUpdate,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { dbActivityOptions, finalStatusOptions, notifyActivityOptions, remoteRetry } from './shared/policies.js';
import { CustomerIdKey, HostIdKey, LifecycleStatusKey } from './shared/search-attributes.js';
import { runSteps, type StepsProgress } from './shared/steps.js';
import { lease, type LeaseActor } from './lease.workflow.js';
import { releaseSignal } from './host-lock.workflow.js';
import { syncGatewayFrom } from './shared/gateway.js';
import { RENTAL_MEMO_FIELDS, childRunSummary, inheritedMemo } from './shared/child-summary.js';
import { timerSummary } from './shared/activity-summary.js';

/**
 * allocation/<allocationId>: (wait for the start) → clean leftovers of a previous tenant → create
 * the customer's OS account with a new password → inject their SSH keys → verify key login →
 * send the connection summary → active, and start `lease/<allocationId>`, which owns the rest of
 * the term. Before the summary, `gateway-sync` opens the customer's gateway entries (patch
 * `allocation-gateway-open`). Patch `allocation-lease-memo`: the lease starts with a human summary
 * and the rental's names (host, customer, username) in its memo. A failed step leaves the allocation `failed` with the step named; a retry resumes there.
 */
export const ALLOCATION_STEPS = ['clean-previous', 'create-account', 'inject-keys', 'verify-login', 'send-summary'] as const;
/** With the `vnc` option (patch `allocation-vnc`): the VNC server is deployed before the summary names it. */
export const ALLOCATION_STEPS_WITH_VNC = ['clean-previous', 'create-account', 'inject-keys', 'verify-login', 'deploy-vnc', 'send-summary'] as const;
export type AllocationStepName = (typeof ALLOCATION_STEPS_WITH_VNC)[number];

export interface AllocationInput {
  allocationId: string;
  hostId: string;
  customerId: string;
  startsAtMs: number;
  endsAtMs: number;
  bufferMs: number;
  graceMs: number;
  /** Steps already done by an earlier run (retry). */
  done?: string[];
  /** The allocation's reminder offsets (minutes before the end), handed to its lease; absent: 7/3/1 days. */
  reminderOffsetsMinutes?: number[];
  /** VNC service auto-deployment (seed 001 §3.2): TigerVNC for the customer's account, password in the vault. */
  vnc?: boolean;
}

/**
 * Cancels an allocation that has not started yet (still waiting for `starts_at`): nothing has run
 * on the host. Refused once provisioning began (reclaim or terminate instead). The handler returns
 * once the row says `cancelled` and the host lock is released.
 */
export const cancelUpdate = defineUpdate<{ cancelled: true }, [{ actor: LeaseActor; reason: string | null }]>('cancel');

const db = proxyActivities<Pick<Activities, 'setAllocationStep' | 'setAllocationStatus'>>(dbActivityOptions);
const mail = proxyActivities<Pick<Activities, 'sendConnectionSummary'>>(notifyActivityOptions);
/** Final statuses (failed / active): retried until the database takes them. */
const final = proxyActivities<Pick<Activities, 'setAllocationStatus'>>(finalStatusOptions);
const remote = proxyActivities<Pick<Activities, 'cleanPreviousTenant' | 'createCustomerAccount' | 'injectCustomerKeys' | 'verifyCustomerLogin' | 'deployVnc'>>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: remoteRetry,
});

export async function allocation(input: AllocationInput): Promise<StepsProgress> {
  const progress: StepsProgress = { phase: 'allocate', current: null, steps: {}, result: 'running' };
  let waiting = true;
  let cancel: { actor: LeaseActor; reason: string | null } | null = null;
  let cancelDone = false;
  setHandler(
    cancelUpdate,
    async (c) => {
      cancel = c;
      await condition(() => cancelDone);
      return { cancelled: true as const };
    },
    {
      validator: ({ actor }) => {
        if (!actor.roles.includes('admin') && !actor.roles.includes('operator')) throw ApplicationFailure.create({ type: 'Forbidden', message: 'cancelling an allocation needs the admin or operator role' });
        if (!waiting || cancel) throw ApplicationFailure.create({ type: 'NotPending', message: 'the allocation has started; reclaim or terminate it instead' });
      },
    },
  );

  // A timer like the former sleep (the same command), which the cancel Update can cut short.
  const wait = input.startsAtMs - Date.now();
  if (wait > 0) await condition(() => cancel !== null, wait, timerSummary((who) => `wait for the start of the rental (${who})`, input.allocationId, input.startsAtMs));
  waiting = false;
  if (cancel !== null && patched('allocation-cancel')) {
    const c: { actor: LeaseActor; reason: string | null } = cancel;
    await db.setAllocationStatus(input.allocationId, 'cancelled', { error: null, terminateReason: c.reason ? `cancelled by ${c.actor.username}: ${c.reason}` : `cancelled by ${c.actor.username}`, onlyFrom: ['pending'] });
    upsertSearchAttributes([{ key: LifecycleStatusKey, value: 'cancelled' }]);
    try {
      await getExternalWorkflowHandle(`host-lock/${input.hostId}`).signal(releaseSignal, { allocationId: input.allocationId });
    } catch {
      // The lock already let go: nothing to release.
    }
    cancelDone = true;
    progress.result = 'failed';
    progress.detail = { cancelledBy: c.actor.username };
    await condition(allHandlersFinished);
    return progress;
  }

  await db.setAllocationStatus(input.allocationId, 'provisioning', { failedStep: null, error: null });
  upsertSearchAttributes([{ key: LifecycleStatusKey, value: 'provisioning' }]);
  // Only runs asking for VNC consult the patch: every other run keeps its command sequence and marker-free history.
  const steps: readonly AllocationStepName[] = input.vnc && patched('allocation-vnc') ? ALLOCATION_STEPS_WITH_VNC : ALLOCATION_STEPS;
  const ok = await runSteps<AllocationStepName>(progress, steps, input.done ?? [], {
    record: (step, position, status, extra) => db.setAllocationStep(input.allocationId, 'allocate', step, position, status, extra),
    run: async (step) => {
      switch (step) {
        case 'clean-previous':
          return { detail: await remote.cleanPreviousTenant(input.allocationId) };
        case 'create-account':
          return { detail: await remote.createCustomerAccount(input.allocationId) };
        case 'inject-keys': {
          const r = await remote.injectCustomerKeys(input.allocationId);
          return { skipped: r.fingerprints.length === 0, detail: r };
        }
        case 'verify-login':
          return { detail: await remote.verifyCustomerLogin(input.allocationId) };
        case 'deploy-vnc':
          return { detail: await remote.deployVnc(input.allocationId) };
        case 'send-summary': {
          // The gateway opens the customer's entries before the summary tells them where to connect.
          const gw = patched('allocation-gateway-open') ? await syncGatewayFrom(`allocation-${input.allocationId}`, 'allocation') : null;
          const sent = await mail.sendConnectionSummary(input.allocationId);
          return { detail: gw ? { ...sent, ...gw } : sent };
        }
      }
    },
  });
  if (!ok) {
    await CancellationScope.nonCancellable(() =>
      final.setAllocationStatus(input.allocationId, 'failed', { failedStep: progress.failedStep ?? null, error: progress.error ? `${progress.error.type}: ${progress.error.message}` : null }),
    );
    upsertSearchAttributes([{ key: LifecycleStatusKey, value: 'failed' }]);
    return progress;
  }
  // The lease owns the rest of the term; it outlives this workflow (ABANDON). Patch
  // `allocation-lease-memo`: the lease gets a human summary and the rental's names in its memo.
  const names = patched('allocation-lease-memo') ? inheritedMemo(RENTAL_MEMO_FIELDS) : null;
  await startChild(lease, {
    ...(names
      ? childRunSummary(`Lease of ${names.host ?? `host ${input.hostId}`}${names.customer ? ` to ${names.customer}` : ''}${names.username ? ` (account ${names.username})` : ''} until ${new Date(input.endsAtMs).toISOString().slice(0, 10)}`, { ...names, allocationId: input.allocationId })
      : {}),
    workflowId: `lease/${input.allocationId}`,
    args: [
      {
        allocationId: input.allocationId, hostId: input.hostId, customerId: input.customerId, endsAtMs: input.endsAtMs, bufferMs: input.bufferMs, graceMs: input.graceMs,
        ...(input.reminderOffsetsMinutes?.length ? { reminderOffsetsMinutes: input.reminderOffsetsMinutes } : {}),
      },
    ],
    parentClosePolicy: ParentClosePolicy.ABANDON,
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    typedSearchAttributes: [
      { key: HostIdKey, value: input.hostId },
      { key: CustomerIdKey, value: input.customerId },
      { key: LifecycleStatusKey, value: 'active' },
    ],
  });
  // Active only once the lease runs, so extend / return / terminate find it.
  // (Unless the lease already moved on: a term shorter than provisioning.)
  await CancellationScope.nonCancellable(() => final.setAllocationStatus(input.allocationId, 'active', { failedStep: null, error: null, onlyFrom: ['provisioning'] }));
  upsertSearchAttributes([{ key: LifecycleStatusKey, value: 'active' }]);
  progress.result = 'done';
  return progress;
}
