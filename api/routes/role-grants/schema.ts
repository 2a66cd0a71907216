import { z, NO_CONTROL_RE } from '../../openapi.js';
import { ROLE_GRANT_STATUSES } from '../../../db/entities/index.js';

const text = (max: number) => z.string().trim().max(max).regex(NO_CONTROL_RE, 'must not contain control characters (newlines, tabs, NUL)');

export const RoleGrantCreate = z
  .object({
    role: z.string().min(1).max(64).openapi({ description: 'A role name (GET /api/v1/roles); not customer_member / customer_owner' }),
    until: z.string().datetime({ offset: true, message: 'must be an ISO 8601 date-time' }),
    reason: text(1000).min(1, 'a reason is required'),
  })
  .openapi('RoleGrantCreate');
export const RoleGrantExtend = z.object({ until: z.string().datetime({ offset: true, message: 'must be an ISO 8601 date-time' }) }).openapi('RoleGrantExtend');
export const RoleGrantRevoke = z.object({ reason: text(1000).min(1, 'a reason is required') }).openapi('RoleGrantRevoke');

export const RoleGrant = z
  .object({
    id: z.string().uuid(),
    user_id: z.string().uuid(),
    role: z.string(),
    until: z.string(),
    reason: z.string(),
    granted_by: z.string().uuid(),
    status: z.enum(ROLE_GRANT_STATUSES),
    revoked_by: z.string().nullable(),
    revoke_reason: z.string().nullable(),
    ended_at: z.string().nullable(),
    workflow_id: z.string(),
    created_at: z.string(),
  })
  .openapi('RoleGrant');

export const UserIdParams = z.object({ id: z.string().uuid('must be a user id (uuid)') });
export const GrantParams = UserIdParams.extend({ grantId: z.string().uuid('must be a role grant id (uuid)') });
