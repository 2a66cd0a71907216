import {
  ApplicationFailure,
  condition,
  defineQuery,
  defineUpdate,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { RegistrationPatch } from '../activities/db/registration.activities.js';
import { LifecycleStatusKey } from './shared/search-attributes.js';
import { actorMay } from './shared/actor.js';
import { isSameParty } from './shared/duties.js';
import { decisionTrace } from './shared/decision-trace.js';

/**
 * user-registration/<registrationId>: submit → email verification → department review (approve /
 * reject / return for changes → resubmit → review again) → role approval by a system admin (may
 * grant fewer roles than asked, never more) → activation (the user is created, must change
 * password, and gets a set-password link) → the user's first login (identity's password flow).
 * An invitation starts the same workflow at activation.
 *
 * Every waiting step has a durable deadline (`stepMs`, REGISTRATION_STEP_DAYS); reviewers are
 * reminded at half-time; a step that runs out ends the registration as `expired`. Decisions are
 * Updates whose validators refuse a bad reviewer before anything enters history; nobody decides
 * their own registration. Tokens never pass through here: activities issue and email them, the
 * API consumes them and then sends the Update.
 */
export interface UserRegistrationInput {
  registrationId: string;
  mode: 'register' | 'invite';
  /** Lower-cased email of the applicant / invitee: a reviewer with this email is the applicant. */
  email: string;
  departmentId: string | null;
  requestedRoles: string[];
  /** How long each waiting step may take. */
  stepMs: number;
}

export interface RegistrationActor {
  id: string;
  username: string;
  email: string | null;
  roles: string[];
  /** Effective permissions (api/authz); absent in histories recorded before they existed. */
  permissions?: string[];
  /** Department ids this actor administers (resolved by the API from the departments table). */
  departments: string[];
}

export type RegistrationWorkflowStatus =
  | 'pending_verification'
  | 'pending_department_review'
  | 'changes_requested'
  | 'pending_role_approval'
  | 'activating'
  | 'activated'
  | 'rejected'
  | 'expired'
  | 'failed';

export interface RegistrationDecision {
  stage: 'department' | 'roles';
  decision: 'approve' | 'reject' | 'return';
  by: string;
  at: string;
  comment: string | null;
  roles?: string[];
}

export interface RegistrationState {
  status: RegistrationWorkflowStatus;
  round: number;
  departmentId: string | null;
  requestedRoles: string[];
  grantedRoles: string[] | null;
  /** When the current waiting step expires. */
  deadline: string | null;
  decisions: RegistrationDecision[];
  userId?: string;
  username?: string;
  error?: string;
}

export interface ResubmitInput {
  fullName: string;
  phone: string | null;
  departmentId: string;
  requestedRoles: string[];
  reason: string;
}

export const verifyEmailUpdate = defineUpdate<RegistrationState, []>('verify-email');
export const departmentReviewUpdate = defineUpdate<RegistrationState, [{ actor: RegistrationActor; decision: 'approve' | 'reject' | 'return'; comment?: string }]>('department-review');
export const resubmitUpdate = defineUpdate<RegistrationState, [ResubmitInput]>('resubmit');
export const roleApprovalUpdate = defineUpdate<RegistrationState, [{ actor: RegistrationActor; decision: 'approve' | 'reject'; roles?: string[]; comment?: string }]>('role-approval');
export const registrationStateQuery = defineQuery<RegistrationState>('state');

const dbActivities = proxyActivities<Pick<Activities, 'setRegistrationStatus' | 'activateRegistration'>>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumInterval: '30 seconds', nonRetryableErrorTypes: ['EmailTaken'] },
});
const mailActivities = proxyActivities<Pick<Activities, 'sendRegistrationLinkMail' | 'notifyRegistrationReviewers' | 'notifyRegistrationApplicant' | 'sendActivationMail'>>({
  startToCloseTimeout: '1 minute',
  retry: { maximumInterval: '5 minutes' },
});

