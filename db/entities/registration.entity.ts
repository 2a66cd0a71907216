import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const REGISTRATION_STATUSES = [
  'pending_verification',
  'pending_department_review',
  'changes_requested',
  'pending_role_approval',
  'activating',
  'activated',
  'rejected',
  'expired',
  'failed',
] as const;
export type RegistrationStatus = (typeof REGISTRATION_STATUSES)[number];
/** Statuses in which a registration still holds its email address (one open registration per email). */
export const OPEN_REGISTRATION_STATUSES = ['pending_verification', 'pending_department_review', 'changes_requested', 'pending_role_approval', 'activating'] as const;

/**
 * A self-registration or an invitation: the `user-registration/<id>` workflow is the truth while
 * it runs; this row mirrors its status for listing (reviewer queues) and holds the applicant's
 * data (the workflow gets ids, not personal data, at start).
 */
export const RegistrationSchema = defineEntity({
  name: 'Registration',
  tableName: 'registrations',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    kind: p.enum(['self', 'invitation'] as const),
    /** Lower-cased. */
    email: p.string().length(255).index(),
    fullName: p.string().length(100).nullable(),
    phone: p.string().length(40).nullable(),
    departmentId: p.uuid().nullable().index(),
    requestedRoles: p.json<string[]>().default('[]'),
    grantedRoles: p.json<string[]>().nullable(),
    reason: p.string().length(1000).nullable(),
    username: p.string().length(64).nullable(),
    status: p.enum(REGISTRATION_STATUSES).index(),
    /** Review round: 1, then +1 per resubmission after "return for changes". */
    round: p.integer().default(1),
    invitedBy: p.uuid().nullable(),
    verifiedAt: p.datetime().nullable(),
    departmentReviewedBy: p.uuid().nullable(),
    departmentReviewedAt: p.datetime().nullable(),
    departmentComment: p.string().length(1000).nullable(),
    roleApprovedBy: p.uuid().nullable(),
    roleApprovedAt: p.datetime().nullable(),
    roleComment: p.string().length(1000).nullable(),
    /** The user created at activation. */
    userId: p.uuid().nullable(),
    deadlineAt: p.datetime().nullable(),
    resultMessage: p.string().length(1000).nullable(),
    workflowId: p.string().length(200),
    createdAt: p.datetime().onCreate(() => new Date()).index(),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
  uniques: [
    {
      name: 'registrations_open_email_unique',
      expression: `create unique index "registrations_open_email_unique" on "registrations" ("email") where "status" in ('pending_verification', 'pending_department_review', 'changes_requested', 'pending_role_approval', 'activating')`,
    },
  ],
});

export type Registration = InferEntity<typeof RegistrationSchema>;

/**
 * Single-use links of a registration: email verification and resubmission after "return for
 * changes". Only the SHA-256 is stored; the token exists only in the email.
 */
export const RegistrationTokenSchema = defineEntity({
  name: 'RegistrationToken',
  tableName: 'registration_tokens',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    registrationId: p.uuid().index(),
    purpose: p.enum(['verify', 'resubmit'] as const),
    tokenHash: p.string().length(64).unique(),
    expiresAt: p.datetime(),
    usedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});

export type RegistrationToken = InferEntity<typeof RegistrationTokenSchema>;
