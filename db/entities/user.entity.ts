import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const ROLES = ['admin', 'approver', 'operator', 'requester', 'customer'] as const;
export type Role = (typeof ROLES)[number];

/**
 * A platform user. Until the identity issue lands, callers authenticate with a per-user API token;
 * only its SHA-256 is stored.
 */
export const UserSchema = defineEntity({
  name: 'User',
  tableName: 'users',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    username: p.string().length(64).unique(),
    email: p.string().length(255).nullable(),
    roles: p.json<Role[]>().default('[]'),
    apiTokenHash: p.string().length(64).nullable().unique(),
    disabledAt: p.datetime().nullable(),
    /** Set for a customer's people (role `customer`). */
    customerId: p.uuid().nullable().index(),
    fullName: p.string().length(100).nullable(),
    /** IANA time zone for dates in messages (e.g. lease reminders); UTC when unset. */
    timezone: p.string().length(64).nullable(),
    /** scrypt hash of a login password (customer users get a generated one, flagged must-change). */
    passwordHash: p.string().length(200).nullable(),
    mustChangePassword: p.boolean().default(false),
    /** Department the user belongs to (set by registration / invitation). */
    departmentId: p.uuid().nullable().index(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});

export type User = InferEntity<typeof UserSchema>;
