// Self-registration and invitations: each is a `user-registration/<id>` workflow; this starts
// them, turns single-use links into Updates, and reads the mirrored rows for reviewer queues.
import { runSummary } from '../../../config/temporal.js';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Client } from '@temporalio/client';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { DepartmentSchema, OPEN_REGISTRATION_STATUSES, RegistrationSchema, UserSchema, type Registration } from '../../../db/entities/index.js';
import { recordAudit } from '../../../db/audit.js';
import { consumeRegistrationToken } from '../../../db/registration-tokens.js';
import { conflict, notFound, validationError } from '../../errors.js';
import { rethrowMapped } from '../../temporal-errors.js';
import { LifecycleStatusKey } from '../../../workflows/shared/search-attributes.js';
import {
  departmentReviewUpdate,
  registrationStateQuery,
  resubmitUpdate,
  roleApprovalUpdate,
  verifyEmailUpdate,
  type RegistrationActor,
  type userRegistration,
} from '../../../workflows/user-registration.workflow.js';
import { departmentsAdministeredBy } from '../departments/service.js';
import { can, type Principal, type RoleCache } from '../../authz/principal.js';
import { assertNotSelf } from '../../authz/duties.js';
import { assertCanGrant, assertStaffRoles } from '../roles/service.js';

export interface RegistrationDeps {
  em: SqlEntityManager;
  temporal: { client: Client; taskQueue: string };
  /** Days each waiting step may take. */
  stepDays: number;
  /** The roles table: requested and granted roles are validated against it. */
  roles: RoleCache;
}
type Actor = Principal;
/** May see every registration and decide roles (what `admin` alone could before roles were data). */
const mayApproveRoles = (actor: Actor) => can(actor, 'registration.approve_roles');


interface Ctx {
  ip?: string;
  requestId: string;
}

export const ACCEPTED_MESSAGE = 'If the address can register, a confirmation link is on its way to it.';

export function toRegistrationDto(r: Registration) {
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    email: r.email,
    full_name: r.fullName ?? null,
    phone: r.phone ?? null,
    department_id: r.departmentId ?? null,
    requested_roles: r.requestedRoles,
    granted_roles: r.grantedRoles ?? null,
    reason: r.reason ?? null,
    round: r.round,
    verified_at: r.verifiedAt?.toISOString() ?? null,
    department_reviewed_by: r.departmentReviewedBy ?? null,
    department_comment: r.departmentComment ?? null,
    role_approved_by: r.roleApprovedBy ?? null,
    role_comment: r.roleComment ?? null,
    user_id: r.userId ?? null,
    invited_by: r.invitedBy ?? null,
    deadline_at: r.deadlineAt?.toISOString() ?? null,
    result_message: r.resultMessage ?? null,
    workflow_id: r.workflowId,
    created_at: r.createdAt.toISOString(),
  };
}

async function requireDepartment(em: SqlEntityManager, id: string) {
  if (!(await em.findOne(DepartmentSchema, { id }))) throw validationError([{ field: 'department_id', message: 'no department with this id' }]);
}

async function emailInUse(em: SqlEntityManager, email: string): Promise<boolean> {
  const conn = em.getConnection();
  const users = await conn.execute<unknown[]>('select 1 from users where lower(email) = ? limit 1', [email]);
  if (users.length) return true;
  return (await em.count(RegistrationSchema, { email, status: { $in: [...OPEN_REGISTRATION_STATUSES] } })) > 0;
}

async function start(deps: RegistrationDeps, row: Registration, mode: 'register' | 'invite') {
  await deps.temporal.client.workflow.start<typeof userRegistration>('userRegistration', {
    workflowId: row.workflowId,
    taskQueue: deps.temporal.taskQueue,
    args: [{ registrationId: row.id, mode, email: row.email, departmentId: row.departmentId ?? null, requestedRoles: row.requestedRoles, stepMs: deps.stepDays * 86_400_000 }],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    // No email in a search attribute (plaintext in Temporal): the summary (encrypted) names it.
    typedSearchAttributes: new TypedSearchAttributes([{ key: LifecycleStatusKey, value: String(row.status) }]),
    ...runSummary(`${mode === 'invite' ? 'Invitation' : 'Registration'} of ${row.email}`, { kind: row.kind }),
  });
}

/** Creates the row and starts its workflow; without its workflow the row must not exist. */
async function create(deps: RegistrationDeps, em: SqlEntityManager, row: Registration, mode: 'register' | 'invite') {
  try {
    await em.flush();
  } catch (err) {
    if (err instanceof UniqueConstraintViolationException) return false;
    throw err;
  }
  try {
    await start(deps, row, mode);
  } catch (err) {
    await deps.em.fork().nativeDelete(RegistrationSchema, { id: row.id });
    rethrowMapped(err, 'registration');
  }
  return true;
}

/**
 * Public. Answers the same whether or not the email is already a user or has an open
 * registration (no account enumeration), and a repeated submit for an open registration does
 * nothing (no second workflow, no second mail).
 */
