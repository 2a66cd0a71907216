import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { HostSchema, RemoteAccessSchema, type RemoteProtocol } from './entities/index.js';

/** A range of public ports a gateway hands out, inclusive (REMOTE_ACCESS_PORT_POOL, e.g. `20000-29999`). */
export interface PortPool {
  from: number;
  to: number;
}

export interface GatewayPorts {
  /** The gateway's public address (REMOTE_ACCESS_GATEWAY_ADDRESS); ports are unique per gateway. */
  gateway: string;
  pool: PortPool;
}

/** The defaults of REMOTE_ACCESS_GATEWAY_ADDRESS (the base domain) and REMOTE_ACCESS_PORT_POOL. */
export function defaultGatewayPorts(baseDomain: string): GatewayPorts {
  return { gateway: baseDomain, pool: { from: 20000, to: 29999 } };
}

/** The gateway and pool from the environment (config/env.ts). */
export function gatewayPortsFromEnv(e: { REMOTE_ACCESS_BASE_DOMAIN: string; REMOTE_ACCESS_GATEWAY_ADDRESS?: string; REMOTE_ACCESS_PORT_POOL: string }): GatewayPorts {
  return { gateway: e.REMOTE_ACCESS_GATEWAY_ADDRESS ?? e.REMOTE_ACCESS_BASE_DOMAIN, pool: parsePortPool(e.REMOTE_ACCESS_PORT_POOL) };
}

export function parsePortPool(s: string): PortPool {
  const m = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(s);
  const from = Number(m?.[1]);
  const to = Number(m?.[2]);
  if (!m || from < 1 || to > 65535 || from > to) throw new Error(`port pool must look like 20000-29999 (1..65535, from <= to): ${s}`);
  return { from, to };
}

export class PortPoolError extends Error {
  constructor(
    message: string,
    readonly type: 'PortPoolExhausted' | 'PortOutsidePool' | 'RemoteAccessConflict',
  ) {
    super(message);
    this.name = 'PortPoolError';
  }
}

export interface EntryRequest {
  protocol: RemoteProtocol;
  publicDomain: string;
  targetPort: number;
  /** An explicit public port (must lie in the pool); null = the lowest free one. */
  publicPort: number | null;
}

export interface SavedEntry {
  protocol: RemoteProtocol;
  publicDomain: string;
  publicPort: number;
  targetPort: number;
}

/**
 * Replaces a host's remote-access entries with `plan`, assigning each its public port from the
 * pool: the port the host already had for that target (a re-run keeps the customer's address),
 * else the explicit override, else the lowest port no entry of this gateway uses. The database
 * enforces (gateway, public_port) uniqueness; two concurrent assignments that pick the same port
 * lose one insert to the constraint and the loser picks again. Ports of deleted entries (host
 * retired or deleted, remote access turned off) are free at once: nothing but the rows holds them.
 */
