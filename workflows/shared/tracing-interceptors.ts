// Workflow interceptors of the bundle (worker/create-worker.ts bundleWorkflows): the OpenTelemetry
// ones of @temporalio/interceptors-opentelemetry, with their span and trace ids drawn from a named
// random stream of their own. Their tracer generates ids with Math.random, which in a workflow is
// the run's deterministic PRNG: spans drawing from it would shift every later uuid4() / random()
// of the workflow code, so histories recorded before tracing (host-change-lock tokens) would no
// longer replay. Inside the interceptors Math.random is `hostflow.otel`'s stream; the workflow
// code they call (`next`) runs on the default stream again.
import { getRandomStream, workflowRandom, type WorkflowInterceptors } from '@temporalio/workflow';
import { OpenTelemetryInboundInterceptor, OpenTelemetryInternalsInterceptor, OpenTelemetryOutboundInterceptor } from '@temporalio/interceptors-opentelemetry/lib/workflow/index.js';

type AnyFn = (input: unknown, next: (input: unknown) => unknown) => unknown;

function ownRandom<T extends object>(make: () => T): T {
  const stream = getRandomStream('hostflow.otel');
  const target = stream.with(make);
  return new Proxy(target, {
    get(t, prop, receiver) {
      const v = Reflect.get(t, prop, receiver) as unknown;
      if (typeof v !== 'function' || prop === 'constructor') return v;
      const method = v as AnyFn;
      return (input: unknown, next: (input: unknown) => unknown) => stream.with(() => method.call(t, input, (i: unknown) => workflowRandom.with(() => next(i))));
    },
  });
}

export const interceptors = (): WorkflowInterceptors => ({
  inbound: [ownRandom(() => new OpenTelemetryInboundInterceptor())],
  outbound: [ownRandom(() => new OpenTelemetryOutboundInterceptor())],
  internals: [ownRandom(() => new OpenTelemetryInternalsInterceptor())],
});
