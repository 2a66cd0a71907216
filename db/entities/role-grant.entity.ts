import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const ROLE_GRANT_STATUSES = ['active', 'expired', 'revoked'] as const;
export type RoleGrantStatus = (typeof ROLE_GRANT_STATUSES)[number];

/**
 * A role held until a moment: the `role-grant/<id>` workflow adds nothing itself (the API adds the
 * role when it creates the grant) but sleeps to the end and takes the role away exactly once.
 * At most one active grant per (user, role).
 */
export const RoleGrantSchema = defineEntity({
  name: 'RoleGrant',
  tableName: 'role_grants',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    userId: p.uuid().index(),
    role: p.string().length(32),
    until: p.datetime(),
    reason: p.string().length(1000),
    grantedBy: p.uuid(),
    status: p.enum(ROLE_GRANT_STATUSES).default('active'),
    revokedBy: p.uuid().nullable(),
    revokeReason: p.string().length(1000).nullable(),
    endedAt: p.datetime().nullable(),
    workflowId: p.string().length(200),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
  uniques: [
    {
      name: 'role_grants_active_unique',
      expression: `create unique index "role_grants_active_unique" on "role_grants" ("user_id", "role") where "status" = 'active'`,
    },
  ],
});

export type RoleGrant = InferEntity<typeof RoleGrantSchema>;
