import type { SqlEntityManager } from '@mikro-orm/sql';
import { HostSchema, HostCredentialSchema, type Host } from '../../db/entities/index.js';
import type { WinRmAuth } from '../../db/entities/host.entity.js';
import type { Vault } from '../../db/vault.js';
import { RemoteError } from './executor.js';
import { noteActivityHostOs } from '../../config/metrics.js';

/** Everything needed to open a session to a host. Lives only in activity memory, never in history. */
export interface HostTarget {
  hostId: string;
  os: Host['os'];
  address: string;
  port: number;
  username: string;
  password?: string;
  privateKey?: string;
  pinnedFingerprint: string | null;
  winrmPort: number | null;
  winrmHttps: boolean;
  winrmAuth?: WinRmAuth;
  winrmAllowUnencryptedBasic?: boolean;
}

export function credentialContext(hostId: string, kind: string): string {
  return `host-credential:${hostId}:${kind}`;
}

/** AAD for a host account's password: bound to the account and its password version. */
export function hostAccountSecretContext(accountId: string, version: number): string {
  return `host-account:${accountId}:v${version}`;
}

/** Resolves a host id into connection settings, decrypting its credentials. */
export async function resolveHostTarget(em: SqlEntityManager, vault: Vault, hostId: string): Promise<HostTarget> {
  const fork = em.fork();
  const host = await fork.findOne(HostSchema, { id: hostId });
  if (!host) throw new RemoteError('HostNotFound', `host ${hostId} does not exist`);
  noteActivityHostOs(host.os);
  const creds = await fork.find(HostCredentialSchema, { host: hostId });
  const get = (kind: string) => {
    const c = creds.find((x) => x.kind === kind);
    return c ? vault.decrypt(c.ciphertext, credentialContext(hostId, kind)) : undefined;
  };
  const target: HostTarget = {
    hostId,
    os: host.os,
    address: host.address,
    port: host.port,
    username: host.username,
    password: get(host.os === 'windows' ? 'winrm-password' : 'password'),
    privateKey: get('private-key'),
    pinnedFingerprint: host.hostKeyFingerprint ?? null,
    winrmPort: host.winrmPort ?? null,
    winrmHttps: host.winrmHttps,
    winrmAuth: host.winrmAuth,
    winrmAllowUnencryptedBasic: host.winrmAllowUnencryptedBasic,
  };
  if (!target.password && !target.privateKey) {
    throw new RemoteError('CredentialMissing', `host ${host.slug} has no credential to log in with`);
  }
  return target;
}

/**
 * Trust on first use: records the host key fingerprint if none is pinned yet. Returns the pinned
 * value (which may be another one, if a concurrent connection pinned first).
 */
export async function pinHostKey(em: SqlEntityManager, hostId: string, fingerprint: string): Promise<string> {
  const fork = em.fork();
  await fork
    .createQueryBuilder(HostSchema)
    .update({ hostKeyFingerprint: fingerprint, hostKeyPinnedAt: new Date() })
    .where({ id: hostId, hostKeyFingerprint: null })
    .execute();
  const host = await fork.findOneOrFail(HostSchema, { id: hostId });
  return host.hostKeyFingerprint!;
}
