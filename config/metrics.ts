import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

export const activityDuration = new Histogram({
  name: 'hostflow_activity_duration_seconds',
  help: 'Activity execution duration (one attempt) by activity type and outcome (completed, failed, cancelled)',
  labelNames: ['activity_type', 'outcome'] as const,
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  registers: [metricsRegistry],
});

export const activityFailures = new Counter({
  name: 'hostflow_activity_failures_total',
  help: 'Failed activity attempts by activity type and failure type (ApplicationFailure type or error name)',
  labelNames: ['activity_type', 'failure_type'] as const,
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

export const reminderLag = new Histogram({
  name: 'hostflow_lease_reminder_lag_seconds',
  help: 'How late a lease reminder went out: time from its due time to the send (by offset kind)',
  labelNames: ['kind'] as const,
  buckets: [1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600],
  registers: [metricsRegistry],
});

export const remindersDue = new Counter({
  name: 'hostflow_lease_reminders_due_total',
  help: 'Lease reminders that fell due (one per allocation and offset), counted when the send activity first runs',
  labelNames: ['kind'] as const,
  registers: [metricsRegistry],
});

export const remindersSent = new Counter({
  name: 'hostflow_lease_reminders_sent_total',
  help: 'Lease reminders delivered to at least one channel',
  labelNames: ['kind'] as const,
  registers: [metricsRegistry],
});

/** Bounded builder label: the code-defined builder names pass, anything else is folded. */
export const builderLabel = (b: string): string => (/^[a-z][a-z0-9:_-]{0,63}$/i.test(b) ? b : 'other');

/** Pool statistics of the database (PostgreSQL: the pg pool; PGlite: one in-process connection). */
export function registerDbPoolMetrics(stats: () => { total: number; idle: number; waiting: number; max: number } | null): void {
  const collect = (key: 'total' | 'idle' | 'waiting' | 'max') =>
    function (this: Gauge) {
      const s = stats();
      if (s) this.set(s[key]);
    };
  metricsRegistry.removeSingleMetric('hostflow_db_pool_connections');
  metricsRegistry.removeSingleMetric('hostflow_db_pool_idle');
  metricsRegistry.removeSingleMetric('hostflow_db_pool_waiting');
  metricsRegistry.removeSingleMetric('hostflow_db_pool_max');
  new Gauge({ name: 'hostflow_db_pool_connections', help: 'Database connections open (in use + idle)', registers: [metricsRegistry], collect: collect('total') });
  new Gauge({ name: 'hostflow_db_pool_idle', help: 'Idle database connections', registers: [metricsRegistry], collect: collect('idle') });
  new Gauge({ name: 'hostflow_db_pool_waiting', help: 'Queries waiting for a database connection', registers: [metricsRegistry], collect: collect('waiting') });
  new Gauge({ name: 'hostflow_db_pool_max', help: 'Size limit of the database pool', registers: [metricsRegistry], collect: collect('max') });
}