export async function assignPorts(em: SqlEntityManager, hostId: string, plan: EntryRequest[], o: GatewayPorts): Promise<SavedEntry[]> {
  for (const e of plan) {
    if (e.publicPort !== null && (e.publicPort < o.pool.from || e.publicPort > o.pool.to)) {
      throw new PortPoolError(`public_ports: ${e.publicPort} (for target port ${e.targetPort}) is outside the gateway's port pool ${o.pool.from}-${o.pool.to}`, 'PortOutsidePool');
    }
  }
  for (let attempt = 0; ; attempt++) {
    try {
      return await em.fork().transactional(async (tx) => {
        const host = await tx.findOneOrFail(HostSchema, { id: hostId });
        const previous = await tx.find(RemoteAccessSchema, { host: hostId });
        const kept = new Map(previous.filter((r) => r.gateway === o.gateway && r.publicPort >= o.pool.from && r.publicPort <= o.pool.to).map((r) => [r.targetPort, r.publicPort]));
        const wasEnabled = previous.length === 0 || previous.some((r) => r.enabled);
        await tx.nativeDelete(RemoteAccessSchema, { host: hostId });
        const used = new Set(
          (await tx.find(RemoteAccessSchema, { gateway: o.gateway, publicPort: { $gte: o.pool.from, $lte: o.pool.to } }, { fields: ['publicPort'] })).map((r) => r.publicPort),
        );
        const saved: SavedEntry[] = [];
        // Explicit and kept ports first, so a free-port pick never takes one the plan names.
        const fixed = plan.map((e) => e.publicPort ?? kept.get(e.targetPort) ?? null);
        for (const port of fixed) if (port !== null) used.add(port);
        let next = o.pool.from;
        for (const [i, e] of plan.entries()) {
          let port = fixed[i] ?? null;
          if (port === null) {
            while (next <= o.pool.to && used.has(next)) next++;
            if (next > o.pool.to) throw new PortPoolError(`the gateway ${o.gateway} has no free public port left in ${o.pool.from}-${o.pool.to} (raise REMOTE_ACCESS_PORT_POOL)`, 'PortPoolExhausted');
            port = next;
            used.add(port);
          }
          tx.create(RemoteAccessSchema, { host, gateway: o.gateway, protocol: e.protocol, publicDomain: e.publicDomain, publicPort: port, targetPort: e.targetPort, enabled: wasEnabled });
          saved.push({ protocol: e.protocol, publicDomain: e.publicDomain, publicPort: port, targetPort: e.targetPort });
        }
        await tx.flush();
        return saved;
      });
    } catch (err) {
      if (!(err instanceof UniqueConstraintViolationException)) throw err;
      // Explicit ports another host holds: picking again cannot help.
      if (plan.some((e) => e.publicPort !== null) && attempt >= 1) {
        throw new PortPoolError(`remote access clash: ${plan.map((e) => `${e.publicDomain}:${e.publicPort ?? 'pool'}`).join(', ')} is already used by another host`, 'RemoteAccessConflict');
      }
      if (attempt >= 20) throw err;
    }
  }
}

/**
 * Adds one entry to a host without touching its others (VNC auto-deployment's entry), or returns
 * the host's entry for that target port when it exists already (a re-run keeps its public port).
 * The public port is the lowest free one of the pool; a concurrent pick of the same port loses to
 * the (gateway, public_port) constraint and picks again.
 */
export async function ensureEntry(em: SqlEntityManager, hostId: string, e: Omit<EntryRequest, 'publicPort' | 'publicDomain'> & { publicDomain?: string }, o: GatewayPorts & { baseDomain: string }): Promise<SavedEntry & { createdNow: boolean }> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await em.fork().transactional(async (tx) => {
        const host = await tx.findOneOrFail(HostSchema, { id: hostId });
        const mine = await tx.find(RemoteAccessSchema, { host: hostId });
        const same = mine.find((r) => r.targetPort === e.targetPort);
        if (same) return { protocol: same.protocol, publicDomain: same.publicDomain, publicPort: same.publicPort, targetPort: same.targetPort, createdNow: false };
        const used = new Set((await tx.find(RemoteAccessSchema, { gateway: o.gateway, publicPort: { $gte: o.pool.from, $lte: o.pool.to } }, { fields: ['publicPort'] })).map((r) => r.publicPort));
        let port = o.pool.from;
        while (port <= o.pool.to && used.has(port)) port++;
        if (port > o.pool.to) throw new PortPoolError(`the gateway ${o.gateway} has no free public port left in ${o.pool.from}-${o.pool.to} (raise REMOTE_ACCESS_PORT_POOL)`, 'PortPoolExhausted');
        const publicDomain = e.publicDomain ?? mine[0]?.publicDomain ?? `${host.slug}.${o.baseDomain}`.toLowerCase();
        tx.create(RemoteAccessSchema, { host, gateway: o.gateway, protocol: e.protocol, publicDomain, publicPort: port, targetPort: e.targetPort, enabled: mine.length === 0 || mine.some((r) => r.enabled) });
        await tx.flush();
        return { protocol: e.protocol, publicDomain, publicPort: port, targetPort: e.targetPort, createdNow: true };
      });
    } catch (err) {
      if (!(err instanceof UniqueConstraintViolationException) || attempt >= 20) throw err;
    }
  }
}
