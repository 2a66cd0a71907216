import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { AsyncLocalStorage } from 'node:async_hooks';
import { timingSafeEqual } from 'node:crypto';

/**
 * The process's Prometheus series (prom-client), served at /metrics with the Temporal SDK's own
 * runtime metrics appended when TEMPORAL_SDK_METRICS_ADDRESS is set. Labels are bounded sets only:
 * route templates (never raw paths), status codes, workflow/activity types, failure types, OS —
 * never ids, usernames, host addresses or anything secret.
 */
export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry, prefix: 'hostflow_process_' });

export const httpDuration = new Histogram({
  name: 'hostflow_http_request_duration_seconds',
  help: 'HTTP request duration by method, route template and status code',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [metricsRegistry],
});

export const httpInFlight = new Gauge({
  name: 'hostflow_http_requests_in_flight',
  help: 'HTTP requests being served',
  registers: [metricsRegistry],
});

export const workflowStarts = new Counter({
  name: 'hostflow_workflow_starts_total',
  help: 'Workflows started by this process (client side), by workflow type and outcome (started, already_started, error)',
  labelNames: ['workflow_type', 'outcome'] as const,
  registers: [metricsRegistry],
});

export const workflowResults = new Counter({
  name: 'hostflow_workflow_results_total',
  help: 'Workflow results awaited by this process (completed, failed), by workflow type; the SDK series temporal_workflow_completed/failed count every run the worker finishes',
  labelNames: ['workflow_type', 'outcome'] as const,
  registers: [metricsRegistry],
});

/**
 * How the workflows this process's workers ran ended, per workflow type: completed, failed,
 * cancelled, continued_as_new, and task_failed (an error that fails the workflow task, once per
 * attempt). From the platform's workflow interceptor (workflows/shared/metrics-interceptors.ts) via
 * its sink, counted once per ending (not on replay); terminations and timeouts are the server's
 * doing and never reach workflow code (the SDK's temporal_workflow_* series do not see them either).
 */
export const workflowClosed = new Counter({
  name: 'hostflow_workflow_closed_total',
  help: 'Workflow runs ended in this process\'s workers, by workflow type and outcome (completed, failed, cancelled, continued_as_new, task_failed)',
  labelNames: ['workflow_type', 'outcome'] as const,
  registers: [metricsRegistry],
});

/** A workflow type as a label: the bundle's function names; anything else is `other`. */
export const workflowTypeLabel = (t: string): string => (/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(t) ? t : 'other');

export const activityDuration = new Histogram({
  name: 'hostflow_activity_duration_seconds',
  help: 'Activity execution duration (one attempt) by activity type, outcome (completed, failed, cancelled) and the OS of the host it worked on (linux, windows; none when it touched no host)',
  labelNames: ['activity_type', 'outcome', 'os'] as const,
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  registers: [metricsRegistry],
});

export const activityFailures = new Counter({
  name: 'hostflow_activity_failures_total',
  help: 'Failed activity attempts by activity type, failure type (ApplicationFailure type or error name) and host OS (linux, windows, none)',
  labelNames: ['activity_type', 'failure_type', 'os'] as const,
  registers: [metricsRegistry],
});

/** Failure types are code-defined names; anything else (a free-form message) is folded into "other". */
export const failureTypeLabel = (err: unknown): string => {
  const e = err as { type?: unknown; name?: unknown };
  const t = typeof e?.type === 'string' && e.type ? e.type : typeof e?.name === 'string' ? e.name : 'Error';
  return /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(t) ? t : 'other';
};

/** The exposition: our registry, then the SDK's Prometheus endpoint (if configured), in one body. */
export async function metricsText(sdkAddress?: string): Promise<string> {
  const ours = await metricsRegistry.metrics();
  if (!sdkAddress) return ours;
  try {
    const r = await fetch(`http://${sdkAddress}/metrics`, { signal: AbortSignal.timeout(2000) });
    return `${ours}\n# Temporal SDK runtime metrics (from ${sdkAddress})\n${await r.text()}`;
  } catch {
    return `${ours}\n# Temporal SDK runtime metrics unavailable at ${sdkAddress}\n`;
  }
}

export const METRICS_CONTENT_TYPE = metricsRegistry.contentType;

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/**
 * Who may scrape (the API's /metrics and a standalone worker's): with a token, only a request
 * sending `Authorization: Bearer <token>` (compared in constant time); without one, loopback
 * clients only. Null: allowed; otherwise the refusal to send.
 */
export function scrapeRefusal(authorization: string | undefined, remoteAddress: string | undefined, token?: string): { status: 401 | 403; body: { code: number; message: string } } | null {
  if (token) {
    const want = Buffer.from(`Bearer ${token}`);
    const got = Buffer.from(authorization ?? '');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return { status: 401, body: { code: 40101, message: 'metrics: scrape token required (Authorization: Bearer <METRICS_TOKEN>)' } };
    return null;
  }
  if (!LOOPBACK.has(remoteAddress ?? '')) return { status: 403, body: { code: 40301, message: 'metrics: set METRICS_TOKEN to allow scraping from other hosts' } };
  return null;
}

export const remoteCommandDuration = new Histogram({
  name: 'hostflow_remote_command_duration_seconds',
  help: 'Remote command duration by protocol (ssh, winrm), command builder (code-defined names) and result (exit_0, exit_nonzero, or the remote error type)',
  labelNames: ['protocol', 'builder', 'result'] as const,
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
  registers: [metricsRegistry],
});

