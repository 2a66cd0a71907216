import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const HOST_STATUSES = ['pending', 'onboarding', 'online', 'maintenance', 'offline', 'failed'] as const;
export type HostStatus = (typeof HOST_STATUSES)[number];
export const HOST_OS = ['linux', 'windows'] as const;
export type HostOs = (typeof HOST_OS)[number];
/** WinRM authentication: negotiate = Kerberos when configured for the account's realm, else NTLM. */
export const WINRM_AUTH = ['negotiate', 'ntlm', 'kerberos', 'basic'] as const;
export type WinRmAuth = (typeof WINRM_AUTH)[number];

export interface HostFacts {
  cpu?: { model: string; cores: number; sockets?: number; threadsPerCore?: number };
  memoryBytes?: number;
  disks?: Array<{ name: string; sizeBytes: number; model?: string; rotational?: boolean }>;
  /**
   * `memorySource` (Windows): `registry` = the driver's 64-bit qwMemorySize, `adapter-ram` =
   * Win32_VideoController.AdapterRAM, a uint32; `memoryCapped` = AdapterRAM saturated at 4 GiB, so
   * the card has at least `memoryMiB`, not exactly that.
   */
  gpus?: Array<{ index: number; model: string; memoryMiB: number; driver: string; uuid?: string; memorySource?: 'registry' | 'adapter-ram' | 'nvidia-smi'; memoryCapped?: boolean }>;
  cuda?: string;
  os?: { name: string; version: string; kernel: string };
  hostname?: string;
  collectedAt?: string;
}

/**
 * Which privileged account requests a host (or its environment template) permits. Privileged
 * groups (root, sudo, wheel, adm, disk, docker, lxd; Windows: Administrators …) and `is_admin`
 * are denied unless allowed here; even then only staff (admin/operator) may request them unless
 * `privilegedBy` is `anyone`.
 */
export interface AccountPolicy {
  allowAdmin?: boolean;
  allowGroups?: string[];
  privilegedBy?: 'staff' | 'anyone';
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
    winrmAuth: p.enum(WINRM_AUTH).default('negotiate'),
    /** Basic over plain HTTP (credentials and scripts in clear text): refused unless set; changes are audited. */
    winrmAllowUnencryptedBasic: p.boolean().default(false),
    facts: p.json<HostFacts>().nullable(),
    /** What the operator expects to find (onboarding asks a human to confirm when facts differ). */
    expectedGpu: p.json<{ model?: string; count?: number }>().nullable(),
    /** Environment template to apply during onboarding (id of an EnvTemplate version). */
    templateId: p.uuid().nullable(),
    /** Privileged account requests this host permits (see AccountPolicy); null = none. */
    accountPolicy: p.json<AccountPolicy>().nullable(),
    /** Tenant (customer) that owns the host, if any. */
    ownerTenant: p.string().length(100).nullable(),
    /** Consecutive failed periodic re-checks; offline after a threshold. */
    recheckFailures: p.integer().default(0),
    lastSeenAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});

export type Host = InferEntity<typeof HostSchema>;