export async function submitRegistration(
  deps: RegistrationDeps,
  input: { email: string; full_name: string; phone?: string | null; department_id: string; requested_roles: string[]; reason: string; username?: string },
  ctx: Ctx,
) {
  const em = deps.em.fork();
  await assertStaffRoles(deps.em, input.requested_roles, 'requested_roles');
  await requireDepartment(em, input.department_id);
  if (await emailInUse(em, input.email)) return { accepted: true as const, message: ACCEPTED_MESSAGE };
  const row = em.create(RegistrationSchema, {
    kind: 'self',
    email: input.email,
    fullName: input.full_name,
    phone: input.phone ?? null,
    departmentId: input.department_id,
    requestedRoles: [...new Set(input.requested_roles)],
    reason: input.reason,
    username: input.username ?? null,
    status: 'pending_verification',
    workflowId: '',
  });
  row.workflowId = `user-registration/${row.id}`;
  recordAudit(em, { actor: `anonymous:${input.email}`, action: 'registration.submit', targetType: 'registration', targetId: row.id, ip: ctx.ip, requestId: ctx.requestId, detail: { department: input.department_id, roles: row.requestedRoles } });
  await create(deps, em, row, 'register');
  return { accepted: true as const, message: ACCEPTED_MESSAGE };
}

const invalidToken = () => validationError([{ field: 'token', message: 'invalid, used or expired link' }]);

export async function verifyRegistration(deps: RegistrationDeps, token: string, ctx: Ctx) {
  const em = deps.em.fork();
  const id = await consumeRegistrationToken(em, token, 'verify');
  if (!id) throw invalidToken();
  const row = await em.findOneOrFail(RegistrationSchema, { id });
  try {
    await deps.temporal.client.workflow.getHandle(row.workflowId).executeUpdate(verifyEmailUpdate, { args: [] });
  } catch (err) {
    rethrowMapped(err, 'registration');
  }
  recordAudit(em, { actor: `anonymous:${row.email}`, action: 'registration.verify', targetType: 'registration', targetId: id, ip: ctx.ip, requestId: ctx.requestId });
  await em.flush();
  return { id, status: 'pending_department_review' as const };
}

export async function resubmitRegistration(
  deps: RegistrationDeps,
  id: string,
  input: { token: string; full_name: string; phone?: string | null; department_id: string; requested_roles: string[]; reason: string },
  ctx: Ctx,
) {
  const em = deps.em.fork();
  await assertStaffRoles(deps.em, input.requested_roles, 'requested_roles');
  await requireDepartment(em, input.department_id);
  const row = await em.findOne(RegistrationSchema, { id });
  if (!row) throw invalidToken();
  if (row.status !== 'changes_requested') throw conflict(`registration is ${row.status}, not changes_requested`);
  const consumed = await consumeRegistrationToken(em, input.token, 'resubmit', id);
  if (!consumed) throw invalidToken();
  try {
    await deps.temporal.client.workflow.getHandle(row.workflowId).executeUpdate(resubmitUpdate, {
      args: [{ fullName: input.full_name, phone: input.phone ?? null, departmentId: input.department_id, requestedRoles: [...new Set(input.requested_roles)], reason: input.reason }],
    });
  } catch (err) {
    rethrowMapped(err, 'registration');
  }
  recordAudit(em, { actor: `anonymous:${row.email}`, action: 'registration.resubmit', targetType: 'registration', targetId: id, ip: ctx.ip, requestId: ctx.requestId });
  await em.flush();
  return { id, status: 'pending_department_review' as const };
}

/** The reviewer as the workflow's validators see it: email and administered departments from the DB. */
async function reviewer(em: SqlEntityManager, actor: Actor): Promise<RegistrationActor> {
  const u = await em.findOne(UserSchema, { id: actor.id });
  return {
    id: actor.id,
    username: actor.username,
    email: u?.email?.toLowerCase() ?? null,
    roles: actor.roles,
    permissions: [...actor.permissions],
    departments: await departmentsAdministeredBy(em, actor.id),
  };
}

/** A registration is visible to role approvers and to admins of its department; to others it does not exist. */
async function loadVisible(em: SqlEntityManager, actor: Actor, id: string): Promise<{ row: Registration; who: RegistrationActor }> {
  const row = await em.findOne(RegistrationSchema, { id });
  const who = await reviewer(em, actor);
  if (!row || (!mayApproveRoles(actor) && !(row.departmentId && who.departments.includes(row.departmentId)))) throw notFound('registration');
  return { row, who };
}

export async function getRegistration(deps: RegistrationDeps, actor: Actor, id: string) {
  const { row } = await loadVisible(deps.em.fork(), actor, id);
  let live: unknown;
  try {
    live = await deps.temporal.client.workflow.getHandle(row.workflowId).query(registrationStateQuery);
  } catch {
    live = undefined;
  }
  return { ...toRegistrationDto(row), live };
}

