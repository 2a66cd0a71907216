import {
  ApplicationFailure,
  condition,
  defineQuery,
  defineUpdate,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { TaskReport } from '../activities/remote/allocation.activities.js';
import { dbActivityOptions, finalStatusOptions, notifyActivityOptions, remoteRetry } from './shared/policies.js';
import { LifecycleStatusKey } from './shared/search-attributes.js';
import { runSteps, type StepsProgress } from './shared/steps.js';
import { releaseSignal } from './host-lock.workflow.js';
import { actorMay } from './shared/actor.js';
import { syncGatewayFrom } from './shared/gateway.js';
import { decisionTrace } from './shared/decision-trace.js';
import { timerSummary } from './shared/activity-summary.js';

/**
 * reclaim/<allocationId>: close the tenant's gateway entries (`gateway-sync`, patch
 * `reclaim-gateway-close`) and end its browser sessions → check what the customer still has on the host → revoke keys → lock the
 * account (password and account expired) → stop tasks (notify, wait the grace period or an admin's
 * `force`, then SIGTERM, then end everything of the uid: crontab, at jobs, lingering / systemd
 * user manager, attributed containers, SIGSTOP+SIGKILL until no process is left) → remove crontab,
 * temp files and the uid's other files → delete the account and its home → restore the environment
 * template → verify nothing of the uid is left → allocation `reclaimed`, host `online`, host lock
 * released. Keys and login go first, so the tenant cannot log back in and respawn work between
 * the steps.
 * Every step is idempotent; a failure leaves the host in `maintenance` with the step named, and a
 * retry (`POST /allocations/:id/reclaim`) resumes at that step.
 *
 * Patch `reclaim-notify`: the outcome reaches people — reclaim.done (the customer user and whoever
 * manages allocations) and reclaim.failed (those managing allocations), plus subscribers.
 */
export const RECLAIM_STEPS = ['check-tasks', 'revoke-keys', 'lock-account', 'stop-tasks', 'clean-leftovers', 'delete-account', 'restore-template', 'verify-clean', 'release-host'] as const;
/**
 * The order before patch `reclaim-lock-before-stop` (tasks were stopped before keys and login were
 * taken away): runs started by older code keep it when they replay.
 */
export const RECLAIM_STEPS_BEFORE_LOCK_FIRST = ['check-tasks', 'stop-tasks', 'revoke-keys', 'lock-account', 'clean-leftovers', 'delete-account', 'restore-template', 'verify-clean', 'release-host'] as const;
/** Reclaim of an allocation with a VNC service (patch `reclaim-vnc`): the server stops first, like the tenant's other remote access. */
export const RECLAIM_STEPS_WITH_VNC = ['stop-vnc', ...RECLAIM_STEPS] as const;
export type ReclaimStepName = (typeof RECLAIM_STEPS_WITH_VNC)[number];

export interface ReclaimInput {
  allocationId: string;
  hostId: string;
  /** How long running tasks get before they are stopped. */
  graceMs: number;
  /** Steps done by an earlier run (retry). */
  done?: string[];
}

export const reclaimProgressQuery = defineQuery<StepsProgress>('progress');
export const forceUpdate = defineUpdate<StepsProgress, [{ actor: { id: string; username: string; roles: string[]; permissions?: string[] } }]>('force');

const dbActivities = proxyActivities<Pick<Activities, 'setAllocationStep' | 'finishReclaim' | 'notifyRunningTasks' | 'allocationTemplate' | 'endAllocationSessions' | 'allocationHasVnc'>>(dbActivityOptions);
const notifierActivities = proxyActivities<Pick<Activities, 'notify'>>(notifyActivityOptions);
/** The final status of a failed reclaim: retried until the database takes it. */
const finalActivities = proxyActivities<Pick<Activities, 'failReclaim'>>(finalStatusOptions);
const remoteActivities = proxyActivities<
  Pick<Activities, 'checkRunningTasks' | 'stopCustomerTasks' | 'revokeCustomerKeys' | 'lockCustomerAccount' | 'cleanCustomerLeftovers' | 'deleteCustomerAccount' | 'verifyReclaimClean' | 'removeVnc'>
>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: remoteRetry,
});
const templateActivities = proxyActivities<Pick<Activities, 'applyEnvTemplate'>>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '2 minutes',
  retry: remoteRetry,
});