export async function userRegistration(input: UserRegistrationInput): Promise<RegistrationState> {
  const state: RegistrationState = {
    status: input.mode === 'invite' ? 'activating' : 'pending_verification',
    round: 1,
    departmentId: input.departmentId,
    requestedRoles: [...input.requestedRoles],
    grantedRoles: input.mode === 'invite' ? [...input.requestedRoles] : null,
    deadline: null,
    decisions: [],
  };
  setHandler(registrationStateQuery, () => state);
  // Each decision (verify-email, department-review, resubmit, role-approval: Updates from the API)
  // takes what follows it into its trace: the status writes, the next step's notices, activation.
  const decided = decisionTrace();
  const db = decided.wrap(dbActivities);
  const mail = decided.wrap(mailActivities);

  let verified = false;
  let resubmitted: ResubmitInput | null = null;
  let deptDecision: RegistrationDecision | null = null;
  let roleDecision: RegistrationDecision | null = null;

  const requireStatus = (s: RegistrationWorkflowStatus) => {
    if (state.status !== s) throw ApplicationFailure.create({ type: 'NotPending', message: `registration is ${state.status}, not ${s}` });
  };
  const notSelf = (actor: RegistrationActor) => {
    if (isSameParty(actor, { id: state.userId, email: input.email })) {
      throw forbidden('nobody reviews their own registration');
    }
  };
  const cleanComment = (c?: string) => c?.trim() || null;

  setHandler(
    verifyEmailUpdate,
    () => {
      decided.capture();
      verified = true;
      state.status = 'pending_department_review';
      return state;
    },
    { validator: () => requireStatus('pending_verification') },
  );
  setHandler(
    departmentReviewUpdate,
    ({ actor, decision, comment }) => {
      decided.capture();
      deptDecision = { stage: 'department', decision, by: actor.id, at: new Date().toISOString(), comment: cleanComment(comment) };
      state.decisions.push(deptDecision);
      state.status = decision === 'approve' ? 'pending_role_approval' : decision === 'reject' ? 'rejected' : 'changes_requested';
      return state;
    },
    {
      validator: ({ actor, decision, comment }) => {
        requireStatus('pending_department_review');
        if (!state.departmentId || !actor.departments.includes(state.departmentId)) throw forbidden('only an admin of the registration\'s department can review it');
        notSelf(actor);
        if (decision !== 'approve' && !cleanComment(comment)) throw invalid(`comment: a comment is required to ${decision === 'reject' ? 'reject' : 'return for changes'}`);
      },
    },
  );
  setHandler(
    resubmitUpdate,
    (fields) => {
      decided.capture();
      resubmitted = fields;
      state.departmentId = fields.departmentId;
      state.requestedRoles = [...new Set(fields.requestedRoles)];
      state.round += 1;
      state.status = 'pending_department_review';
      return state;
    },
    {
      validator: (fields) => {
        requireStatus('changes_requested');
        if (!fields.departmentId) throw invalid('department_id: required');
        if (!fields.requestedRoles.length) throw invalid('requested_roles: at least one role');
      },
    },
  );
  setHandler(
    roleApprovalUpdate,
    ({ actor, decision, roles, comment }) => {
      decided.capture();
      const granted = decision === 'approve' ? [...new Set(roles?.length ? roles : state.requestedRoles)] : undefined;
      roleDecision = { stage: 'roles', decision, by: actor.id, at: new Date().toISOString(), comment: cleanComment(comment), ...(granted ? { roles: granted } : {}) };
      state.decisions.push(roleDecision);
      if (granted) state.grantedRoles = granted;
      state.status = decision === 'approve' ? 'activating' : 'rejected';
      return state;
    },
    {
      validator: ({ actor, decision, roles, comment }) => {
        requireStatus('pending_role_approval');
        if (!actorMay(actor, 'registration.approve_roles', ['admin'])) throw forbidden('role approval needs the registration.approve_roles permission');
        notSelf(actor);
        if (decision === 'reject' && !cleanComment(comment)) throw invalid('comment: a comment is required to reject');
        if (decision === 'approve' && roles) {
          if (!roles.length) throw invalid('roles: grant at least one role, or reject');
          const extra = roles.filter((r: string) => !state.requestedRoles.includes(r));
          if (extra.length) throw invalid(`roles: ${extra.join(', ')} not requested (an approver may grant fewer roles, never more)`);
        }
      },
    },
  );

  const mirror = async (patch: RegistrationPatch) => {
    await db.setRegistrationStatus(input.registrationId, patch);
    if (patch.status) upsertSearchAttributes([{ key: LifecycleStatusKey, value: patch.status }]);
  };

  /** Waits for `done` up to the step deadline; reviewers are told at the start and reminded at half-time. */
  const waitStep = async (status: RegistrationWorkflowStatus, done: () => boolean, reviewers?: 'department' | 'role'): Promise<boolean> => {
    const deadlineMs = Date.now() + input.stepMs;
    state.deadline = new Date(deadlineMs).toISOString();
    await mirror({ status, deadlineAtMs: deadlineMs, round: state.round });
    if (done()) return true;
    if (!reviewers) return condition(done, input.stepMs);
    await mail.notifyRegistrationReviewers({ registrationId: input.registrationId, event: reviewers === 'department' ? 'department-review' : 'role-approval', round: state.round });
    const half = Math.floor(input.stepMs / 2);
    if (await condition(done, Math.max(deadlineMs - half - Date.now(), 1))) return true;
    // The half-time reminder comes from a timer, not from the decision before it: the run's own trace.
    decided.clear();
    await mail.notifyRegistrationReviewers({ registrationId: input.registrationId, event: reviewers === 'department' ? 'department-reminder' : 'role-reminder', round: state.round });
    return condition(done, Math.max(deadlineMs - Date.now(), 1));
  };

  const expire = async (): Promise<RegistrationState> => {
    decided.clear(); // a deadline passed: no decision caused this
    state.status = 'expired';
    state.deadline = null;
    await mirror({ status: 'expired', deadlineAtMs: null, resultMessage: 'a step was not completed before its deadline' });
    await mail.notifyRegistrationApplicant({ registrationId: input.registrationId, event: 'expired' });
    return state;
  };
  const reject = async (d: RegistrationDecision): Promise<RegistrationState> => {
    state.deadline = null;
    const review = { by: d.by, atMs: Date.parse(d.at), comment: d.comment };
    await mirror({ status: 'rejected', deadlineAtMs: null, ...(d.stage === 'department' ? { departmentReview: review } : { roleApproval: review }), resultMessage: `rejected at ${d.stage === 'department' ? 'department review' : 'role approval'}` });
    await mail.notifyRegistrationApplicant({ registrationId: input.registrationId, event: 'rejected' });
    return state;
  };

  if (input.mode === 'register') {
    // 1. The applicant proves the email address.
    const deadlineMs = Date.now() + input.stepMs;
    state.deadline = new Date(deadlineMs).toISOString();
    await mirror({ status: 'pending_verification', deadlineAtMs: deadlineMs });
    await mail.sendRegistrationLinkMail({ registrationId: input.registrationId, purpose: 'verify', round: 1, ttlMs: input.stepMs });
    if (!(await condition(() => verified, Math.max(deadlineMs - Date.now(), 1)))) return expire();
    await mirror({ verifiedAtMs: Date.now() });

    // 2. Department review, repeated after each "return for changes".
    for (;;) {
      deptDecision = null;
      if (!(await waitStep('pending_department_review', () => deptDecision !== null, 'department'))) return expire();
      const d: RegistrationDecision = deptDecision!;
      if (d.decision === 'reject') return reject(d);
      if (d.decision === 'approve') {
        await mirror({ departmentReview: { by: d.by, atMs: Date.parse(d.at), comment: d.comment } });
        break;
      }
      resubmitted = null;
      await mirror({ status: 'changes_requested', departmentReview: { by: d.by, atMs: Date.parse(d.at), comment: d.comment } });
      await mail.sendRegistrationLinkMail({ registrationId: input.registrationId, purpose: 'resubmit', round: state.round, ttlMs: input.stepMs });
      if (!(await waitStep('changes_requested', () => resubmitted !== null))) return expire();
      const f: ResubmitInput = resubmitted!;
      await mirror({ fullName: f.fullName, phone: f.phone, departmentId: f.departmentId, requestedRoles: state.requestedRoles, reason: f.reason, round: state.round });
    }

    // 3. Role approval by a system admin.
    if (!(await waitStep('pending_role_approval', () => roleDecision !== null, 'role'))) return expire();
    const r: RegistrationDecision = roleDecision!;
    if (r.decision === 'reject') return reject(r);
    await mirror({ roleApproval: { by: r.by, atMs: Date.parse(r.at), comment: r.comment }, grantedRoles: state.grantedRoles! });
  }

  // 4. Activation: the user is created and gets a set-password link.
  state.status = 'activating';
  state.deadline = null;
  await mirror({ status: 'activating', deadlineAtMs: null });
  try {
    const user = await db.activateRegistration(input.registrationId, state.grantedRoles!);
    state.userId = user.userId;
    state.username = user.username;
  } catch (err) {
    const cause = (err as { cause?: { type?: string; message?: string } }).cause;
    state.status = 'failed';
    state.error = cause?.message ?? (err as Error).message;
    await mirror({ status: 'failed', resultMessage: `activation failed: ${state.error}` });
    return state;
  }
  await mail.sendActivationMail({ registrationId: input.registrationId });
  state.status = 'activated';
  await mirror({ status: 'activated', resultMessage: `user ${state.username} created; activation link sent` });
  return state;
}

const forbidden = (message: string) => ApplicationFailure.create({ type: 'Forbidden', message });
const invalid = (message: string) => ApplicationFailure.create({ type: 'Invalid', message });
