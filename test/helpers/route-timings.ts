import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One series value as prom-client's `Histogram.get()` returns it. */
export interface HistogramValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

export interface RouteTiming {
  route: string;
  count: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * Merges the per-file dumps of `hostflow_http_request_duration_seconds` (all statuses of a
 * method + route template together) and estimates quantiles from the buckets the way
 * Prometheus' histogram_quantile does (linear inside the bucket; a quantile in the +Inf bucket
 * is reported as the highest finite bound).
 */
export function routeTimings(dumps: HistogramValue[][]): RouteTiming[] {
  const byRoute = new Map<string, { buckets: Map<number, number>; count: number; sum: number }>();
  for (const values of dumps) {
    for (const v of values) {
      const route = `${v.labels.method} ${v.labels.route}`;
      let r = byRoute.get(route);
      if (!r) byRoute.set(route, (r = { buckets: new Map(), count: 0, sum: 0 }));
      if (v.metricName?.endsWith('_bucket')) {
        const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
        r.buckets.set(le, (r.buckets.get(le) ?? 0) + v.value);
      } else if (v.metricName?.endsWith('_count')) r.count += v.value;
      else if (v.metricName?.endsWith('_sum')) r.sum += v.value;
    }
  }
  const out: RouteTiming[] = [];
  for (const [route, r] of byRoute) {
    if (r.count === 0) continue;
    const bounds = [...r.buckets.keys()].sort((a, b) => a - b);
    const quantile = (q: number): number => {
      const rank = q * r.count;
      let prevBound = 0;
      let prevCount = 0;
      for (const b of bounds) {
        const c = r.buckets.get(b)!; // cumulative
        if (c >= rank) {
          if (b === Infinity) return prevBound;
          const inBucket = c - prevCount;
          return inBucket === 0 ? b : prevBound + ((b - prevBound) * (rank - prevCount)) / inBucket;
        }
        prevBound = b;
        prevCount = c;
      }
      return prevBound;
    };
    out.push({ route, count: r.count, meanMs: (r.sum / r.count) * 1000, p50Ms: quantile(0.5) * 1000, p99Ms: quantile(0.99) * 1000 });
  }
  return out.sort((a, b) => b.p99Ms - a.p99Ms);
}

export async function readRouteTimings(dir: string): Promise<HistogramValue[][]> {
  const files = await readdir(dir).catch(() => [] as string[]);
  return Promise.all(files.filter((f) => f.endsWith('.json')).map(async (f) => JSON.parse(await readFile(join(dir, f), 'utf8')) as HistogramValue[]));
}

export function formatRouteTimings(rows: RouteTiming[], top = 5): string {
  const head = `slowest ${Math.min(top, rows.length)} of ${rows.length} routes by p99 in this run (the platform's hostflow_http_request_duration_seconds, merged over the test files; all statuses; bucket-interpolated)`;
  const lines = rows.slice(0, top).map((r) => `  ${r.route.padEnd(60)} n=${String(r.count).padStart(5)}  mean ${r.meanMs.toFixed(1).padStart(8)} ms  p50 ${r.p50Ms.toFixed(1).padStart(8)} ms  p99 ${r.p99Ms.toFixed(1).padStart(8)} ms`);
  return [head, ...lines].join('\n');
}
