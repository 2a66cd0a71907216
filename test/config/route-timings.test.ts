import { describe, expect, it } from 'vitest';
import { Histogram, Registry } from 'prom-client';
import { routeTimings, type RouteTiming } from '../helpers/route-timings.js';

// The merge and the quantile estimate behind the suite's "slowest routes by p99" line, fed by real
// prom-client histograms with the platform's buckets.
describe('route timings from the request histogram', () => {
  const histogram = () =>
    new Histogram({
      name: 'hostflow_http_request_duration_seconds',
      help: 'h',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [new Registry()],
    });

  it('merges files and statuses per route and orders by p99, interpolating inside buckets', async () => {
    const a = histogram();
    const b = histogram();
    // GET /api/v1/hosts: 98 fast answers in file a, 2 slow ones (one 500) in file b.
    for (let i = 0; i < 98; i++) a.observe({ method: 'GET', route: '/api/v1/hosts', status: '200' }, 0.004);
    b.observe({ method: 'GET', route: '/api/v1/hosts', status: '200' }, 0.7);
    b.observe({ method: 'GET', route: '/api/v1/hosts', status: '500' }, 0.8);
    // POST /login: 10 answers between 25 and 50 ms.
    for (let i = 0; i < 10; i++) a.observe({ method: 'POST', route: '/api/v1/auth/login', status: '200' }, 0.03);
    const rows = routeTimings([(await a.get()).values, (await b.get()).values]);
    expect(rows.map((r) => r.route)).toEqual(['GET /api/v1/hosts', 'POST /api/v1/auth/login']);
    const [hosts, login] = rows as [RouteTiming, RouteTiming];
    expect(hosts.count).toBe(100);
    expect(hosts.meanMs).toBeCloseTo((98 * 4 + 700 + 800) / 100, 5);
    // rank 99 of 100 is the first of the 2 in the (0.5, 1] bucket: 0.5 + 0.5 * (99 - 98) / 2
    expect(hosts.p99Ms).toBeCloseTo(750, 5);
    // rank 50 of 98 in the first bucket (0, 0.005]: 0.005 * 50 / 98
    expect(hosts.p50Ms).toBeCloseTo((5 * 50) / 98, 5);
    // all 10 in (0.025, 0.05]: p99 = 0.025 + 0.025 * 9.9 / 10
    expect(login.p99Ms).toBeCloseTo(25 + (25 * 9.9) / 10, 5);
  });

  it('reports a quantile in the +Inf bucket as the highest finite bound', async () => {
    const h = histogram();
    h.observe({ method: 'GET', route: '/slow', status: '200' }, 30);
    const [row] = routeTimings([(await h.get()).values]) as [RouteTiming];
    expect(row.p99Ms).toBe(10_000);
  });
});
