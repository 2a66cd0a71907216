import { fileURLToPath } from 'node:url';
import { Runtime, DefaultLogger, Worker, bundleWorkflowCode, type ActivityInterceptors, type NativeConnection, type WorkflowBundleOption, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { Activities } from '../activities/index.js';
import { trackHeartbeats } from '../activities/remote/activity-keepalive.js';
import { FAILURE_CONVERTER_PATH, dataConverter } from '../config/temporal.js';
import type { Keyring } from '../db/vault.js';
import { activityDuration, activityFailures, failureTypeLabel } from '../config/metrics.js';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/** Bundles the workflow code once (webpack + swc); reuse the result for every worker in a process. */
export function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, failureConverterPath: FAILURE_CONVERTER_PATH, logger: quietBundlerLogger });
}

const noop = () => undefined;
const quietBundlerLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: (m: string) => console.error(m), log: noop };

let runtimeInstalled = false;
/**
 * Installs the SDK runtime once per process: SDK logs at WARN, and no signal handlers of its own —
 * the process decides the shutdown order (API, then worker drain, then Temporal).
 */
export function installWorkerRuntime(level: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' = 'WARN', o: { prometheusAddress?: string } = {}): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({
    logger: new DefaultLogger(level),
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
    interceptors: {
      activity: [
        (ctx) => {
          trackHeartbeats(ctx);
          return {};
        },
        // Duration and failures per activity type (bounded labels: types, failure types).
        (ctx): ActivityInterceptors => ({
          inbound: {
            async execute(input, next) {
              const activity_type = ctx.info.activityType;
              const end = activityDuration.startTimer({ activity_type });
              try {
                const out = await next(input);
                end({ outcome: 'completed' });
                return out;
              } catch (err) {
                const cancelled = ctx.cancellationSignal.aborted;
                end({ outcome: cancelled ? 'cancelled' : 'failed' });
                if (!cancelled) activityFailures.inc({ activity_type, failure_type: failureTypeLabel(err) });
                throw err;
              }
            },
          },
        }),
      ],
    },
    ...(o.maxCachedWorkflows === undefined ? {} : { maxCachedWorkflows: o.maxCachedWorkflows }),
  });
}
