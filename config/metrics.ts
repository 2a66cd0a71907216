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
