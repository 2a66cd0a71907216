import { fileURLToPath } from 'node:url';
import { Runtime, Worker, bundleWorkflowCode, type ActivityInterceptors, type InjectedSinks, type NativeConnection, type WorkflowBundleOption, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { Activities } from '../activities/index.js';
import { trackHeartbeats } from '../activities/remote/activity-keepalive.js';
import { FAILURE_CONVERTER_PATH, dataConverter } from '../config/temporal.js';
import type { Keyring } from '../db/vault.js';
import { activityDuration, activityFailures, failureTypeLabel, withActivityHostOsScope, workflowClosed, workflowTypeLabel } from '../config/metrics.js';
import type { WorkflowMetricsSinks } from '../workflows/shared/metrics-interceptors.js';
import { OpenTelemetryActivityInboundInterceptor, OpenTelemetryActivityOutboundInterceptor } from '@temporalio/interceptors-opentelemetry';
import type { LogLevel, LogMetadata, Logger as SdkLogger } from '@temporalio/common';
import { OTEL_WORKFLOW_INTERCEPTORS, workflowTracingSinks } from '../config/tracing.js';
import { withLogContext } from '../config/log-context.js';
import { createLogger, type Logger } from '../config/logger.js';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
/** The bundle's interceptor that reports how each run ended (sink `hostflowMetrics`, below). */
export const METRICS_WORKFLOW_INTERCEPTORS = fileURLToPath(new URL('../workflows/shared/metrics-interceptors.ts', import.meta.url));
/** The bundle's activity-summary interceptor: every activity call gets a summary by default (workflows/shared/activity-summary.ts). */
export const SUMMARY_WORKFLOW_INTERCEPTORS = fileURLToPath(new URL('../workflows/shared/summary-interceptors.ts', import.meta.url));

/** Bundles the workflow code once (webpack + swc); reuse the result for every worker in a process. */
export function bundleWorkflows(extraInterceptorModules: string[] = []): Promise<WorkflowBundleWithSourceMap> {
  // The OpenTelemetry workflow interceptors are in every bundle (RunWorkflow / StartActivity spans,
  // trace context passed on in activity headers); their spans leave through the `exporter` sink.
  // The metrics interceptor counts how each run ended (hostflow_workflow_closed_total). The summary
  // interceptor gives every activity call its Web UI summary. Extra modules (tests) run inside
  // them, so they see the summary the platform's interceptor set.
  return bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    failureConverterPath: FAILURE_CONVERTER_PATH,
    workflowInterceptorModules: [OTEL_WORKFLOW_INTERCEPTORS, METRICS_WORKFLOW_INTERCEPTORS, SUMMARY_WORKFLOW_INTERCEPTORS, ...extraInterceptorModules],
    logger: quietBundlerLogger,
  });
}

/**
 * The sinks every worker (and replayer) of the platform's bundle registers: `exporter` (workflow
 * spans, config/tracing.ts) and `hostflowMetrics` (how a run ended, per workflow type; not called
 * on replay, so an ending is counted once).
 */
export function workflowSinks(): InjectedSinks<WorkflowMetricsSinks> {
  return {
    ...workflowTracingSinks(),
    hostflowMetrics: {
      workflowEnded: { fn: (info, outcome) => void workflowClosed.inc({ workflow_type: workflowTypeLabel(info.workflowType), outcome }), callDuringReplay: false },
    },
  } as InjectedSinks<WorkflowMetricsSinks>;
}

const noop = () => undefined;
const quietBundlerLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: (m: string) => console.error(m), log: noop };

const PINO_LEVEL = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' } as const;
const RANK: Record<LogLevel, number> = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4 };
/** Metadata the SDK adds that is noise in a line (the task token is an opaque blob). */
const DROPPED_META = new Set(['taskToken']);

/**
 * The SDK's Runtime logger writing through pino: the workflow logger (`log` from
 * @temporalio/workflow, via its sink), the activity context logger and the SDK's own messages come
 * out in the platform's format, with the workflow id, run id, workflow type, activity type and
 * attempt the SDK attaches. SDK messages not about a run (worker state, core) below `sdkLevel` are
 * dropped; workflow and activity lines follow the pino logger's level.
 */
export class PinoSdkLogger implements SdkLogger {
  constructor(
    private readonly pino: Logger,
    private readonly sdkLevel: LogLevel = 'WARN',
  ) {}
  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    // Lines about a run (workflow or activity) follow pino's level; the SDK's other messages need sdkLevel.
    const aboutARun = meta !== undefined && ('workflowId' in meta || 'activityType' in meta);
    if (!aboutARun && RANK[level] < RANK[this.sdkLevel]) return;
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(meta ?? {})) if (!DROPPED_META.has(k)) fields[k] = v;
    this.pino[PINO_LEVEL[level]](fields, message);
  }
  trace = (m: string, meta?: LogMetadata) => this.log('TRACE', m, meta);
  debug = (m: string, meta?: LogMetadata) => this.log('DEBUG', m, meta);
  info = (m: string, meta?: LogMetadata) => this.log('INFO', m, meta);
  warn = (m: string, meta?: LogMetadata) => this.log('WARN', m, meta);
  error = (m: string, meta?: LogMetadata) => this.log('ERROR', m, meta);
}

