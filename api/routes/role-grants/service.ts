// Time-bound roles: the role is added here, in the same transaction as the grant row; the
// `role-grant/<id>` workflow takes it away at the end (or on revoke), exactly once.
import { runSummary } from '../../../config/temporal.js';
import { LockMode, UniqueConstraintViolationException } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Client } from '@temporalio/client';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { RoleGrantSchema, UserSchema, type Role, type RoleGrant } from '../../../db/entities/index.js';
import { recordAudit } from '../../../db/audit.js';
import { conflict, notFound, validationError } from '../../errors.js';
import { rethrowMapped } from '../../temporal-errors.js';
import { LifecycleStatusKey, RequesterKey } from '../../../workflows/shared/search-attributes.js';
import { can, type Principal, type RoleCache } from '../../authz/principal.js';
import { assertNotSelf } from '../../authz/duties.js';
import { assertCanGrant, assertStaffRoles } from '../roles/service.js';
import { extendGrantUpdate, revokeGrantUpdate, type roleGrant } from '../../../workflows/role-grant.workflow.js';

export interface RoleGrantDeps {
  em: SqlEntityManager;
  temporal: { client: Client; taskQueue: string };
  roles: RoleCache;
}
type Actor = Principal;
const wfActor = (a: Actor) => ({ id: a.id, username: a.username, roles: a.roles, permissions: [...a.permissions] });
interface Ctx {
  ip?: string;
  requestId: string;
}

const MAX_GRANT_MS = 366 * 86_400_000;

export const toRoleGrantDto = (g: RoleGrant) => ({
  id: g.id,
  user_id: g.userId,
  role: g.role,
  until: g.until.toISOString(),
  reason: g.reason,
  granted_by: g.grantedBy,
  status: g.status,
  revoked_by: g.revokedBy ?? null,
  revoke_reason: g.revokeReason ?? null,
  ended_at: g.endedAt?.toISOString() ?? null,
  workflow_id: g.workflowId,
  created_at: g.createdAt.toISOString(),
});

function checkUntil(until: string, now = Date.now()): number {
  const t = Date.parse(until);
  if (t <= now + 60_000) throw validationError([{ field: 'until', message: 'must be at least a minute in the future' }]);
  if (t > now + MAX_GRANT_MS) throw validationError([{ field: 'until', message: 'must be within a year' }]);
  return t;
}

export async function grantRole(deps: RoleGrantDeps, actor: Actor, userId: string, input: { role: string; until: string; reason: string }, ctx: Ctx) {
  assertNotSelf(actor, userId, 'role grant', 'nobody grants a role to themselves');
  const untilMs = checkUntil(input.until);
  await assertStaffRoles(deps.em, [input.role], 'role');
  await assertCanGrant(deps.roles, actor, [input.role]);
  const em = deps.em.fork();
  let grant!: RoleGrant;
  try {
    await em.transactional(async (tx) => {
      const user = await tx.findOne(UserSchema, { id: userId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!user || user.disabledAt) throw notFound('user');
      if (user.roles.includes(input.role as Role)) throw conflict(`the user already has the role ${input.role}`);
      grant = tx.create(RoleGrantSchema, { userId, role: input.role, until: new Date(untilMs), reason: input.reason, grantedBy: actor.id, workflowId: '' });
      grant.workflowId = `role-grant/${grant.id}`;
      user.roles = [...user.roles, input.role as Role];
      recordAudit(tx, { actor: actor.username, action: 'role-grant.create', targetType: 'user', targetId: userId, ip: ctx.ip, requestId: ctx.requestId, detail: { grantId: grant.id, role: input.role, until: input.until, reason: input.reason } });
    });
  } catch (err) {
    if (err instanceof UniqueConstraintViolationException) throw conflict(`the user already has an active grant of ${input.role}`);
    throw err;
  }
  try {
    await deps.temporal.client.workflow.start<typeof roleGrant>('roleGrant', {
      workflowId: grant.workflowId,
      taskQueue: deps.temporal.taskQueue,
      args: [{ grantId: grant.id, userId, role: input.role, grantedBy: actor.id, untilMs }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      typedSearchAttributes: new TypedSearchAttributes([
        { key: RequesterKey, value: actor.id },
        { key: LifecycleStatusKey, value: 'active' },
      ]),
      ...runSummary(`Role ${input.role} for user ${userId}${untilMs ? ` until ${new Date(untilMs).toISOString().slice(0, 10)}` : ''}, granted by ${actor.username}`, { userId, role: input.role }),
    });
  } catch (err) {
    // Nothing half-done: without the workflow that would take it away, the role must not stay.
    await deps.em.fork().transactional(async (tx) => {
      const user = await tx.findOne(UserSchema, { id: userId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (user) user.roles = user.roles.filter((r) => r !== input.role);
      await tx.nativeDelete(RoleGrantSchema, { id: grant.id });
    });
    rethrowMapped(err, 'role grant');
  }
  return grant;
}

export async function listRoleGrants(deps: RoleGrantDeps, actor: Actor, userId: string) {
  if (actor.id !== userId && !can(actor, 'role_grant.manage')) throw notFound('user');
  return deps.em.fork().find(RoleGrantSchema, { userId }, { orderBy: { createdAt: 'desc', id: 'asc' } });
}

async function change(deps: RoleGrantDeps, actor: Actor, userId: string, grantId: string, ctx: Ctx, action: string, detail: Record<string, unknown>, send: (h: ReturnType<Client['workflow']['getHandle']>) => Promise<unknown>) {
  const em = deps.em.fork();
  const grant = await em.findOne(RoleGrantSchema, { id: grantId, userId });
  if (!grant) throw notFound('role grant');
  try {
    await send(deps.temporal.client.workflow.getHandle(grant.workflowId));
  } catch (err) {
    recordAudit(em, { actor: actor.username, action, targetType: 'user', targetId: userId, ip: ctx.ip, requestId: ctx.requestId, detail: { ...detail, grantId, error: (err as Error).message }, result: 'failure' });
    await em.flush();
    rethrowMapped(err, 'role grant');
  }
  recordAudit(em, { actor: actor.username, action, targetType: 'user', targetId: userId, ip: ctx.ip, requestId: ctx.requestId, detail: { ...detail, grantId } });
  await em.flush();
  return grant;
}

export async function extendRoleGrant(deps: RoleGrantDeps, actor: Actor, userId: string, grantId: string, until: string, ctx: Ctx) {
  const untilMs = checkUntil(until);
  const grant = await change(deps, actor, userId, grantId, ctx, 'role-grant.extend', { until }, (h) =>
    h.executeUpdate(extendGrantUpdate, { args: [{ until: new Date(untilMs).toISOString(), actor: wfActor(actor) }] }),
  );
  // The workflow mirrors the new end too; write it now so the answer and the next read agree.
  await deps.em.fork().nativeUpdate(RoleGrantSchema, { id: grantId, status: 'active' }, { until: new Date(untilMs) });
  return { ...toRoleGrantDto(grant), until: new Date(untilMs).toISOString() };
}

export async function revokeRoleGrant(deps: RoleGrantDeps, actor: Actor, userId: string, grantId: string, reason: string, ctx: Ctx) {
  const grant = await change(deps, actor, userId, grantId, ctx, 'role-grant.revoke', { reason }, (h) =>
    h.executeUpdate(revokeGrantUpdate, { args: [{ reason, actor: wfActor(actor) }] }),
  );
  return grant;
}
