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
