import {
  CancellationScope,
  ApplicationFailure,
  condition,
  defineQuery,
  defineUpdate,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { OnboardingStepName } from '../db/entities/onboarding-step.entity.js';
import type { RemoteAccessSpec } from '../activities/remote/remote-access.js';
import type { StepRecord } from '../activities/remote/onboarding.activities.js';
import type { EmitInput } from '../activities/notify/events.js';
import { dbActivityOptions, finalStatusOptions, notifyActivityOptions, remoteRetry } from './shared/policies.js';
import { HostStatusKey } from './shared/search-attributes.js';
import { memoField, summary } from './shared/activity-summary.js';
import { decisionTrace } from './shared/decision-trace.js';

/**
 * host-onboarding/<hostId>: connect → collect facts → (confirm facts) → apply template →
 * configure remote access → verify → online. Each step is an idempotent activity whose status is
 * mirrored to the DB and shown by the `progress` query. A failure leaves the host `failed` with
 * the step and error readable; a retry starts a new run `fromStep` = the failed step.
 *
 * Patch `onboarding-notify`: the outcome reaches people (events host.onboarded /
 * host.onboarding_failed / host.awaiting_confirmation: whoever may onboard hosts, `host.write`,
 * plus subscribers). Runs started before it finish without these messages.
 *
 * Patch `onboarding-step-records`: a step that does remote work records its own 'running' and
 * 'done' rows (the activity's `StepRecord` argument), steps passed over are recorded as 'skipped'
 * with the next record, and the last step is recorded together with the host going online, in one
 * local activity. The same rows as before reach `host_onboarding_steps` (the API and the Web UI),
 * and the `progress` query is unchanged; a host costs 2 local activities instead of 16 (50 hosts:
 * 100 DB bookkeeping runs inside workflow tasks instead of 800). Runs started before it keep the
 * bookkeeping they started with (local with `onboarding-local-db`, dispatched before that).
 */
export const ONBOARDING_ORDER: readonly OnboardingStepName[] = ['connect', 'collect-facts', 'confirm-facts', 'apply-template', 'configure-remote-access', 'verify', 'mark-online'];

export interface OnboardingInput {
  hostId: string;
  fromStep?: OnboardingStepName;
  templateId?: string | null;
  remoteAccess?: RemoteAccessSpec | null;
  /** How long to wait for a human to confirm facts that differ from what was expected. */
  confirmTimeoutMs?: number;
}

export type StepState = 'pending' | 'running' | 'done' | 'failed' | 'skipped' | 'waiting';

export interface OnboardingProgress {
  hostId: string;
  current: OnboardingStepName | null;
  steps: Record<OnboardingStepName, StepState>;
  result: 'running' | 'online' | 'failed';
  failedStep?: OnboardingStepName;
  error?: { type: string; message: string };
  gpuDifferences?: string[];
}

export const progressQuery = defineQuery<OnboardingProgress>('progress');
export const confirmFactsUpdate = defineUpdate<OnboardingProgress, [{ accept: boolean; actor: string; note?: string }]>('confirm-facts');

const dispatchedDb = proxyActivities<Pick<Activities, 'setOnboardingStep' | 'setHostStatus'>>(dbActivityOptions);
/** Final statuses (failed / online): retried until the database takes them. */
const dispatchedFinal = proxyActivities<Pick<Activities, 'setOnboardingStep' | 'setHostStatus'>>(finalStatusOptions);
/**
 * The same bookkeeping as local activities (patch 'onboarding-local-db'): they run in the worker
 * that runs the workflow task, recorded as markers, so a step's DB record costs no task dispatch
 * through the server (it was 14 of the ~20 activities per host). The retry policies are the same;
 * a local activity retries inside the workflow task (longer backoffs as timers), which suits
 * millisecond DB writes that are idempotent upserts.
 */
const localDb = proxyLocalActivities<Pick<Activities, 'setOnboardingStep' | 'setHostStatus'>>(dbActivityOptions);
const localFinalActivities = proxyLocalActivities<Pick<Activities, 'setOnboardingStep' | 'setHostStatus' | 'recordOnboardingSteps'>>(finalStatusOptions);
const remoteActivities = proxyActivities<Pick<Activities, 'onboardConnect' | 'collectHostFacts' | 'configureRemoteAccess' | 'verifyHost'>>({
  startToCloseTimeout: '3 minutes',
  heartbeatTimeout: '30 seconds',
  retry: remoteRetry,
});
const notifierActivities = proxyActivities<Pick<Activities, 'notify'>>(notifyActivityOptions);
const templateActivities = proxyActivities<Pick<Activities, 'applyEnvTemplate'>>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '2 minutes',
  retry: remoteRetry,
});

