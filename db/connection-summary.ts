import type { SqlEntityManager } from '@mikro-orm/sql';
import { AllocationSchema, RemoteAccessSchema, SshKeySchema } from './entities/index.js';

export interface ConnectionSummary {
  allocation_id: string;
  host: { slug: string; name: string };
  /** Where to connect: the public entry from remote-access settings when SSH is published, else the host itself. */
  connect: { host: string; port: number; via: 'remote-access' | 'direct' };
  username: string;
  host_key_fingerprint: string | null;
  key_fingerprints: string[];
  ssh_command: string;
  password: 'reveal once via POST /api/v1/allocations/:id/credentials/reveal' | 'revealed' | 'none';
  other_ports: Array<{ protocol: string; public: string; target_port: number }>;
  /** Windows hosts: Remote Desktop — where to connect (the gateway's published RDP entry, else the host on 3389) and the `.rdp` file route. */
  rdp?: { full_address: string; username: string; via: 'remote-access' | 'direct'; file: string | null };
  ends_at: string;
}

/** What a customer needs to connect to an allocated host. Contains no secret. */
export async function connectionSummary(em: SqlEntityManager, allocationId: string): Promise<ConnectionSummary | null> {
  const a = await em.findOne(AllocationSchema, { id: allocationId }, { populate: ['host', 'customerUser'] });
  if (!a) return null;
  // Entries from before the port pool (`legacy:` gateways) are not served by the managed gateway.
  const access = (await em.find(RemoteAccessSchema, { host: a.host.id, enabled: true }, { orderBy: { publicPort: 'asc' } })).filter((r) => !r.gateway.startsWith('legacy:'));
  const sshEntry = access.find((r) => r.protocol === 'ssh' && r.targetPort === a.host.port);
  const connect = sshEntry
    ? { host: sshEntry.publicDomain, port: sshEntry.publicPort, via: 'remote-access' as const }
    : { host: a.host.address, port: a.host.port, via: 'direct' as const };
  const keys = await em.find(SshKeySchema, { user: a.customerUser.id, revokedAt: null }, { orderBy: { createdAt: 'asc' } });
  const account = a.hostAccountId
    ? await em.getConnection().execute<Array<{ has: boolean; revealed: boolean }>>(
        'select secret_ciphertext is not null as has, secret_revealed_at is not null as revealed from host_accounts where id = ?',
        [a.hostAccountId],
      )
    : [];
  return {
    allocation_id: a.id,
    host: { slug: a.host.slug, name: a.host.name },
    connect,
    username: a.osUsername,
    host_key_fingerprint: a.host.hostKeyFingerprint ?? null,
    key_fingerprints: keys.map((k) => k.fingerprint),
    ssh_command: `ssh -p ${connect.port} ${a.osUsername}@${connect.host}`,
    password: account[0]?.has ? 'reveal once via POST /api/v1/allocations/:id/credentials/reveal' : account[0]?.revealed ? 'revealed' : 'none',
    other_ports: access.filter((r) => r !== sshEntry).map((r) => ({ protocol: r.protocol, public: `${r.publicDomain}:${r.publicPort}`, target_port: r.targetPort })),
    ...(a.host.os === 'windows' ? { rdp: rdpSummary(a, access.find((r) => r.protocol === 'rdp')) } : {}),
    ends_at: a.endsAt.toISOString(),
  };
}

function rdpSummary(a: { id: string; osUsername: string; host: { address: string } }, entry: { publicDomain: string; publicPort: number } | undefined): NonNullable<ConnectionSummary['rdp']> {
  return entry
    ? { full_address: `${entry.publicDomain}:${entry.publicPort}`, username: a.osUsername, via: 'remote-access', file: `/api/v1/allocations/${a.id}/rdp` }
    : { full_address: `${a.host.address}:3389`, username: a.osUsername, via: 'direct', file: null };
}

export function connectionSummaryText(s: ConnectionSummary): string {
  if (s.rdp) {
    return [
      `Your Windows host ${s.host.name} (${s.host.slug}) is ready.`,
      '',
      `  Remote Desktop: ${s.rdp.full_address}${s.rdp.file ? ` (download the .rdp file: GET ${s.rdp.file})` : ''}`,
      `  Account:        ${s.rdp.username}`,
      `  Password:       ${s.password === 'none' ? 'none' : 'reveal it once in Hostflow (POST /api/v1/allocations/' + s.allocation_id + '/credentials/reveal)'}`,
      ...s.other_ports.filter((p) => p.protocol !== 'rdp').map((p) => `  ${p.protocol.toUpperCase()}: ${p.public} → port ${p.target_port}`),
      `  Lease ends:     ${s.ends_at} (UTC)`,
    ].join('\n');
  }
  return [
    `Your host ${s.host.name} (${s.host.slug}) is ready.`,
    '',
    `  Connect:   ${s.ssh_command}`,
    `  Account:   ${s.username}`,
    `  Host key:  ${s.host_key_fingerprint ?? '(not pinned yet)'} — check it on first connection`,
    `  Your keys: ${s.key_fingerprints.length ? s.key_fingerprints.join(', ') : 'none registered (use the password)'}`,
    `  Password:  ${s.password === 'none' ? 'none' : 'reveal it once in Hostflow (POST /api/v1/allocations/' + s.allocation_id + '/credentials/reveal)'}`,
    ...s.other_ports.map((p) => `  ${p.protocol.toUpperCase()}: ${p.public} → port ${p.target_port}`),
    `  Lease ends: ${s.ends_at} (UTC)`,
  ].join('\n');
}

/**
 * A Remote Desktop Connection file (`.rdp`, as mstsc and the Microsoft Remote Desktop apps read
 * it) for a published RDP entry: address and account, credentials prompted (never in the file).
 * Values are single lines by construction; anything else is stripped.
 */
export function rdpFile(o: { host: string; port: number; username: string }): string {
  const v = (s: string) => s.replace(/[\r\n\0]/g, '');
  return [
    `full address:s:${v(o.host)}:${o.port}`,
    `username:s:${v(o.username)}`,
    'prompt for credentials:i:1',
    // The published entry is the platform's TCP gateway (nginx stream), not an RD Gateway: the file
    // says so explicitly, so a client's own RD Gateway defaults do not reroute the connection.
    'gatewayhostname:s:',
    'gatewayusagemethod:i:0',
    'gatewayprofileusagemethod:i:1',
    'gatewaycredentialssource:i:0',
    'authentication level:i:2',
    'screen mode id:i:2',
    'use multimon:i:0',
    'session bpp:i:32',
    'audiomode:i:0',
    'redirectclipboard:i:1',
    'redirectprinters:i:0',
    'redirectdrives:i:0',
    'autoreconnection enabled:i:1',
    '',
  ].join('\r\n');
}

/** The allocation's RDP entry (enabled, served by the managed gateway) as `.rdp` file text, or null when the host publishes no RDP. */
export async function allocationRdpFile(em: SqlEntityManager, allocationId: string): Promise<{ name: string; text: string } | null> {
  const a = await em.findOne(AllocationSchema, { id: allocationId }, { populate: ['host'] });
  if (!a) return null;
  const entry = (await em.find(RemoteAccessSchema, { host: a.host.id, enabled: true, protocol: 'rdp' }, { orderBy: { publicPort: 'asc' } })).find((r) => !r.gateway.startsWith('legacy:'));
  if (!entry) return null;
  return { name: `${a.host.slug}.rdp`, text: rdpFile({ host: entry.publicDomain, port: entry.publicPort, username: a.osUsername }) };
}
