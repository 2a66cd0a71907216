import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Client } from '@temporalio/client';
import type { Logger } from '../config/logger.js';
import type { Vault } from '../db/vault.js';
import type { RoleCache } from './authz/principal.js';

/** What the API needs; injected so tests build the app directly against real services. */
export interface AppDeps {
  em: SqlEntityManager;
  vault: Vault;
  logger: Logger;
  temporal: { client: Client; taskQueue: string };
  settings: { accountOpeningExpiryDays: number; leaseBufferDays?: number; reclaimGraceMinutes?: number };
  /** Readiness probes: each throws when its dependency is unreachable. */
  checks: { db: () => Promise<void>; temporal: () => Promise<void> };
  /** The roles table in memory; created by createApp when absent. */
  roleCache?: RoleCache;
}
