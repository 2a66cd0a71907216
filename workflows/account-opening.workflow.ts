import {
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  defineUpdate,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { EmitInput } from '../activities/notify/events.js';
import { dbActivityOptions, finalStatusOptions, notifyActivityOptions, remoteRetry } from './shared/policies.js';
import { LifecycleStatusKey } from './shared/search-attributes.js';
import { actorMay } from './shared/actor.js';
import { isSameParty } from './shared/duties.js';
import { hostChangeLocks } from './shared/host-change-lock.js';
import { memoField, summary } from './shared/activity-summary.js';
import { decisionTrace } from './shared/decision-trace.js';

/**
 * account-opening/<requestId>: request → decision (approve / reject / withdraw, or expiry) →
 * provision the OS account on the host → verify by logging in as it → done.
 * A failed run ends with status `failed`; `process` starts the same id again in `process` mode,
 * which skips the decision and re-runs provisioning idempotently.
 */
export interface AccountOpeningInput {
  requestId: string;
  applicantId: string;
  mode: 'decide' | 'process';
  /** How long the request waits for a decision before it expires. */
  decisionTimeoutMs: number;
  /** The target host (runs started before it was passed read it with `requestHostId`). */
  hostId?: string;
}

export interface Actor {
  id: string;
  username: string;
  roles: string[];
  /** Effective permissions (api/authz); absent in histories recorded before they existed. */
  permissions?: string[];
}

export type AccountOpeningPhase = 'pending' | 'approved' | 'provisioning' | 'done' | 'failed' | 'rejected' | 'withdrawn' | 'expired';

export interface AccountOpeningState {
  phase: AccountOpeningPhase;
  decidedBy?: string;
  decidedAt?: string;
  expiresAt: string;
  step?: string;
  error?: { type: string; message: string };
  hostAccountId?: string;
}

export const approveUpdate = defineUpdate<AccountOpeningState, [{ actor: Actor; notes?: string }]>('approve');
export const rejectUpdate = defineUpdate<AccountOpeningState, [{ actor: Actor; reason: string }]>('reject');
export const withdrawUpdate = defineUpdate<AccountOpeningState, [{ actor: Actor }]>('withdraw');
export const stateQuery = defineQuery<AccountOpeningState>('state');

const db = proxyActivities<Pick<Activities, 'setRequestStatus' | 'requestHostId'>>(dbActivityOptions);
const notifier = proxyActivities<Pick<Activities, 'notify'>>(notifyActivityOptions);
/**
 * Tells people (the event catalogue, activities/notify/events.ts). A notification that cannot be
 * delivered is in the send log; it never fails the request.
 */
const tell = async (event: EmitInput['event'], requestId: string, to: EmitInput['to'], suffix: string = event.split('.')[1]!) => {
  try {
    await notifier.notify({ event, key: `account-opening/${requestId}/${suffix}`, to, data: { requestId } });
  } catch {
    // recorded in the send log by the activity
  }
};
/** Final statuses (done / failed / expired / decisions): retried until the database takes them. */
const final = proxyActivities<Pick<Activities, 'setRequestStatus'>>(finalStatusOptions);
const remote = proxyActivities<Pick<Activities, 'provisionAccount' | 'verifyAccountLogin' | 'rollbackAccount'>>({
  startToCloseTimeout: '5 minutes',
  // Remote commands heartbeat while they run (executor keep-alive): a dead worker's attempt is
  // retried after 10 s instead of 30.
  heartbeatTimeout: '10 seconds',
  retry: remoteRetry,
});

export async function accountOpening(input: AccountOpeningInput): Promise<AccountOpeningState> {
  /** "alice on gpu-07", from the memo the API set (activity summaries). */
  const who = (): Array<[string, string | undefined]> => [['', memoField('username')], ['on', memoField('host')]];
  const started = new Date(workflowInfo().startTime).getTime();
  const state: AccountOpeningState = {
    phase: input.mode === 'process' ? 'approved' : 'pending',
    expiresAt: new Date(started + input.decisionTimeoutMs).toISOString(),
  };
  setHandler(stateQuery, () => state);
  const locks = hostChangeLocks();
  // What follows a decision (its status write, the notices, provisioning with its SSH commands)
  // runs in the trace of the Update that decided (POST …/approve → HandleUpdate:approve).
  const decision = decisionTrace();

  /** The `provisioning` status write when it runs beside the host work (approval-fast-path). */
  let provisioningWritten: Promise<void> = Promise.resolve();
  /** The applicant's "approved" notice when it is sent beside the host work: "done"/"failed" wait for it. */
  let approvedNoticeSent: Promise<void> = Promise.resolve();
  /** The decision's fields, carried by the fast path's later writes (it has no separate `approved` write). */
  let decisionFields: { approvedById?: string | null; decidedAt?: string | null; approvalNotes?: string | null } = {};
  let notes: string | null = null;
  let reason: string | null = null;
  const requirePending = () => {
    if (state.phase !== 'pending') throw ApplicationFailure.create({ type: 'NotPending', message: `request is ${state.phase}, not pending` });
  };
  setHandler(
    approveUpdate,
    ({ actor, notes: n }) => {
      decision.capture();
      state.phase = 'approved';
      state.decidedBy = actor.id;
      state.decidedAt = new Date().toISOString();
      notes = n?.trim() || null;
      // A copy: the main body moves on to `provisioning` in the same activation (approval-fast-path).
      return { ...state };
    },
    {
      validator: ({ actor }) => {
        requirePending();
        if (!actorMay(actor, 'account_opening.approve', ['approver', 'admin'])) throw forbidden('approving needs the account_opening.approve permission');
        if (isSameParty(actor, { id: input.applicantId })) throw forbidden('an applicant cannot approve their own request');
      },
    },
  );
  setHandler(
    rejectUpdate,
    ({ actor, reason: r }) => {
      decision.capture();
      state.phase = 'rejected';
      state.decidedBy = actor.id;
      state.decidedAt = new Date().toISOString();
      reason = r.trim();
      return state;
    },
    {
      validator: ({ actor, reason }) => {
        requirePending();
        if (!actorMay(actor, 'account_opening.approve', ['approver', 'admin'])) throw forbidden('rejecting needs the account_opening.approve permission');
        if (isSameParty(actor, { id: input.applicantId })) throw forbidden('an applicant cannot decide their own request');
        if (!reason || !reason.trim()) throw ApplicationFailure.create({ type: 'Invalid', message: 'reason: a reason is required to reject' });
      },
    },
  );
  setHandler(
    withdrawUpdate,
    () => {
      decision.capture();
      state.phase = 'withdrawn';
      state.decidedAt = new Date().toISOString();
      return state;
    },
    {
      validator: ({ actor }) => {
        requirePending();
        if (actor.id !== input.applicantId) throw forbidden('only the applicant can withdraw a request');
      },
    },
  );

  // `notify-events` (notification center): approvers hear of a new request, the applicant of the
  // approval and of a failure. Runs started before it replay without these activities.
  const notifyEvents = patched('notify-events');
  if (input.mode === 'decide') {
    if (notifyEvents) await tell('account_opening.submitted', input.requestId, { permission: 'account_opening.approve', exceptUserIds: [input.applicantId] });
    const decided = await condition(() => state.phase !== 'pending', input.decisionTimeoutMs);
    if (!decided) {
      state.phase = 'expired';
      await CancellationScope.nonCancellable(() => final.setRequestStatus(input.requestId, { status: 'expired', resultMessage: 'no decision before the request expired' }));
      await tell('account_opening.expired', input.requestId, { userIds: [input.applicantId] });
      return publish(state);
    }
    return decision.run(async () => {
      // Patch `approval-fast-path`: an approval goes straight to provisioning. One status write
      // carries the decision and `provisioning`, the host id comes with the input, and the
      // applicant's "approved" notice is sent while the host work runs (awaited before the run
      // ends): the approval's workflow task schedules all three with the lock request, instead of
      // six activities one after the other before the first command (bench/remote-exec figure 4).
      if (state.phase === 'approved' && notifyEvents && patched('approval-fast-path')) {
        const approvedNotice = tell('account_opening.approved', input.requestId, { userIds: [input.applicantId] });
        approvedNoticeSent = approvedNotice;
        try {
          state.phase = 'provisioning';
          upsertSearchAttributes([{ key: LifecycleStatusKey, value: 'provisioning' }]);
          // The final status writes of provision() wait for this one, so `provisioning` never lands last.
          decisionFields = { approvedById: state.decidedBy ?? null, decidedAt: state.decidedAt ?? null, approvalNotes: notes };
          provisioningWritten = final.setRequestStatus(input.requestId, { status: 'provisioning', ...decisionFields, resultMessage: null, failureType: null });
          // Handled at once: a write rejected (cancelled, row gone) while the host work runs must not
          // be an unhandled rejection; the final writes await it again (and ignore its failure).
          provisioningWritten.catch(() => undefined);
          return await provisionUnderLock(input.hostId ?? (await db.requestHostId(input.requestId)));
        } finally {
          await approvedNotice;
          await provisioningWritten.catch(() => undefined);
        }
      }
      // Mirror the decision durably (the API may be gone by now).
      await final.setRequestStatus(input.requestId, {
        status: state.phase as 'approved' | 'rejected' | 'withdrawn',
        approvedById: state.phase === 'withdrawn' ? null : (state.decidedBy ?? null),
        decidedAt: state.decidedAt ?? null,
        approvalNotes: notes,
        rejectReason: reason,
      });
      if (state.phase === 'rejected' || state.phase === 'withdrawn') {
        if (state.phase === 'rejected') {
          await tell('account_opening.rejected', input.requestId, { userIds: [input.applicantId] });
        }
        return publish(state);
      }
      if (notifyEvents) await tell('account_opening.approved', input.requestId, { userIds: [input.applicantId] });
      return startProvisioning();
    });
  }
  return startProvisioning();

  // Approved: provision. Everything below is idempotent and safe to re-run (`process`).
  async function startProvisioning(): Promise<AccountOpeningState> {
    state.phase = 'provisioning';
    upsertSearchAttributes([{ key: LifecycleStatusKey, value: 'provisioning' }]);
    await db.setRequestStatus(input.requestId, { status: 'provisioning', resultMessage: null, failureType: null });
    // Patch `host-change-lock`: provisioning, verification and the rollback run under the host's
    // change lock (host-change-lock/<hostId>), so no other account opening or key change interleaves
    // on the same host; it is released in a finally (success, failure, cancellation).
    if (patched('host-change-lock')) return provisionUnderLock(await db.requestHostId(input.requestId));
    return provision();
  }

  async function provisionUnderLock(hostId: string): Promise<AccountOpeningState> {
    let entered = false;
    try {
      return await locks.withHostLock(hostId, `account-opening/${input.requestId}`, () => ((entered = true), provision()), () => (state.step = 'wait-host-lock'));
    } catch (err) {
      if (entered) throw err;
      // The wait for the lock ended (cancelled): nothing was changed on the host, nothing to roll back.
      state.phase = 'failed';
      state.error = { type: (err as { cause?: { type?: string } }).cause?.type ?? (err as Error).name, message: 'cancelled while waiting for the host change lock' };
      await CancellationScope.nonCancellable(async () => {
        await provisioningWritten.catch(() => undefined);
        await final.setRequestStatus(input.requestId, { status: 'failed', ...decisionFields, failureType: state.error!.type, resultMessage: `wait-host-lock failed: ${state.error!.message}` });
      });
      await approvedNoticeSent;
      if (notifyEvents) await tell('account_opening.failed', input.requestId, { userIds: [input.applicantId] });
      return publish(state);
    }
  }

  async function provision(): Promise<AccountOpeningState> {
    try {
      state.step = 'create-account';
      const provisioned = await remote.provisionAccount.executeWithOptions(summary('create account', who()), [input.requestId]);
      state.hostAccountId = provisioned.hostAccountId;
      state.step = 'verify-login';
      await remote.verifyAccountLogin.executeWithOptions(summary('verify login of', who()), [provisioned.hostAccountId]);
      state.phase = 'done';
      state.step = undefined;
      await provisioningWritten.catch(() => undefined);
      await CancellationScope.nonCancellable(() => final.setRequestStatus(input.requestId, {
        status: 'done',
        hostAccountId: provisioned.hostAccountId,
        resultMessage: provisioned.preExisting ? 'account already existed (created by this request earlier); verified' : 'account created and login verified',
      }));
      await approvedNoticeSent;
      await tell('account_opening.done', input.requestId, { userIds: [input.applicantId] });
      return publish(state);
    } catch (err) {
      const cause = (err as { cause?: { type?: string; message?: string } }).cause;
      state.phase = 'failed';
      state.error = { type: cause?.type ?? 'Unknown', message: cause?.message ?? (err as Error).message };
      // Saga: undo a half-created account (only one this request created), whatever happens to us.
      await CancellationScope.nonCancellable(async () => {
        let rolledBack: string;
        if (patched('final-status')) {
          // A rollback that cannot finish (host or database gone for good) must not keep the
          // request from ending `failed`: its final status is recorded whatever the rollback did.
          try {
            rolledBack = (await remote.rollbackAccount.executeWithOptions(summary('roll back account', who()), [input.requestId])).removed ? ' (half-created account rolled back)' : '';
          } catch (rbErr) {
            const c = (rbErr as { cause?: { type?: string } }).cause;
            rolledBack = ` (rollback failed: ${c?.type ?? 'Unknown'}; the account may still exist on the host, process again to retry)`;
          }
        } else {
          rolledBack = (await remote.rollbackAccount.executeWithOptions(summary('roll back account', who()), [input.requestId])).removed ? ' (half-created account rolled back)' : '';
        }
        await provisioningWritten.catch(() => undefined);
        await final.setRequestStatus(input.requestId, {
          status: 'failed',
          ...decisionFields,
          failureType: state.error!.type,
          resultMessage: `${state.step ?? 'provisioning'} failed: ${state.error!.message}${rolledBack}`,
        });
      });
      await approvedNoticeSent;
      if (notifyEvents) await tell('account_opening.failed', input.requestId, { userIds: [input.applicantId] });
      return publish(state);
    }
  }
}

const forbidden = (message: string) => ApplicationFailure.create({ type: 'Forbidden', message });

function publish(state: AccountOpeningState): AccountOpeningState {
  upsertSearchAttributes([{ key: LifecycleStatusKey, value: state.phase }]);
  return state;
}

