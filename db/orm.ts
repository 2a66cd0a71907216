import { mkdir } from 'node:fs/promises';
import { MikroORM, type EntityManager } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { ormConfig, type DbTarget } from './mikro-orm.config.js';

export interface Db {
  orm: MikroORM;
  /** The root EntityManager: fork it per request / activity call. */
  em: SqlEntityManager;
  kind: 'postgresql' | 'pglite';
  close(): Promise<void>;
  ping(): Promise<void>;
}

/** Opens the database and applies pending migrations (never schema sync). */
export async function initORM(target: DbTarget, opts: { migrate?: boolean } = {}): Promise<Db> {
  if (!target.databaseUrl && target.pgliteDir && !target.pgliteDir.startsWith('memory:')) {
    await mkdir(target.pgliteDir, { recursive: true });
  }
  const orm = await MikroORM.init(ormConfig(target));
  if (opts.migrate !== false) {
    await orm.migrator.up();
  }
  const em = orm.em as unknown as SqlEntityManager;
  return {
    orm,
    em,
    kind: target.databaseUrl ? 'postgresql' : 'pglite',
    close: () => orm.close(true),
    ping: async () => {
      await em.fork().getConnection().execute('select 1');
    },
  };
}

export type { EntityManager };
