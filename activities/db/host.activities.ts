import type { SqlEntityManager } from '@mikro-orm/sql';
import { HostSchema } from '../../db/entities/index.js';

/** Status mirrors and record writes about hosts. */
export function createHostDbActivities(deps: { em: SqlEntityManager }) {
  return {
    async markHostSeen(hostId: string, at: string): Promise<void> {
      await deps.em.fork().createQueryBuilder(HostSchema).update({ lastSeenAt: new Date(at) }).where({ id: hostId }).execute();
    },
  };
}
