import { defineConfig as definePgConfig, PostgreSqlDriver } from '@mikro-orm/postgresql';
import { PgliteDriver } from '@mikro-orm/pglite';
import { Migrator } from '@mikro-orm/migrations';
import type { Options } from '@mikro-orm/core';
import { ALL_ENTITIES } from './entities/index.js';
import { migrationsList } from './migrations/index.js';

export interface DbTarget {
  /** postgres:// URL → PostgreSQL; otherwise PGlite at `pgliteDir` ('memory://' for an in-memory database). */
  databaseUrl?: string;
  pgliteDir?: string;
  debug?: boolean;
  poolMax?: number;
}

const migrations = {
  migrationsList,
  path: 'db/migrations',
  pathTs: 'db/migrations',
  emit: 'ts' as const,
  snapshot: false,
  allOrNothing: true,
  transactional: true,
};

/** One config for both engines: the same entities and the same migrations. */
export function ormConfig(target: DbTarget): Options {
  const common = {
    entities: ALL_ENTITIES,
    extensions: [Migrator],
    migrations,
    debug: target.debug ?? false,
    // Schema changes happen only through migrations.
    ensureDatabase: false,
    allowGlobalContext: false,
  } satisfies Partial<Options>;
  if (target.databaseUrl) {
    return definePgConfig({ ...common, driver: PostgreSqlDriver, clientUrl: target.databaseUrl, pool: { max: target.poolMax ?? 20 } }) as Options;
  }
  return { ...common, driver: PgliteDriver, dbName: target.pgliteDir ?? 'memory://' } as unknown as Options;
}
