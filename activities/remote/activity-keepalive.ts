import { Context } from '@temporalio/activity';

/**
 * Executor-level liveness for remote commands run inside a Temporal activity.
 *
 * While `exec` runs inside an activity, it heartbeats periodically, so a quiet command longer than
 * the activity's heartbeat timeout does not time out, and the activity learns of its own
 * cancellation or server-side timeout (delivered on a heartbeat response) while the command runs.
 * The command's abort signal is tied to the activity's cancellation signal, so the executor stops
 * the remote command when the activity is cancelled or times out.
 *
 * A heartbeat without details would overwrite the progress an activity recorded (template steps
 * resume from their heartbeat details), so the periodic heartbeat re-sends the last details the
 * activity gave: `trackHeartbeats` (installed by the worker's activity interceptor for every
 * activity, and again, idempotently, by the first `exec`) records them as they are sent.
 * Outside an activity (CLI, unit tests) all of this is a no-op.
 */

interface Tracked {
  details: unknown;
}

const tracked = new WeakMap<Context, Tracked>();

/** The current activity context, or undefined outside an activity. */
export function currentActivity(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

function track(ctx: Context): Tracked {
  const t = tracked.get(ctx);
  if (t) return t;
  const state: Tracked = { details: ctx.info.heartbeatDetails };
  const original = ctx.heartbeat;
  // Context.heartbeat is an own property (an arrow function); the exported `heartbeat()` calls it too.
  (ctx as { heartbeat: (details?: unknown) => void }).heartbeat = (details?: unknown) => {
    state.details = details;
    original(details);
  };
  tracked.set(ctx, state);
  return state;
}

/** Records the details of every heartbeat of this activity (so keep-alive heartbeats repeat them). */
export function trackHeartbeats(ctx: Context): void {
  track(ctx);
}

/** How often a running command heartbeats: a quarter of the heartbeat timeout, within [250 ms, 10 s]. */
export function keepAliveIntervalMs(heartbeatTimeoutMs: number | undefined): number {
  if (!heartbeatTimeoutMs) return 10_000;
  return Math.min(10_000, Math.max(250, Math.floor(heartbeatTimeoutMs / 4)));
}

export interface KeepAlive {
  /** Aborts when the caller's signal aborts or the activity is cancelled / timed out. */
  signal?: AbortSignal;
  /** Once the activity (not the caller's own signal) was cancelled or timed out: the SDK's CancelledFailure to throw. */
  cancellation(): unknown;
  stop(): void;
}

/** Starts heartbeating for the duration of one remote command (no-op outside an activity). */
export function keepAlive(signal?: AbortSignal): KeepAlive {
  const ctx = currentActivity();
  if (!ctx) return { signal, cancellation: () => undefined, stop: () => undefined };
  const t = track(ctx);
  const timer = setInterval(() => {
    try {
      ctx.heartbeat(t.details);
    } catch {
      // heartbeats after completion are dropped by the SDK; nothing to do
    }
  }, keepAliveIntervalMs(ctx.info.heartbeatTimeoutMs));
  timer.unref();
  const merged = signal ? AbortSignal.any([signal, ctx.cancellationSignal]) : ctx.cancellationSignal;
  return {
    signal: merged,
    cancellation: () => (ctx.cancellationSignal.aborted ? (ctx.cancellationSignal.reason ?? new Error('activity cancelled')) : undefined),
    stop: () => clearInterval(timer),
  };
}