export async function hostOnboarding(input: OnboardingInput): Promise<OnboardingProgress> {
  // A `confirm-facts` decision (POST /hosts/:id/onboarding/confirm-facts) takes the steps after it
  // into its trace: template, remote access, verify (their SSH commands), the outcome notice.
  const confirmed = decisionTrace();
  const remote = confirmed.wrap(remoteActivities);
  const notifier = confirmed.wrap(notifierActivities);
  const template = confirmed.wrap(templateActivities);
  const localFinal = confirmed.wrap(localFinalActivities);
  // Decided once at the start of the run, so every message of a patched run is sent.
  const notifying = patched('onboarding-notify');
  /** A message that cannot be delivered is in the send log; it never fails the onboarding. */
  const tell = async (event: EmitInput['event'], suffix: string, data: EmitInput['data']) => {
    if (!notifying) return;
    try {
      await notifier.notify({ event, key: `host-onboarding/${input.hostId}/${workflowInfo().runId}/${suffix}`, to: { permission: 'host.write' }, data: { hostId: input.hostId, ...data } });
    } catch {
      // recorded in the send log by the activity
    }
  };
  const start = input.fromStep ? ONBOARDING_ORDER.indexOf(input.fromStep) : 0;
  const progress: OnboardingProgress = {
    hostId: input.hostId,
    current: null,
    steps: Object.fromEntries(ONBOARDING_ORDER.map((s, i) => [s, i < start ? 'done' : 'pending'])) as OnboardingProgress['steps'],
    result: 'running',
  };
  let decision: { accept: boolean } | undefined;
  // Decided once per run, in this order; a run replays the path it started on.
  const selfRecording = patched('onboarding-step-records');
  // Runs started before the patch keep scheduling these as (dispatched) activities on replay.
  const localBookkeeping = selfRecording || patched('onboarding-local-db');
  const db = confirmed.wrap(localBookkeeping ? localDb : dispatchedDb);
  const final = confirmed.wrap(localBookkeeping ? localFinalActivities : dispatchedFinal);
  /** Steps passed over since the last record (selfRecording): recorded 'skipped' with the next one. */
  let skipped: OnboardingStepName[] = [];
  /** The record argument for the activity of `step` (selfRecording), taking the skipped steps along. */
  const recordArg = (step: OnboardingStepName): [] | [StepRecord] => {
    if (!selfRecording) return [];
    const r: StepRecord = skipped.length ? { step, skipped } : { step };
    skipped = [];
    return [r];
  };
  setHandler(progressQuery, () => progress);
  setHandler(
    confirmFactsUpdate,
    (d) => {
      confirmed.capture();
      decision = d;
      return progress;
    },
    {
      validator: (_d) => {
        if (progress.steps['confirm-facts'] !== 'waiting') throw ApplicationFailure.create({ type: 'NotPending', message: 'onboarding is not waiting for a facts confirmation' });
      },
    },
  );

  const setStatus = async (status: 'onboarding' | 'online' | 'failed') => {
    if (status === 'onboarding') await db.setHostStatus(input.hostId, status);
    else await CancellationScope.nonCancellable(() => final.setHostStatus(input.hostId, status));
    upsertSearchAttributes([{ key: HostStatusKey, value: status }]);
  };

  await setStatus('onboarding');
  for (const step of ONBOARDING_ORDER.slice(start)) {
    progress.current = step;
    try {
      const outcome = await runStep(step);
      progress.steps[step] = outcome.skipped ? 'skipped' : 'done';
      if (!selfRecording) await db.setOnboardingStep(input.hostId, step, outcome.skipped ? 'skipped' : 'done', { detail: outcome.detail ?? null });
      else if (outcome.skipped) skipped.push(step);
      else if (!outcome.recorded) await db.setOnboardingStep(input.hostId, step, 'done', { detail: outcome.detail ?? null });
    } catch (err) {
      const cause = (err as { cause?: { type?: string; message?: string } }).cause;
      progress.steps[step] = 'failed';
      progress.failedStep = step;
      progress.error = { type: cause?.type ?? (err as { type?: string }).type ?? 'Error', message: cause?.message ?? (err as Error).message };
      progress.result = 'failed';
      progress.current = null;
      const error = `${progress.error!.type}: ${progress.error!.message}`;
      if (selfRecording) {
        // The failed step, the steps passed over before it, and the host failed: one transaction.
        const writes = [...skipped.map((s) => ({ step: s, status: 'skipped' as const })), { step, status: 'failed' as const, error }];
        skipped = [];
        await CancellationScope.nonCancellable(() => localFinal.recordOnboardingSteps(input.hostId, writes, 'failed'));
        upsertSearchAttributes([{ key: HostStatusKey, value: 'failed' }]);
      } else {
        await CancellationScope.nonCancellable(() => final.setOnboardingStep(input.hostId, step, 'failed', { error }));
        await setStatus('failed');
      }
      await tell('host.onboarding_failed', 'failed', { step, error: `${progress.error.type}: ${progress.error.message}` });
      return progress;
    }
  }
  progress.current = null;
  progress.result = 'online';
  await tell('host.onboarded', 'online', {});
  return progress;

  async function runStep(step: OnboardingStepName): Promise<{ skipped?: boolean; recorded?: boolean; detail?: Record<string, unknown> }> {
    progress.steps[step] = 'running';
    if (!selfRecording) await db.setOnboardingStep(input.hostId, step, 'running');
    // With selfRecording, a step's activity records its own 'running' and 'done' (recorded: true).
    const recorded = selfRecording;
    switch (step) {
      case 'connect':
        return { recorded, detail: await remote.onboardConnect.executeWithOptions(summary('connect and pin host key', [['of', memoField('slug')]]), [input.hostId, ...recordArg(step)]) };
      case 'collect-facts': {
        const r = await remote.collectHostFacts.executeWithOptions(summary('collect facts', [['of', memoField('slug')]]), [input.hostId, ...recordArg(step)]);
        progress.gpuDifferences = r.gpuDifferences;
        return { recorded, detail: r };
      }
      case 'confirm-facts': {
        if (!progress.gpuDifferences?.length) return { skipped: true };
        progress.steps[step] = 'waiting';
        // (Nothing is ever skipped before this step: collect-facts, just before it, records itself.)
        await db.setOnboardingStep(input.hostId, step, 'waiting', { detail: { differences: progress.gpuDifferences } });
        await tell('host.awaiting_confirmation', 'confirm-facts', { differences: progress.gpuDifferences.map((d) => `  ${d}`).join('\n') });
        const answered = await condition(() => decision !== undefined, input.confirmTimeoutMs ?? 7 * 24 * 3600 * 1000);
        if (!answered) throw ApplicationFailure.nonRetryable('nobody confirmed the differing facts in time', 'ConfirmationTimeout');
        if (!decision!.accept) throw ApplicationFailure.nonRetryable(`facts rejected: ${progress.gpuDifferences.join('; ')}`, 'FactsRejected');
        // Recorded 'done' by the workflow (no activity does this step).
        return { detail: { accepted: true } };
      }
      case 'apply-template':
        if (!input.templateId) return { skipped: true };
        return { recorded, detail: await template.applyEnvTemplate(input.hostId, input.templateId, ...recordArg(step)) };
      case 'configure-remote-access':
        if (!input.remoteAccess?.enabled) return { skipped: true };
        return { recorded, detail: await remote.configureRemoteAccess.executeWithOptions(summary('configure remote access', [['of', memoField('slug')]]), [input.hostId, input.remoteAccess, ...recordArg(step)]) };
      case 'verify':
        return { recorded, detail: await remote.verifyHost.executeWithOptions(summary('verify host', [['of', memoField('slug')]]), [input.hostId, ...recordArg(step)]) };
      case 'mark-online':
        if (selfRecording) {
          // The last step and the host online in one local activity (final: retried until it is in).
          const writes = [...skipped.map((s) => ({ step: s, status: 'skipped' as const })), { step, status: 'done' as const, detail: null }];
          skipped = [];
          await CancellationScope.nonCancellable(() => localFinal.recordOnboardingSteps(input.hostId, writes, 'online'));
          upsertSearchAttributes([{ key: HostStatusKey, value: 'online' }]);
          return { recorded: true };
        }
        await setStatus('online');
        return {};
    }
  }
}
