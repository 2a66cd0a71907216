import type { SqlEntityManager } from '@mikro-orm/sql';
import { AccountOpeningRequestSchema, UserSchema, type RequestStatus } from '../../db/entities/index.js';

export interface RequestStatusPatch {
  status: RequestStatus;
  approvedById?: string | null;
  decidedAt?: string | null;
  approvalNotes?: string | null;
  rejectReason?: string | null;
  resultMessage?: string | null;
  failureType?: string | null;
  hostAccountId?: string | null;
}

/** Mirrors account-opening workflow state into its DB row (for listing and filtering). */
export function createAccountOpeningDbActivities(deps: { em: SqlEntityManager }) {
  return {
    async setRequestStatus(requestId: string, patch: RequestStatusPatch): Promise<void> {
      const em = deps.em.fork();
      const row = await em.findOneOrFail(AccountOpeningRequestSchema, { id: requestId });
      row.status = patch.status;
      if (patch.approvedById !== undefined) row.approvedBy = patch.approvedById ? em.getReference(UserSchema, patch.approvedById) : null;
      if (patch.decidedAt !== undefined) row.decidedAt = patch.decidedAt ? new Date(patch.decidedAt) : null;
      if (patch.approvalNotes !== undefined) row.approvalNotes = patch.approvalNotes;
      if (patch.rejectReason !== undefined) row.rejectReason = patch.rejectReason;
      if (patch.resultMessage !== undefined) row.resultMessage = patch.resultMessage;
      if (patch.failureType !== undefined) row.failureType = patch.failureType;
      if (patch.hostAccountId !== undefined) row.hostAccountId = patch.hostAccountId;
      await em.flush();
    },

    /** The host a request targets (the workflow takes host-change-lock/<hostId> before changing it). */
    async requestHostId(requestId: string): Promise<string> {
      const row = await deps.em.fork().findOneOrFail(AccountOpeningRequestSchema, { id: requestId }, { fields: ['host'] });
      return row.host.id;
    },
  };
}
