// The read path of list endpoints (api/routes/*, db/audit): one query per page (rows + `count(*) over ()`)
// built by MikroORM's query builder from the same `where` objects as em.find (scope included), its raw
// rows mapped to plain objects by a mapper compiled once per entity and join list from the entity
// metadata (property names, Date / bigint values as em.find gives them, joined relations as nested
// objects) — no entities, no identity map. Writes keep using entities.
import { raw, type EntityMetadata, type EntityName, type EntityProperty, type Platform } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';

type RawRow = Record<string, unknown>;
type Mapper = (row: RawRow) => Record<string, unknown>;

/** How a column's raw value (pg and PGlite differ: PGlite gives timestamps as text) becomes the property's. */
function converter(prop: EntityProperty, platform: Platform): ((v: unknown) => unknown) | null {
  if (prop.runtimeType === 'Date') return (v) => (v === null || v === undefined || v instanceof Date ? v : platform.parseDate(v as string));
  if (prop.customType?.constructor?.name === 'BigIntType' && prop.runtimeType === 'number') return (v) => (v === null || v === undefined ? v : Number(v));
  return null;
}

function columnsOf(meta: EntityMetadata, platform: Platform, only?: readonly string[]) {
  return meta.props
    .filter((p) => p.fieldNames?.length === 1 && (!only || only.includes(p.name)))
    .map((p) => ({ name: p.name, column: p.fieldNames[0]!, convert: converter(p, platform), primary: Boolean(p.primary) }));
}

const mappers = new WeakMap<EntityMetadata, Map<string, Mapper>>();

function mapperFor(em: SqlEntityManager, meta: EntityMetadata, join: Record<string, readonly string[]>, computed: string[]): Mapper {
  const key = JSON.stringify([join, computed]);
  let byKey = mappers.get(meta);
  if (!byKey) mappers.set(meta, (byKey = new Map()));
  const known = byKey.get(key);
  if (known) return known;
  const platform = em.getPlatform();
  const root = columnsOf(meta, platform).filter((c) => !(c.name in join));
  const joined = Object.entries(join).map(([rel, fields]) => {
    const target = meta.properties[rel as never] as EntityProperty | undefined;
    if (!target?.targetMeta) throw new Error(`readPage: ${meta.className}.${rel} is not a relation`);
    const cols = columnsOf(target.targetMeta, platform, fields).map((c) => ({ ...c, column: `${rel}__${c.column}` }));
    return { rel, cols, pk: cols.find((c) => c.primary) ?? cols[0]! };
  });
  const mapper: Mapper = (row) => {
    const out: Record<string, unknown> = {};
    for (const c of root) out[c.name] = c.convert ? c.convert(row[c.column]) : row[c.column];
    for (const j of joined) {
      if (row[j.pk.column] === null || row[j.pk.column] === undefined) {
        out[j.rel] = null;
        continue;
      }
      const o: Record<string, unknown> = {};
      for (const c of j.cols) o[c.name] = c.convert ? c.convert(row[c.column]) : row[c.column];
      out[j.rel] = o;
    }
    for (const name of computed) out[name] = row[name];
    return out;
  };
  byKey.set(key, mapper);
  return mapper;
}

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
 * them, unjoined many-to-one relations as their id, joined ones as objects holding only their
 * selected fields (null when absent). Callers type them with
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
  const raws = (await qb.execute('all', false)) as unknown as RawRow[];
  let total: number;
  if (raws.length) total = Number(raws[0]![TOTAL]);
  else total = opts.offset > 0 ? await em.count(entity, where as never) : 0;
  const map = mapperFor(em, em.getMetadata().get(entity as never), opts.join ?? {}, Object.keys(opts.computed ?? {}));
  return { rows: raws.map(map) as Array<T & Computed>, total };
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
  const map = mapperFor(em, em.getMetadata().get(entity as never), {}, []);
  return ((await qb.execute('all', false)) as unknown as RawRow[]).map(map) as T[];
}
