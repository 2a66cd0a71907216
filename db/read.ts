// The read path of list endpoints (api/routes/*, db/audit): one query per page (rows + `count(*) over ()`), rows mapped
// to plain objects by MikroORM's query builder (property names, typed values, joined relations as
// nested objects) without creating entities or an identity map. Writes keep using entities.
import { raw, type EntityName } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';

export interface ReadPageOptions {
  limit: number;
  offset: number;
  orderBy: Record<string, 'asc' | 'desc'>;
  /**
   * Many-to-one relations to load with the page, each with the fields the response needs (a left
   * join each; the relation comes back as `{ field: value }`, or null).
   */
  join?: Record<string, readonly string[]>;
  /** Extra computed columns, `name → SQL expression` over the root alias `e` (e.g. an `exists (…)`). */
  computed?: Record<string, string>;
}

const TOTAL = '__total';

/**
 * One page of `entity` matching `where` (entity property names, as `em.find` takes them, scope
 * included), and the total number of matches — from a single statement. A page past the end has
 * no row to carry the window count; only then is a separate `count(*)` sent.
 *
 * The rows are plain objects shaped like the entity: scalar properties as `em.find` would set
 * them, joined relations as objects holding only their selected fields. Callers type them with
 * the entity's type and read only those fields.
 */
export async function readPage<T extends object, Computed extends object = object>(
  em: SqlEntityManager,
  entity: EntityName<T>,
  where: Record<string, unknown>,
  opts: ReadPageOptions,
): Promise<{ rows: Array<T & Computed>; total: number }> {
  const fields: unknown[] = ['e.*', raw(`count(*) over () as "${TOTAL}"`)];
  for (const [name, sql] of Object.entries(opts.computed ?? {})) fields.push(raw(`${sql} as "${name}"`));
  const qb = em.createQueryBuilder(entity, 'e').select(fields as never);
  for (const [rel, relFields] of Object.entries(opts.join ?? {})) qb.leftJoinAndSelect(`e.${rel}` as never, rel, {}, relFields as never);
  qb.where(where as never).orderBy(opts.orderBy as never).limit(opts.limit).offset(opts.offset);
  const rows = (await qb.execute('all', true)) as unknown as Array<T & Computed & { [TOTAL]?: number | string }>;
  let total: number;
  if (rows.length) total = Number(rows[0]![TOTAL]);
  else total = opts.offset > 0 ? await em.count(entity, where as never) : 0;
  for (const r of rows) delete r[TOTAL];
  return { rows, total };
}

/**
 * Up to `limit` rows of `entity` matching `where`, in `orderBy` order, as plain objects (the same
 * mapping as readPage): the keyset-paginated lists' read path.
 */
export async function readRows<T extends object>(
  em: SqlEntityManager,
  entity: EntityName<T>,
  where: Record<string, unknown>,
  opts: { limit: number; orderBy: Record<string, 'asc' | 'desc'> | Array<Record<string, 'asc' | 'desc'>> },
): Promise<T[]> {
  const qb = em.createQueryBuilder(entity, 'e').select('e.*' as never).where(where as never).orderBy(opts.orderBy as never).limit(opts.limit);
  return (await qb.execute('all', true)) as unknown as T[];
}
