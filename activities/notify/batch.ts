// Shared reads for concurrent fan-outs: the keys that emits ask for while a load is running are
// gathered and asked together in the next load (DataLoader's batching, dispatched like a group
// commit). Nothing is cached: each load starts after every one of its callers asked, so a caller
// sees every write committed before it asked — exactly what its own query would have seen — and a
// subscription, endpoint or template changed a moment ago is never missed. One emit alone pays
// one query per loader, as before; fifty concurrent reminders pay one query per loader per round.

export interface BatchLoader<K, V> {
  load(key: K): Promise<V>;
  /** Loads (queries) run so far, the distinct keys they asked, and the load() calls they answered: bench/notify.ts reports the sharing. */
  readonly stats: { loads: number; keys: number; asks: number };
}

/**
 * `fetch` answers a batch of distinct keys (by `id(key)`) with a value per key (missing: `empty()`).
 * At most `concurrency` loads run at once; keys arriving meanwhile wait for the next one (at most
 * `maxBatch` keys per load).
 */
export function batchLoader<K, V>(
  fetch: (keys: K[]) => Promise<Map<string, V>>,
  opts: { id?: (k: K) => string; empty: () => V; concurrency?: number; maxBatch?: number },
): BatchLoader<K, V> {
  const id = opts.id ?? ((k: K) => String(k));
  const concurrency = opts.concurrency ?? 2;
  const maxBatch = opts.maxBatch ?? 500;
  const queue = new Map<string, { key: K; waiters: Array<{ resolve: (v: V) => void; reject: (e: unknown) => void }> }>();
  let running = 0;
  let scheduled = false;
  const stats = { loads: 0, keys: 0, asks: 0 };

  const dispatch = () => {
    scheduled = false;
    while (running < concurrency && queue.size) {
      const batch = new Map<string, { key: K; waiters: Array<{ resolve: (v: V) => void; reject: (e: unknown) => void }> }>();
      for (const [k, v] of queue) {
        if (batch.size >= maxBatch) break;
        batch.set(k, v);
      }
      for (const k of batch.keys()) queue.delete(k);
      running++;
      stats.loads++;
      stats.keys += batch.size;
      fetch([...batch.values()].map((b) => b.key)).then(
        (found) => {
          for (const [k, b] of batch) {
            const v = found.has(k) ? found.get(k)! : opts.empty();
            for (const w of b.waiters) w.resolve(v);
          }
        },
        (err: unknown) => {
          for (const b of batch.values()) for (const w of b.waiters) w.reject(err);
        },
      ).finally(() => {
        running--;
        dispatch();
      });
    }
  };

  return {
    stats,
    load(key: K): Promise<V> {
      stats.asks++;
      return new Promise<V>((resolve, reject) => {
        const k = id(key);
        let entry = queue.get(k);
        if (!entry) {
          entry = { key, waiters: [] };
          queue.set(k, entry);
        }
        entry.waiters.push({ resolve, reject });
        // The first key of a round waits for the end of this turn of the event loop, so emits that
        // arrive together share the load even when nothing is running yet.
        if (!scheduled && running < concurrency) {
          scheduled = true;
          setImmediate(dispatch);
        }
      });
    },
  };
}

/** Groups rows by a key: the Map a batch fetch returns when each key has a list of rows. */
export function groupBy<T>(rows: T[], key: (r: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const r of rows) {
    const k = key(r);
    const list = m.get(k);
    if (list) list.push(r);
    else m.set(k, [r]);
  }
  return m;
}