let runtimeInstalled = false;
/**
 * Installs the SDK runtime once per process: SDK logs through pino (`logger`; SDK-internal messages
 * at `level` and above), and no signal handlers of its own — the process decides the shutdown
 * order (API, then worker drain, then Temporal).
 */
export function installWorkerRuntime(level: LogLevel = 'WARN', o: { prometheusAddress?: string; logger?: Logger } = {}): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({
    logger: o.logger ? new PinoSdkLogger(o.logger.child({ name: 'temporal' }), level) : new PinoSdkLogger(createLogger({ level: 'info', name: 'temporal' }), level),
    shutdownSignals: [],
    // The SDK's own metrics (TEMPORAL_SDK_METRICS_ADDRESS), scraped through the API's /metrics.
    ...(o.prometheusAddress ? { telemetryOptions: { metrics: { prometheus: { bindAddress: o.prometheusAddress, countersTotalSuffix: true } } } } : {}),
  });
}

export interface CreateWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: Activities;
  /** The payload codec's keys (config/temporal.ts loadPayloadKeyring): every worker encrypts its payloads. */
  payloadKeys: Keyring;
  workflowBundle?: WorkflowBundleOption;
  /** How long in-flight activities get to finish on shutdown before they are cancelled. */
  shutdownGraceTime?: string | number;
  /** After the grace time, how long activities that ignore cancellation may keep the worker from stopping. */
  shutdownForceTime?: string | number;
  maxConcurrentActivityTaskExecutions?: number;
  /** Workflows kept in memory between tasks (SDK default when unset: grows with the heap). */
  maxCachedWorkflows?: number;
  /** Workflow tasks run at once (SDK default 40). A workflow task waiting on its local activities holds its slot. */
  maxConcurrentWorkflowTaskExecutions?: number;
  /** Local activities run at once (SDK default 100). */
  maxConcurrentLocalActivityExecutions?: number;
}

export async function createWorker(o: CreateWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: o.taskQueue,
    activities: o.activities,
    dataConverter: dataConverter(o.payloadKeys),
    workflowBundle: o.workflowBundle ?? (await bundleWorkflows()),
    shutdownGraceTime: o.shutdownGraceTime ?? '30s',
    ...(o.shutdownForceTime !== undefined ? { shutdownForceTime: o.shutdownForceTime as never } : {}),
    maxConcurrentActivityTaskExecutions: o.maxConcurrentActivityTaskExecutions ?? 200,
    // Remote commands heartbeat while they run (activities/remote/activity-keepalive.ts) and repeat
    // the activity's last heartbeat details: record them from the start of every activity.
    // Workflow spans leave the isolate through this sink (config/tracing.ts).
    sinks: workflowSinks(),
    interceptors: {
      activity: [
        // RunActivity span, child of the workflow's StartActivity span (context from the headers);
        // trace ids on the activity logger's lines.
        (ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx), outbound: new OpenTelemetryActivityOutboundInterceptor(ctx) }),
        // Every log line the activity writes (pino, the executors' too) carries the run and activity.
        (ctx): ActivityInterceptors => ({
          inbound: {
            execute(input, next) {
              const i = ctx.info;
              return withLogContext({ workflowId: i.workflowExecution?.workflowId, runId: i.workflowExecution?.runId, workflowType: i.workflowType, activityType: i.activityType, activityId: i.activityId, attempt: i.attempt }, () => next(input));
            },
          },
        }),
        (ctx) => {
          trackHeartbeats(ctx);
          return {};
        },
        // Duration and failures per activity type and host OS (bounded labels: types, failure
        // types, OS names; the OS is noted when the activity resolves a host's target).
        (ctx): ActivityInterceptors => ({
          inbound: {
            async execute(input, next) {
              const activity_type = ctx.info.activityType;
              const end = activityDuration.startTimer({ activity_type });
              const { scope, result } = withActivityHostOsScope(() => next(input));
              try {
                const out = await result;
                end({ outcome: 'completed', os: scope.os ?? 'none' });
                return out;
              } catch (err) {
                const cancelled = ctx.cancellationSignal.aborted;
                const os = scope.os ?? 'none';
                end({ outcome: cancelled ? 'cancelled' : 'failed', os });
                if (!cancelled) activityFailures.inc({ activity_type, failure_type: failureTypeLabel(err), os });
                throw err;
              }
            },
          },
        }),
      ],
    },
    ...(o.maxCachedWorkflows === undefined ? {} : { maxCachedWorkflows: o.maxCachedWorkflows }),
    ...(o.maxConcurrentWorkflowTaskExecutions === undefined ? {} : { maxConcurrentWorkflowTaskExecutions: o.maxConcurrentWorkflowTaskExecutions }),
    ...(o.maxConcurrentLocalActivityExecutions === undefined ? {} : { maxConcurrentLocalActivityExecutions: o.maxConcurrentLocalActivityExecutions }),
  });
}
