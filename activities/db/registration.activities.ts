// Database side of the user-registration and role-grant workflows: status mirrors, the user
// created at activation, and the role taken away when a grant ends. Each is idempotent.
import type { SqlEntityManager } from '@mikro-orm/sql';
import { LockMode } from '@mikro-orm/core';
import { ApplicationFailure } from '@temporalio/activity';
import { RegistrationSchema, RoleGrantSchema, UserSchema, type RegistrationStatus, type Role } from '../../db/entities/index.js';
import { recordAudit } from '../../db/audit.js';

export interface RegistrationPatch {
  status?: RegistrationStatus;
  round?: number;
  deadlineAtMs?: number | null;
  verifiedAtMs?: number;
  departmentId?: string;
  fullName?: string;
  phone?: string | null;
  requestedRoles?: string[];
  reason?: string;
  grantedRoles?: string[];
  departmentReview?: { by: string; atMs: number; comment: string | null };
  roleApproval?: { by: string; atMs: number; comment: string | null };
  resultMessage?: string | null;
}

export function createRegistrationDbActivities(deps: { em: SqlEntityManager }) {
  async function setRegistrationStatus(registrationId: string, patch: RegistrationPatch): Promise<void> {
    const em = deps.em.fork();
    const reg = await em.findOneOrFail(RegistrationSchema, { id: registrationId });
    if (patch.status) reg.status = patch.status;
    if (patch.round !== undefined) reg.round = patch.round;
    if (patch.deadlineAtMs !== undefined) reg.deadlineAt = patch.deadlineAtMs === null ? null : new Date(patch.deadlineAtMs);
    if (patch.verifiedAtMs !== undefined) reg.verifiedAt = new Date(patch.verifiedAtMs);
    if (patch.departmentId !== undefined) reg.departmentId = patch.departmentId;
    if (patch.fullName !== undefined) reg.fullName = patch.fullName;
    if (patch.phone !== undefined) reg.phone = patch.phone;
    if (patch.requestedRoles !== undefined) reg.requestedRoles = patch.requestedRoles;
    if (patch.reason !== undefined) reg.reason = patch.reason;
    if (patch.grantedRoles !== undefined) reg.grantedRoles = patch.grantedRoles;
    if (patch.departmentReview) {
      reg.departmentReviewedBy = patch.departmentReview.by;
      reg.departmentReviewedAt = new Date(patch.departmentReview.atMs);
      reg.departmentComment = patch.departmentReview.comment;
    }
    if (patch.roleApproval) {
      reg.roleApprovedBy = patch.roleApproval.by;
      reg.roleApprovedAt = new Date(patch.roleApproval.atMs);
      reg.roleComment = patch.roleApproval.comment;
    }
    if (patch.resultMessage !== undefined) reg.resultMessage = patch.resultMessage;
    await em.flush();
  }

  /**
   * Creates the user of an approved registration (or invitation): must change password, no
   * password yet (the activation link sets it). Idempotent: a retry finds the user it made.
   */
  async function activateRegistration(registrationId: string, roles: string[]): Promise<{ userId: string; username: string }> {
    const em = deps.em.fork();
    return em.transactional(async (tx) => {
      const reg = await tx.findOneOrFail(RegistrationSchema, { id: registrationId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (reg.userId) {
        const existing = await tx.findOneOrFail(UserSchema, { id: reg.userId });
        return { userId: existing.id, username: existing.username };
      }
      const taken = await tx.getConnection().execute<Array<{ id: string }>>('select id from users where lower(email) = ? limit 1', [reg.email], 'all', tx.getTransactionContext());
      if (taken.length) {
        throw ApplicationFailure.nonRetryable(`a user with the email ${reg.email} already exists`, 'EmailTaken');
      }
      const wanted = (reg.username ?? reg.email.split('@')[0]!).toLowerCase().replace(/[^a-z0-9._-]/g, '').replace(/^[^a-z]+/, '').slice(0, 56) || 'user';
      let username = wanted;
      for (let n = 2; await tx.findOne(UserSchema, { username }); n++) username = `${wanted}${n}`;
      const user = tx.create(UserSchema, {
        username,
        email: reg.email,
        roles: roles as Role[],
        fullName: reg.fullName,
        departmentId: reg.departmentId,
        mustChangePassword: true,
        passwordHash: null,
      });
      reg.userId = user.id;
      reg.grantedRoles = roles;
      recordAudit(tx, { actor: 'system', action: 'registration.activate', targetType: 'user', targetId: user.id, detail: { registrationId, username, roles } });
      return { userId: user.id, username };
    });
  }

  /**
   * Ends a time-bound grant exactly once: the row leaves `active` and the role leaves the user in
   * one transaction; a second call (retry, or expiry racing a revoke) changes nothing.
   */
  async function endRoleGrant(input: { grantId: string; status: 'expired' | 'revoked'; atMs: number; actorId?: string; reason?: string }): Promise<{ ended: boolean }> {
    const em = deps.em.fork();
    return em.transactional(async (tx) => {
      const grant = await tx.findOneOrFail(RoleGrantSchema, { id: input.grantId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (grant.status !== 'active') return { ended: false };
      grant.status = input.status;
      // The workflow's clock: the moment the timer fired (or the revoke was handled).
      grant.endedAt = new Date(input.atMs);
      if (input.status === 'revoked') {
        grant.revokedBy = input.actorId ?? null;
        grant.revokeReason = input.reason ?? null;
      }
      const user = await tx.findOne(UserSchema, { id: grant.userId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (user) user.roles = user.roles.filter((r) => r !== grant.role);
      recordAudit(tx, {
        actor: input.actorId ?? 'system',
        action: `role-grant.${input.status === 'expired' ? 'expire' : 'revoke'}`,
        targetType: 'user',
        targetId: grant.userId,
        detail: { grantId: grant.id, role: grant.role, reason: input.reason },
      });
      return { ended: true };
    });
  }

  async function setRoleGrantUntil(grantId: string, untilMs: number): Promise<void> {
    await deps.em.fork().nativeUpdate(RoleGrantSchema, { id: grantId, status: 'active' }, { until: new Date(untilMs), updatedAt: new Date() });
  }

  return { setRegistrationStatus, activateRegistration, endRoleGrant, setRoleGrantUntil };
}
