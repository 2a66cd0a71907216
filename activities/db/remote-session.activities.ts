import type { SqlEntityManager } from '@mikro-orm/sql';
import { RemoteSessionSchema } from '../../db/entities/index.js';

/** Remote-session bookkeeping for lifecycles (the API processes holding the sockets act on the rows). */
export function createRemoteSessionActivities(deps: { em: SqlEntityManager }) {
  return {
    /**
     * Reclaim ends the tenant's browser sessions first: every live session of the allocation gets a
     * terminate request (reason `reclaim`), which the API process holding it applies within a second.
     */
    async endAllocationSessions(allocationId: string): Promise<{ requested: number }> {
      const requested = await deps.em.fork().nativeUpdate(RemoteSessionSchema, { allocationId, endedAt: null, terminateRequestedAt: null }, { terminateRequestedAt: new Date(), terminateReason: 'reclaim' });
      return { requested };
    },
  };
}
