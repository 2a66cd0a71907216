import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { HostSchema } from './host.entity.js';

export const CREDENTIAL_KINDS = ['password', 'private-key', 'winrm-password'] as const;
export type CredentialKind = (typeof CREDENTIAL_KINDS)[number];

/** A host's login secret, encrypted at rest (see db/vault.ts). Never returned by the API. */
export const HostCredentialSchema = defineEntity({
  name: 'HostCredential',
  tableName: 'host_credentials',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    host: () => p.manyToOne(HostSchema).deleteRule('cascade').index(),
    kind: p.enum(CREDENTIAL_KINDS),
    /** Vault envelope: `v1.<keyId>.<iv>.<tag>.<ciphertext>` (base64url parts). */
    ciphertext: p.text(),
    keyId: p.string().length(64),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
  uniques: [{ properties: ['host', 'kind'] }],
});

export type HostCredential = InferEntity<typeof HostCredentialSchema>;
