import { fileURLToPath } from 'node:url';
import { SpanKind, SpanStatusCode, context, propagation, trace, type Attributes, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResources, envDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, ConsoleSpanExporter, NodeTracerProvider, NoopSpanProcessor, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { makeWorkflowExporter } from '@temporalio/interceptors-opentelemetry';
import type { InjectedSinks } from '@temporalio/worker';

/**
 * OpenTelemetry for every process (API, worker, both in `npm start`, scripts, tests): one
 * NodeTracerProvider registered globally, so the Temporal interceptors
 * (`@temporalio/interceptors-opentelemetry`: client, activity, and the workflow interceptors in the
 * bundle, whose spans leave the isolate through the `exporter` sink), the HTTP server spans
 * (api/middleware/tracing.ts) and the remote-command spans (activities/remote/instrumented-executor.ts)
 * share one trace: HTTP request → StartWorkflow / StartWorkflowUpdate → RunWorkflow → StartActivity
 * → RunActivity → remote.exec.
 *
 * Exporter (the standard variables): `OTEL_TRACES_EXPORTER=otlp` (OTLP/HTTP to
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`, headers from
 * `OTEL_EXPORTER_OTLP_HEADERS`), `console`, or `none`. Unset: OTLP when an OTLP endpoint is set,
 * otherwise off (no provider: the interceptors' spans are no-ops). `OTEL_SERVICE_NAME` /
 * `OTEL_RESOURCE_ATTRIBUTES` name the resource (default service.name `hostflow`).
 */
export type TracesExporter = 'none' | 'otlp' | 'console';

export function tracesExporterFromEnv(e: NodeJS.ProcessEnv = process.env): TracesExporter {
  const v = e.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  if (v === 'otlp' || v === 'console' || v === 'none') return v;
  if (v) throw new Error(`OTEL_TRACES_EXPORTER: must be otlp, console or none (got ${JSON.stringify(e.OTEL_TRACES_EXPORTER)})`);
  return e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || e.OTEL_EXPORTER_OTLP_ENDPOINT ? 'otlp' : 'none';
}

export interface Tracing {
  /** What is exported: `none` when tracing is off. */
  exporter: TracesExporter | 'custom';
  resource: Resource;
  /** The processor workflow spans (from the isolate, through the sink) are handed to. */
  spanProcessor: SpanProcessor;
  /** Flushes and stops the exporter (call on shutdown). */
  shutdown(): Promise<void>;
}

const OFF: Tracing = {
  exporter: 'none',
  resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'hostflow' }),
  spanProcessor: new NoopSpanProcessor(),
  shutdown: async () => undefined,
};

let installed: Tracing | undefined;

/**
 * Installs tracing once per process (later calls return the first installation): the exporter from
 * the environment, or the given span processors (tests: an InMemorySpanExporter).
 */
export function installTracing(o: { exporter?: TracesExporter; spanProcessors?: SpanProcessor[]; serviceName?: string } = {}): Tracing {
  if (installed) return installed;
  const exporter = o.spanProcessors ? 'custom' : (o.exporter ?? tracesExporterFromEnv());
  if (exporter === 'none') return (installed = OFF);
  const resource = resourceFromAttributes({ [ATTR_SERVICE_NAME]: o.serviceName ?? 'hostflow' }).merge(detectResources({ detectors: [envDetector] }));
  const processors = o.spanProcessors ?? [new BatchSpanProcessor(exporter === 'otlp' ? new OTLPTraceExporter() : new ConsoleSpanExporter())];
  const provider = new NodeTracerProvider({ resource, spanProcessors: processors });
  // Global tracer provider, AsyncLocalStorage context manager, W3C trace-context propagator.
  provider.register();
  const fanOut: SpanProcessor = {
    onStart: () => undefined,
    onEnd: (span) => processors.forEach((p) => p.onEnd(span)),
    forceFlush: async () => void (await Promise.all(processors.map((p) => p.forceFlush()))),
    shutdown: async () => void (await Promise.all(processors.map((p) => p.shutdown()))),
  };
  installed = { exporter, resource, spanProcessor: fanOut, shutdown: () => provider.shutdown() };
  return installed;
}

/** The installed tracing (off when nothing installed it). */
export const currentTracing = (): Tracing => installed ?? OFF;

/** A span made in the workflow isolate, as the interceptors' own (1.x) SDK shapes it. */
interface IsolateSpan extends Omit<ReadableSpan, 'parentSpanContext' | 'instrumentationScope'> {
  parentSpanId?: string;
  instrumentationLibrary?: ReadableSpan['instrumentationScope'];
}

/**
 * The interceptors package builds workflow spans with OpenTelemetry SDK 1.x (`parentSpanId`,
 * `instrumentationLibrary`); this process exports with 2.x (`parentSpanContext`,
 * `instrumentationScope`). Without the conversion a workflow span would lose its parent.
 */
export function fromIsolateSpan(span: IsolateSpan): ReadableSpan {
  const { parentSpanId, instrumentationLibrary, ...rest } = span;
  const own = span.spanContext();
  const parentSpanContext: SpanContext | undefined = parentSpanId ? { traceId: own.traceId, spanId: parentSpanId, traceFlags: own.traceFlags, isRemote: false } : undefined;
  return { ...rest, spanContext: span.spanContext, parentSpanContext, instrumentationScope: instrumentationLibrary ?? { name: '@temporalio/interceptor-workflow' } };
}

/** The `exporter` sink every worker registers: workflow spans go to the installed processor. */
export function workflowTracingSinks(t: Tracing = currentTracing()): InjectedSinks<Record<string, never>> {
  const processor: SpanProcessor = {
    onStart: () => undefined,
    onEnd: (span) => t.spanProcessor.onEnd(fromIsolateSpan(span as unknown as IsolateSpan)),
    forceFlush: () => t.spanProcessor.forceFlush(),
    shutdown: async () => undefined,
  };
  // The package's types are its own SDK 1.x ones; the objects are converted above.
  return { exporter: makeWorkflowExporter(processor as never, t.resource as never) } as never;
}

/**
 * The module of the workflow interceptors that goes into the workflow bundle: the OpenTelemetry
 * ones, drawing their ids from a random stream of their own (see the module).
 */
export const OTEL_WORKFLOW_INTERCEPTORS = fileURLToPath(new URL('../workflows/shared/tracing-interceptors.ts', import.meta.url));

export const tracer = (): Tracer => trace.getTracer('hostflow');

/**
 * Runs `fn` inside a span; the span ends with fn, ERROR status on a throw. Attributes are ids, names
 * and codes only (never command text, arguments or output).
 */
export async function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>, kind: SpanKind = SpanKind.INTERNAL): Promise<T> {
  return tracer().startActiveSpan(name, { kind, attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as { type?: string }).type ?? (err as Error).name });
      throw err;
    } finally {
      span.end();
    }
  });
}

export { SpanKind, SpanStatusCode, context as otelContext, propagation as otelPropagation, trace as otelTrace };