export async function listRegistrations(deps: RegistrationDeps, actor: Actor, q: { status?: string; queue: 'mine' | 'all'; limit: number; offset: number }) {
  const em = deps.em.fork();
  const mine = await departmentsAdministeredBy(em, actor.id);
  const isAdmin = mayApproveRoles(actor);
  let where: Record<string, unknown>;
  if (q.queue === 'mine') {
    const or: Array<Record<string, unknown>> = [];
    if (mine.length) or.push({ status: 'pending_department_review', departmentId: { $in: mine } });
    if (isAdmin) or.push({ status: 'pending_role_approval' });
    if (!or.length) return [[], 0] as const;
    where = { $or: or };
  } else {
    where = isAdmin ? {} : { departmentId: { $in: mine.length ? mine : ['00000000-0000-0000-0000-000000000000'] } };
  }
  if (q.status) where = { $and: [where, { status: q.status }] };
  return em.findAndCount(RegistrationSchema, where, { limit: q.limit, offset: q.offset, orderBy: { createdAt: 'asc', id: 'asc' } });
}

async function decide(deps: RegistrationDeps, actor: Actor, id: string, ctx: Ctx, action: string, detail: Record<string, unknown>, send: (handle: ReturnType<Client['workflow']['getHandle']>, who: RegistrationActor) => Promise<unknown>) {
  const em = deps.em.fork();
  const { row, who } = await loadVisible(em, actor, id);
  try {
    await send(deps.temporal.client.workflow.getHandle(row.workflowId), who);
  } catch (err) {
    recordAudit(em, { actor: actor.username, action, targetType: 'registration', targetId: id, ip: ctx.ip, requestId: ctx.requestId, detail: { ...detail, error: (err as Error).message }, result: 'failure' });
    await em.flush();
    rethrowMapped(err, 'registration');
  }
  recordAudit(em, { actor: actor.username, action, targetType: 'registration', targetId: id, ip: ctx.ip, requestId: ctx.requestId, detail });
  await em.flush();
}

export async function reviewByDepartment(deps: RegistrationDeps, actor: Actor, id: string, input: { decision: 'approve' | 'reject' | 'return'; comment?: string }, ctx: Ctx) {
  let status = '';
  await decide(deps, actor, id, ctx, `registration.department-${input.decision}`, { comment: input.comment }, async (h, who) => {
    status = (await h.executeUpdate(departmentReviewUpdate, { args: [{ actor: who, decision: input.decision, comment: input.comment }] })).status;
  });
  return { id, status };
}

export async function approveRoles(deps: RegistrationDeps, actor: Actor, id: string, input: { decision: 'approve' | 'reject'; roles?: string[]; comment?: string }, ctx: Ctx) {
  if (input.roles) await assertStaffRoles(deps.em, input.roles, 'roles');
  if (input.decision === 'approve') {
    // No escalation: the approver hands out only permissions they hold themselves.
    const row = await deps.em.fork().findOne(RegistrationSchema, { id });
    if (row) await assertCanGrant(deps.roles, actor, input.roles?.length ? input.roles : row.requestedRoles);
  }
  let status = '';
  await decide(deps, actor, id, ctx, `registration.roles-${input.decision}`, { roles: input.roles, comment: input.comment }, async (h, who) => {
    status = (await h.executeUpdate(roleApprovalUpdate, { args: [{ actor: who, decision: input.decision, roles: input.roles, comment: input.comment }] })).status;
  });
  return { id, status };
}

/** A role approver invites an address: the same workflow, starting at activation with the given roles. */
export async function invite(deps: RegistrationDeps, actor: Actor, input: { email: string; roles: string[]; department_id: string; full_name?: string }, ctx: Ctx) {
  await assertStaffRoles(deps.em, input.roles, 'roles');
  await assertCanGrant(deps.roles, actor, input.roles);
  const em = deps.em.fork();
  await requireDepartment(em, input.department_id);
  const me = await em.findOne(UserSchema, { id: actor.id });
  assertNotSelf({ id: actor.id, email: me?.email }, { email: input.email }, 'invitation', 'nobody invites themselves');
  if (await emailInUse(em, input.email)) throw conflict(`${input.email} already has an account or an open registration`);
  const row = em.create(RegistrationSchema, {
    kind: 'invitation',
    email: input.email,
    fullName: input.full_name ?? null,
    departmentId: input.department_id,
    requestedRoles: [...new Set(input.roles)],
    grantedRoles: [...new Set(input.roles)],
    invitedBy: actor.id,
    status: 'activating',
    workflowId: '',
  });
  row.workflowId = `user-registration/${row.id}`;
  recordAudit(em, { actor: actor.username, action: 'registration.invite', targetType: 'registration', targetId: row.id, ip: ctx.ip, requestId: ctx.requestId, detail: { email: input.email, roles: row.requestedRoles } });
  if (!(await create(deps, em, row, 'invite'))) throw conflict(`${input.email} already has an open registration`);
  return row;
}
