import type { SqlEntityManager } from '@mikro-orm/sql';
import type { RemoteExecutor } from './executor.js';
import { RemoteError } from './executor.js';
import { classified } from './failures.js';
import { HostSchema } from '../../db/entities/index.js';

export interface PingResult {
  hostId: string;
  reachable: true;
  exitCode: number;
  latencyMs: number;
}

/** Activities that run commands on managed hosts. */
export function createRemoteActivities(deps: { ssh: RemoteExecutor; winrm: RemoteExecutor; em: SqlEntityManager }) {
  return {
    /** Opens (or reuses) a session to the host and runs a no-op (`true` / `exit 0`). */
    async pingHost(hostId: string): Promise<PingResult> {
      return classified(async () => {
        const host = await deps.em.fork().findOne(HostSchema, { id: hostId }, { fields: ['os'] });
        if (!host) throw new RemoteError('HostNotFound', `host ${hostId} does not exist`);
        const r = host.os === 'windows' ? await deps.winrm.exec(hostId, 'exit 0', { timeoutMs: 15_000 }) : await deps.ssh.exec(hostId, 'true', { timeoutMs: 15_000 });
        return { hostId, reachable: true as const, exitCode: r.exitCode, latencyMs: r.durationMs };
      });
    },
  };
}
