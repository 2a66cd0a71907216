import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { HostSchema } from './host.entity.js';

export const HOST_ACCOUNT_STATUSES = ['provisioning', 'active', 'disabled', 'deleted'] as const;
export type HostAccountStatus = (typeof HOST_ACCOUNT_STATUSES)[number];

/**
 * An OS account on a managed host (seed: ZASCA CloudComputerUser). `origin` says whether the
 * platform created it — only those may be disabled/deleted/reset by the platform.
 * The password is stored encrypted until the owner reveals it once; then it is wiped.
 */
export const HostAccountSchema = defineEntity({
  name: 'HostAccount',
  tableName: 'host_accounts',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    host: () => p.manyToOne(HostSchema).index(),
    username: p.string().length(64),
    fullName: p.string().length(100).nullable(),
    email: p.string().length(255).nullable(),
    description: p.string().length(200).nullable(),
    origin: p.enum(['platform-created', 'pre-existing'] as const),
    status: p.enum(HOST_ACCOUNT_STATUSES).default('provisioning').index(),
    groups: p.json<string[]>().default('[]'),
    isAdmin: p.boolean().default(false),
    /** Who may reveal the password (the applicant / customer user). */
    ownerUserId: p.uuid().nullable(),
    secretCiphertext: p.text().nullable(),
    secretKeyId: p.string().length(64).nullable(),
    /** Bumped on every new password, so a stale reveal cannot be confused with a new one. */
    secretVersion: p.integer().default(0),
    secretRevealedAt: p.datetime().nullable(),
    /** The reset operation that produced the current password (a retried reset re-applies it). */
    lastResetOpId: p.string().length(200).nullable(),
    /**
     * A password change in flight: the new password, encrypted under version `secretVersion + 1`,
     * written before the change is sent and promoted to `secretCiphertext` only after a login with
     * it succeeded (activities/remote/pending-password.ts). Until then both are known.
     */
    pendingSecretCiphertext: p.text().nullable(),
    pendingSecretKeyId: p.string().length(64).nullable(),
    pendingSince: p.datetime().nullable().index(),
    /** The operation (workflow id) whose change is pending. */
    pendingOpId: p.string().length(200).nullable(),
    /** Reconciliation rounds that could not tell which password works (neither logged in, or the host was unreachable). */
    pendingAttempts: p.integer().default(0),
    createdFromRequestId: p.uuid().nullable(),
    /** Set for a customer's account made by an allocation (marker `allocation/<id>` on the host). */
    createdFromAllocationId: p.uuid().nullable(),
    /** The OS uid while the account existed (Linux): reclaim looks for what that uid left after the name is gone. */
    uid: p.integer().nullable(),
    /** The account's SID while it existed (Windows): reclaim looks for its processes, tasks and profile by it after the name is gone. */
    sid: p.string().length(200).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
  uniques: [{ properties: ['host', 'username'] }],
});

export type HostAccount = InferEntity<typeof HostAccountSchema>;
