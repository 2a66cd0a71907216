import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { HostSchema } from './host.entity.js';
import { UserSchema } from './user.entity.js';

export const REQUEST_STATUSES = ['pending', 'approved', 'provisioning', 'done', 'failed', 'rejected', 'withdrawn', 'expired'] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];
/** Statuses in which a request still holds its (host, username): a second request for it is a 409. */
export const OPEN_REQUEST_STATUSES: readonly RequestStatus[] = ['pending', 'approved', 'provisioning', 'failed'];

/**
 * A user's request for an OS account on a host (seed: ZASCA AccountOpeningRequest).
 * The running `account-opening/<id>` workflow is the truth; this row mirrors it for listing.
 * One open request per (host, username): a partial unique index (see migration).
 */
export const AccountOpeningRequestSchema = defineEntity({
  name: 'AccountOpeningRequest',
  tableName: 'account_opening_requests',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    applicant: () => p.manyToOne(UserSchema).index(),
    contactEmail: p.string().length(255),
    contactPhone: p.string().length(50).nullable(),
    username: p.string().length(64),
    fullName: p.string().length(100),
    userEmail: p.string().length(255).nullable(),
    description: p.string().length(200).nullable(),
    host: () => p.manyToOne(HostSchema).index(),
    groups: p.json<string[]>().default('[]'),
    isAdmin: p.boolean().default(false),
    status: p.enum(REQUEST_STATUSES).default('pending').index(),
    approvedBy: () => p.manyToOne(UserSchema).nullable(),
    decidedAt: p.datetime().nullable(),
    approvalNotes: p.string().length(1000).nullable(),
    rejectReason: p.string().length(1000).nullable(),
    resultMessage: p.string().length(2000).nullable(),
    failureType: p.string().length(100).nullable(),
    hostAccountId: p.uuid().nullable(),
    workflowId: p.string().length(200),
    expiresAt: p.datetime(),
    createdAt: p.datetime().onCreate(() => new Date()).index(),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
  uniques: [
    {
      name: 'account_opening_requests_open_unique',
      expression: `create unique index "account_opening_requests_open_unique" on "account_opening_requests" ("host_id", "username") where "status" in ('pending', 'approved', 'provisioning', 'failed')`,
    },
  ],
});

export type AccountOpeningRequest = InferEntity<typeof AccountOpeningRequestSchema>;
