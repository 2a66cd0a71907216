import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/** A role name: a row of the `roles` table (built-in names in api/authz/permissions.ts). */
export type RoleName = string;
/** @deprecated kept so existing callers compile: a role name. */
export type Role = RoleName;

/**
 * A platform user. People log in with a password (argon2id) and optionally a second factor;
 * automation uses API keys (api-key.entity.ts).
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
    disabledAt: p.datetime().nullable(),
    /** Set for a customer's people (roles `customer_owner` / `customer_member`): their tenant. */
    customerId: p.uuid().nullable().index(),
    fullName: p.string().length(100).nullable(),
    /** IANA time zone for dates in messages (e.g. lease reminders); UTC when unset. */
    timezone: p.string().length(64).nullable(),
    /** argon2id hash of the login password (older scrypt hashes are migrated at the next login). */
    passwordHash: p.string().length(200).nullable(),
    mustChangePassword: p.boolean().default(false),
    /** Department the user belongs to (set by registration / invitation). */
    departmentId: p.uuid().nullable().index(),
    passwordChangedAt: p.datetime().nullable(),
    /** TOTP seed, encrypted with the Vault (context `user-totp:<id>`); pending until totpEnabledAt. */
    totpSecretCiphertext: p.text().nullable(),
    totpEnabledAt: p.datetime().nullable(),
    /** Last accepted TOTP time step: a code is accepted once. */
    totpLastStep: p.bigint('number').nullable(),
    /** Email codes as second factor. */
    mfaEmailEnabledAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});

export type User = InferEntity<typeof UserSchema>;

/** Vault context (AAD) of a user's TOTP seed. */
export const userTotpContext = (userId: string) => `user-totp:${userId}`;
