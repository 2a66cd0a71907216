import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { UserSchema } from './user.entity.js';

/**
 * A user's SSH public key (seed 001 §3.1). Validated on the way in (type, size, data); the
 * fingerprint is unique among keys that are not revoked (partial unique index), so the same key
 * cannot belong to two people. Revoking keeps the row for the audit trail.
 */
export const SshKeySchema = defineEntity({
  name: 'SshKey',
  tableName: 'ssh_keys',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    user: () => p.manyToOne(UserSchema).index(),
    type: p.string().length(40),
    /** Key size in bits (RSA modulus, ECDSA curve size; 256 for ed25519). */
    bits: p.integer(),
    publicKey: p.text(),
    comment: p.string().length(200).nullable(),
    fingerprint: p.string().length(60),
    createdAt: p.datetime().onCreate(() => new Date()),
    revokedAt: p.datetime().nullable(),
  },
  uniques: [
    {
      name: 'ssh_keys_fingerprint_active_unique',
      expression: `create unique index "ssh_keys_fingerprint_active_unique" on "ssh_keys" ("fingerprint") where "revoked_at" is null`,
    },
  ],
});

export type SshKey = InferEntity<typeof SshKeySchema>;
