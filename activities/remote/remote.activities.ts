import type { RemoteExecutor } from './executor.js';
import { classified } from './failures.js';

export interface PingResult {
  hostId: string;
  reachable: true;
  exitCode: number;
  latencyMs: number;
}

/** Activities that run commands on managed hosts. */
export function createRemoteActivities(deps: { remote: RemoteExecutor }) {
  return {
    /** Opens (or reuses) a session to the host and runs `true`. */
    async pingHost(hostId: string): Promise<PingResult> {
      return classified(async () => {
        const r = await deps.remote.exec(hostId, 'true', { timeoutMs: 15_000 });
        return { hostId, reachable: true as const, exitCode: r.exitCode, latencyMs: r.durationMs };
      });
    },
  };
}
