import { z, NO_CONTROL_RE } from '../../openapi.js';
import { PageQuery } from '../../pagination.js';
import { pii } from '../../authz/mask.js';
import { REGISTRATION_STATUSES } from '../../../db/entities/index.js';

const text = (max: number) => z.string().trim().max(max).regex(NO_CONTROL_RE, 'must not contain control characters (newlines, tabs, NUL)');
/**
 * Role names a person may ask for or be invited to: validated against the roles table by the
 * service (assertRegistrableRoles: customer users' roles belong to a customer, not a department).
 */
const roles = z
  .array(z.string().min(1).max(64))
  .min(1, 'at least one role')
  .max(32)
  .openapi({ description: 'Role names (GET /api/v1/roles); not customer_member / customer_owner' });
const phone = z.string().regex(/^\+?[0-9 ()-]{5,30}$/, 'must be a phone number');

const fields = {
  full_name: text(100).min(1, 'required'),
  phone: phone.nullable().optional(),
  department_id: z.string().uuid('must be a department id (uuid)'),
  requested_roles: roles,
  reason: text(1000).min(1, 'required'),
};

export const RegistrationSubmit = z
  .object({
    ...fields,
    email: z.string().trim().toLowerCase().email().max(255),
    username: z.string().regex(/^[a-z][a-z0-9._-]{1,63}$/, '2-64 lower-case letters, digits, ".", "_" or "-", starting with a letter').optional().openapi({ description: 'Wished login name; derived from the email when absent or taken' }),
  })
  .openapi('RegistrationSubmit');

export const RegistrationResubmit = z.object({ token: z.string().min(10).max(200), ...fields }).openapi('RegistrationResubmit');
export const VerifyBody = z.object({ token: z.string().min(10).max(200) }).openapi('RegistrationVerify');

export const Accepted = z.object({ accepted: z.literal(true), message: z.string() }).openapi('RegistrationAccepted', {
  description: 'The same answer whether or not the address is already known: the email tells the rest.',
});

export const DepartmentReviewBody = z
  .object({ decision: z.enum(['approve', 'reject', 'return']), comment: text(1000).optional() })
  .openapi('DepartmentReview', { description: '`reject` and `return` (for changes) need a comment' });
export const RoleApprovalBody = z
  .object({ decision: z.enum(['approve', 'reject']), roles: roles.optional().openapi({ description: 'Roles granted (a subset of those requested; default all of them)' }), comment: text(1000).optional() })
  .openapi('RoleApproval');

export const InvitationCreate = z
  .object({
    email: z.string().trim().toLowerCase().email().max(255),
    roles,
    department_id: z.string().uuid('must be a department id (uuid)'),
    full_name: text(100).min(1).optional(),
  })
  .openapi('InvitationCreate');

export const Registration = z
  .object({
    id: z.string().uuid(),
    kind: z.enum(['self', 'invitation']),
    status: z.enum(REGISTRATION_STATUSES),
    email: pii(z.string(), 'email'),
    full_name: z.string().nullable(),
    phone: pii(z.string().nullable(), 'phone'),
    department_id: z.string().nullable(),
    requested_roles: z.array(z.string()),
    granted_roles: z.array(z.string()).nullable(),
    reason: z.string().nullable(),
    round: z.number().int(),
    verified_at: z.string().nullable(),
    department_reviewed_by: z.string().nullable(),
    department_comment: z.string().nullable(),
    role_approved_by: z.string().nullable(),
    role_comment: z.string().nullable(),
    user_id: z.string().nullable(),
    invited_by: z.string().nullable(),
    deadline_at: z.string().nullable(),
    result_message: z.string().nullable(),
    workflow_id: z.string(),
    created_at: z.string(),
    live: z.unknown().optional().openapi({ description: 'Live workflow state, on the detail endpoint' }),
  })
  .openapi('Registration');

export const RegistrationStatusView = z.object({ id: z.string().uuid(), status: z.enum(REGISTRATION_STATUSES) }).openapi('RegistrationStatus');

export const RegistrationListQuery = PageQuery.extend({
  status: z.enum(REGISTRATION_STATUSES).optional(),
  queue: z.enum(['mine', 'all']).default('mine').openapi({
    description: '`mine`: what waits for me (department review of departments I administer; role approval if I am an admin). `all`: every registration I may see',
  }),
});
export const RegistrationIdParams = z.object({ id: z.string().uuid('must be a registration id (uuid)') });
