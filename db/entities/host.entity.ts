import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const HOST_STATUSES = ['pending', 'onboarding', 'online', 'maintenance', 'offline', 'failed'] as const;
export type HostStatus = (typeof HOST_STATUSES)[number];
export const HOST_OS = ['linux', 'windows'] as const;
export type HostOs = (typeof HOST_OS)[number];

export interface HostFacts {
  cpu?: { model: string; cores: number };
  memoryBytes?: number;
  disks?: Array<{ name: string; sizeBytes: number }>;
  gpus?: Array<{ model: string; memoryMiB: number; driver?: string; cuda?: string }>;
  collectedAt?: string;
}

export const HostSchema = defineEntity({
  name: 'Host',
  tableName: 'hosts',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    slug: p.string().length(63).unique(),
    name: p.string().length(200),
    address: p.string().length(255),
    port: p.integer(),
    os: p.enum(HOST_OS),
    /** Remote login user for Linux (SSH) or Windows (WinRM). */
    username: p.string().length(64),
    site: p.string().length(100).nullable(),
    group: p.string().length(100).nullable(),
    tags: p.json<string[]>().default('[]'),
    status: p.enum(HOST_STATUSES).default('pending').index(),
    /** SHA256 fingerprint pinned on first contact (trust on first use); mismatch later is a hard failure. */
    hostKeyFingerprint: p.string().length(100).nullable(),
    hostKeyPinnedAt: p.datetime().nullable(),
    winrmPort: p.integer().nullable(),
    winrmHttps: p.boolean().default(true),
    facts: p.json<HostFacts>().nullable(),
    lastSeenAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});

export type Host = InferEntity<typeof HostSchema>;