export async function reclaim(input: ReclaimInput): Promise<StepsProgress> {
  const progress: StepsProgress = { phase: 'reclaim', current: null, steps: {}, result: 'running' };
  let forced = false;
  let tasks: TaskReport | undefined;
  setHandler(reclaimProgressQuery, () => progress);
  // An admin's `force` (POST /allocations/:id/reclaim/force) takes the steps after it into its
  // trace: stopping the tasks, deleting the account (their SSH commands), the outcome notices.
  const forcedBy = decisionTrace();
  const db = forcedBy.wrap(dbActivities);
  const notifier = forcedBy.wrap(notifierActivities);
  const final = forcedBy.wrap(finalActivities);
  const remote = forcedBy.wrap(remoteActivities);
  const template = forcedBy.wrap(templateActivities);
  setHandler(
    forceUpdate,
    ({ actor }) => {
      forcedBy.capture();
      forced = true;
      progress.detail = { ...progress.detail, forcedBy: actor.username };
      return progress;
    },
    {
      validator: ({ actor }) => {
        if (!actorMay(actor, 'allocation.terminate', ['admin'])) throw ApplicationFailure.create({ type: 'Forbidden', message: 'forcing a reclaim needs the allocation.terminate permission' });
        const s = progress.steps['stop-tasks'];
        if (s !== undefined && s !== 'pending' && s !== 'waiting') throw ApplicationFailure.create({ type: 'NotPending', message: 'reclaim is past the grace period' });
      },
    },
  );
  // Keys and login go before tasks are stopped; stop-tasks always runs (it also removes crontab,
  // at jobs and lingering, which need no grace); attributed containers count as running work.
  const lockFirst = patched('reclaim-lock-before-stop');
  const notifying = patched('reclaim-notify');
  /** A message that cannot be delivered is in the send log; it never fails the reclaim. */
  const tell = async (event: 'reclaim.done' | 'reclaim.failed', data: Record<string, string>, owner: boolean) => {
    if (!notifying) return;
    try {
      await notifier.notify({ event, key: `reclaim/${input.allocationId}/${workflowInfo().runId}/${event.split('.')[1]}`, to: { permission: 'allocation.manage', owner }, data: { allocationId: input.allocationId, ...data } });
    } catch {
      // recorded in the send log by the activity
    }
  };
  upsertSearchAttributes([{ key: LifecycleStatusKey, value: 'reclaiming' }]);
  // The row is `reclaiming` already (lease / API set it): the gateway closes the tenant's entries first.
  // ... and its browser sessions (web terminal, VNC) end (remote_sessions terminate requests).
  if (patched('reclaim-gateway-close')) {
    const sessions = await db.endAllocationSessions(input.allocationId);
    progress.detail = { ...progress.detail, sessionsEnded: sessions.requested, ...(await syncGatewayFrom(`reclaim-${input.allocationId}`, 'reclaim')) };
  }

  const busy = (t: TaskReport) => t.processes + t.gpuProcesses + t.sessions + (lockFirst ? t.containers : 0) > 0;
  const base: readonly ReclaimStepName[] = lockFirst ? RECLAIM_STEPS : RECLAIM_STEPS_BEFORE_LOCK_FIRST;
  // The platform's VNC server is remote access, not the tenant's work: it stops before the tasks
  // are counted (else every VNC rental would wait out the grace period for its own Xvnc).
  const steps: readonly ReclaimStepName[] = patched('reclaim-vnc') && (await db.allocationHasVnc(input.allocationId)) ? ['stop-vnc', ...base] : base;
  const ok = await runSteps<ReclaimStepName>(progress, steps, input.done ?? [], {
    record: (step, position, status, extra) => db.setAllocationStep(input.allocationId, 'reclaim', step, position, status, extra),
    run: async (step) => {
      switch (step) {
        case 'stop-vnc':
          return { detail: await remote.removeVnc(input.allocationId) };
        case 'check-tasks':
          tasks = await remote.checkRunningTasks(input.allocationId);
          return { detail: tasks };
        case 'stop-tasks': {
          tasks ??= await remote.checkRunningTasks(input.allocationId);
          if (!busy(tasks)) {
            if (!lockFirst) return { skipped: true, detail: { reason: 'nothing running' } };
            return { detail: { ...(await remote.stopCustomerTasks(input.allocationId)), forced, reason: 'nothing running' } };
          }
          if (!forced) {
            const graceEndsAtMs = Date.now() + input.graceMs;
            await db.notifyRunningTasks(input.allocationId, tasks.sample, graceEndsAtMs);
            progress.steps['stop-tasks'] = 'waiting';
            await db.setAllocationStep(input.allocationId, 'reclaim', step, steps.indexOf(step), 'waiting', { detail: { graceEndsAt: new Date(graceEndsAtMs).toISOString(), running: tasks.sample } });
            await condition(() => forced, input.graceMs, timerSummary((who) => `grace period for the running tasks of ${who}`, input.allocationId, graceEndsAtMs));
            progress.steps['stop-tasks'] = 'running';
          }
          return { detail: { ...(await remote.stopCustomerTasks(input.allocationId)), forced } };
        }
        case 'revoke-keys':
          return { detail: await remote.revokeCustomerKeys(input.allocationId) };
        case 'lock-account':
          return { detail: await remote.lockCustomerAccount(input.allocationId) };
        case 'clean-leftovers':
          return { detail: await remote.cleanCustomerLeftovers(input.allocationId) };
        case 'delete-account':
          return { detail: await remote.deleteCustomerAccount(input.allocationId) };
        case 'restore-template': {
          const templateId = await db.allocationTemplate(input.allocationId);
          if (!templateId) return { skipped: true, detail: { reason: 'host has no environment template' } };
          return { detail: await template.applyEnvTemplate(input.hostId, templateId) };
        }
        case 'verify-clean':
          return { detail: await remote.verifyReclaimClean(input.allocationId) };
        case 'release-host':
          await db.finishReclaim(input.allocationId);
          try {
            await getExternalWorkflowHandle(`host-lock/${input.hostId}`).signal(releaseSignal, { allocationId: input.allocationId });
          } catch {
            // No lock running (released already, or it let go as stale): nothing to release.
          }
          return {};
      }
    },
  });
  if (!ok) {
    await final.failReclaim(input.allocationId, progress.failedStep!, `${progress.error!.type}: ${progress.error!.message}`);
    upsertSearchAttributes([{ key: LifecycleStatusKey, value: 'reclaim-failed' }]);
    await tell('reclaim.failed', { step: progress.failedStep!, error: `${progress.error!.type}: ${progress.error!.message}` }, false);
    return progress;
  }
  progress.result = 'done';
  upsertSearchAttributes([{ key: LifecycleStatusKey, value: 'reclaimed' }]);
  await tell('reclaim.done', {}, true);
  return progress;
}
