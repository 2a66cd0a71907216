import type { SqlEntityManager } from '@mikro-orm/sql';
import type { RemoteExecutor } from './remote/executor.js';
import type { Logger } from '../config/logger.js';
import { createRemoteActivities } from './remote/remote.activities.js';
import { createHostDbActivities } from './db/host.activities.js';

export interface ActivityDeps {
  em: SqlEntityManager;
  remote: RemoteExecutor;
  logger: Logger;
}

/** The object the worker registers: every activity, with its dependencies injected. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createRemoteActivities(deps),
    ...createHostDbActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
