// The trace of a decision (an Update: approve, review, force, confirm, extend) continued into the
// work it lets happen. The OpenTelemetry workflow inbound interceptor
// (workflows/shared/tracing-interceptors.ts) runs every Update handler inside its
// `HandleUpdate:<name>` span, a child of the client's `StartWorkflowUpdate` span, itself a child of
// the API request (`POST …/approve`). The work the decision unblocks runs later in the workflow's
// main body, whose active context is `RunWorkflow` (the trace of the request that started the
// run). `capture()` in the handler remembers the handler's context; `run(fn)` runs the main body's
// next part inside it, so the outbound interceptor puts the approval's trace into the headers of
// the activities (and child workflows) scheduled there: `StartActivity` → `RunActivity` →
// `remote.exec` land in the approval's trace.
//
// Headers are not commands: nothing here changes a command sequence (the replay fixtures replay).
// Span ids come from the interceptors' own random stream, never the workflow's. Without the
// interceptors in the bundle the context is ROOT and `run` just calls `fn`.
import { context as otelContext, type Context } from '@opentelemetry/api';

export interface DecisionTrace {
  /** In an Update handler (synchronously): the active context (its HandleUpdate span) becomes the decision's. */
  capture(): void;
  /** Runs `fn` in the last captured decision's trace; in the caller's own context when none was captured. */
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** Forgets the decision (loops: later work that no decision caused goes back to the run's trace). */
  clear(): void;
  /** Whether a decision's context is held. */
  readonly held: boolean;
  /**
   * The activities of a `proxyActivities` object (and their `executeWithOptions`), each call run
   * in the decision's trace held at the time of the call: for workflows that wait for several
   * decisions in a row (registration review), where wrapping each continuation would not read.
   */
  wrap<A extends object>(activities: A): A;
}

export function decisionTrace(): DecisionTrace {
  let ctx: Context | undefined;
  const run = <T>(fn: () => Promise<T>): Promise<T> => (ctx ? otelContext.with(ctx, fn) : fn());
  return {
    capture() {
      ctx = otelContext.active();
    },
    run,
    clear() {
      ctx = undefined;
    },
    get held() {
      return ctx !== undefined;
    },
    wrap<A extends object>(activities: A): A {
      return new Proxy(activities, {
        get(target, prop, receiver) {
          const fn = Reflect.get(target, prop, receiver) as unknown;
          if (typeof fn !== 'function') return fn;
          const activity = fn as ((...args: unknown[]) => Promise<unknown>) & { executeWithOptions?: (options: unknown, args: unknown[]) => Promise<unknown> };
          const call = (...args: unknown[]) => run(() => activity(...args));
          if (typeof activity.executeWithOptions === 'function') {
            const withOptions = activity.executeWithOptions;
            Object.assign(call, { executeWithOptions: (options: unknown, args: unknown[]) => run(() => withOptions(options, args)) });
          }
          return call;
        },
      });
    },
  };
}
