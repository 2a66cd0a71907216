import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/** A role name: a row of the `roles` table (built-in names in api/authz/permissions.ts). */
export type RoleName = string;
/** @deprecated kept so existing callers compile: a role name. */
export type Role = RoleName;

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
    /** Role names, each a row of `roles` (validated on write against the table). */
    roles: p.json<RoleName[]>().default('[]'),
    apiTokenHash: p.string().length(64).nullable().unique(),
    disabledAt: p.datetime().nullable(),
    /** Set for a customer's people (roles `customer_owner` / `customer_member`): their tenant. */
    customerId: p.uuid().nullable().index(),
    fullName: p.string().length(100).nullable(),
    /** IANA time zone for dates in messages (e.g. lease reminders); UTC when unset. */
    timezone: p.string().length(64).nullable(),
    /** scrypt hash of a login password (customer users get a generated one, flagged must-change). */
    passwordHash: p.string().length(200).nullable(),
    mustChangePassword: p.boolean().default(false),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});

export type User = InferEntity<typeof UserSchema>;
