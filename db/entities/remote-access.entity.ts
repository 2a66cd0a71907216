import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { HostSchema } from './host.entity.js';

export const REMOTE_PROTOCOLS = ['ssh', 'vnc', 'rdp', 'http', 'tcp'] as const;
export type RemoteProtocol = (typeof REMOTE_PROTOCOLS)[number];

/**
 * One public entry to a host (seed 001 §3.5): `<slug>.<base_domain>:<public_port>` forwards to the
 * host's target port. The public port comes from the configured pool and is unique per gateway
 * (one nginx listens on it); (public_domain, public_port) is unique too.
 */
export const RemoteAccessSchema = defineEntity({
  name: 'RemoteAccess',
  tableName: 'remote_access',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    host: () => p.manyToOne(HostSchema).deleteRule('cascade').index(),
    protocol: p.enum(REMOTE_PROTOCOLS),
    enabled: p.boolean().default(true),
    /** The gateway (its public address) whose listener serves this entry; public ports are unique per gateway. */
    gateway: p.string().length(255),
    publicDomain: p.string().length(255),
    publicPort: p.integer(),
    targetPort: p.integer(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
  uniques: [{ properties: ['publicDomain', 'publicPort'] }, { properties: ['gateway', 'publicPort'] }, { properties: ['host', 'targetPort'] }],
});

export type RemoteAccess = InferEntity<typeof RemoteAccessSchema>;