export const notificationsTotal = new Counter({
  name: 'hostflow_notifications_total',
  help: 'Notification delivery attempts by channel and outcome (sent, failed, suppressed)',
  labelNames: ['channel', 'outcome'] as const,
  registers: [metricsRegistry],
});

/** Bounded builder label: the code-defined builder names pass, anything else is folded. */
export const builderLabel = (b: string): string => (/^[a-z][a-z0-9:_-]{0,63}$/i.test(b) ? b : 'other');

/** Hosts by status, read from the database at scrape time (the "hosts offline" alert). */
export function registerHostStatusGauge(count: () => Promise<Array<{ status: string; n: number }>>): void {
  metricsRegistry.removeSingleMetric('hostflow_hosts');
  new Gauge({
    name: 'hostflow_hosts',
    help: 'Hosts by status (pending, onboarding, online, maintenance, offline, failed), from the database at scrape time',
    labelNames: ['status'] as const,
    registers: [metricsRegistry],
    async collect() {
      this.reset();
      for (const r of await count().catch(() => [])) if (/^[a-z-]{1,20}$/.test(r.status)) this.set({ status: r.status }, Number(r.n));
    },
  });
}

/**
 * Lease notices: how late each went out — the activity's clock when the notice was sent minus the
 * moment it was due (the workflow's timer target). Observed once per notice actually delivered or
 * failed (a duplicate of one already sent is not observed again). Labels: the notice class
 * (reminder, ended, reclaim) and the delivery outcome (sent, failed, suppressed, …): bounded.
 */
export const leaseNoticeLag = new Histogram({
  name: 'hostflow_lease_notice_lag_seconds',
  help: 'Lease reminders/notices: seconds between the moment a notice was due and the moment it was sent, by notice class (reminder, ended, reclaim) and outcome',
  labelNames: ['notice', 'outcome'] as const,
  buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600],
  registers: [metricsRegistry],
});

const NOTICE_OUTCOME = /^[a-z_]{1,20}$/;
export function observeLeaseNoticeLag(notice: 'reminder' | 'ended' | 'reclaim', outcome: string, dueAtMs: number, nowMs = Date.now()): void {
  leaseNoticeLag.observe({ notice, outcome: NOTICE_OUTCOME.test(outcome) ? outcome : 'other' }, Math.max(0, (nowMs - dueAtMs) / 1000));
}

/**
 * The host OS an activity worked on, for the per-OS activity series: the worker's activity
 * interceptor opens a scope per attempt; resolving a host's connection target (host-targets.ts)
 * notes the OS in it. Activities touching no host report os="none".
 */
const activityHostOs = new AsyncLocalStorage<{ os?: string }>();
export const withActivityHostOsScope = <T>(fn: () => T): { scope: { os?: string }; result: T } => {
  const scope: { os?: string } = {};
  return { scope, result: activityHostOs.run(scope, fn) };
};
export function noteActivityHostOs(os: string): void {
  const s = activityHostOs.getStore();
  if (s) s.os = /^[a-z]{1,16}$/.test(os) ? os : 'other';
}

/**
 * Database connection pool, read at scrape time: for PostgreSQL the `pg` pool's total, idle and
 * waiting (callers queued for a connection) counts and its max; PGlite is one in-process
 * connection without a pool, so it reports total=1 and max=1 only (idle/waiting do not exist).
 */
/** Both arguments are read at scrape time only (createApp must not touch the database). */
export function registerDbPoolGauges(nativeClient: () => Promise<unknown>, driverOf: () => 'postgresql' | 'pglite'): void {
  metricsRegistry.removeSingleMetric('hostflow_db_pool_connections');
  metricsRegistry.removeSingleMetric('hostflow_db_pool_max');
  const read = async (): Promise<{ total: number; idle?: number; waiting?: number; max: number } | null> => {
    if (driverOf() === 'pglite') return { total: 1, max: 1 };
    const p = (await nativeClient().catch(() => null)) as { totalCount?: number; idleCount?: number; waitingCount?: number; options?: { max?: number } } | null;
    if (!p || typeof p.totalCount !== 'number') return null;
    return { total: p.totalCount, idle: p.idleCount ?? 0, waiting: p.waitingCount ?? 0, max: p.options?.max ?? 10 };
  };
  new Gauge({
    name: 'hostflow_db_pool_connections',
    help: 'Database pool connections by state (total, idle, waiting = callers queued for a connection), at scrape time; PGlite reports total only',
    labelNames: ['driver', 'state'] as const,
    registers: [metricsRegistry],
    async collect() {
      this.reset();
      const s = await read();
      if (!s) return;
      const driver = driverOf();
      this.set({ driver, state: 'total' }, s.total);
      if (s.idle !== undefined) this.set({ driver, state: 'idle' }, s.idle);
      if (s.waiting !== undefined) this.set({ driver, state: 'waiting' }, s.waiting);
    },
  });
  new Gauge({
    name: 'hostflow_db_pool_max',
    help: 'Database pool size limit',
    labelNames: ['driver'] as const,
    registers: [metricsRegistry],
    async collect() {
      this.reset();
      const s = await read();
      if (s) this.set({ driver: driverOf() }, s.max);
    },
  });
}
