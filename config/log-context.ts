import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What every log line written while serving a request or running an activity carries: the API's
 * request id, or the workflow id, run id, workflow type, activity type and attempt of the activity.
 * Set by the API's requestId middleware (api/middleware/errors.ts) and the worker's activity
 * interceptor (worker/create-worker.ts); read by the pino mixin in config/logger.ts and by the
 * client interceptor that puts the request id into the memo of workflows a request starts.
 * Ids and type names only: never a username, an address or a secret.
 */
export interface LogContext {
  requestId?: string;
  workflowId?: string;
  runId?: string;
  workflowType?: string;
  activityType?: string;
  activityId?: string;
  attempt?: number;
}

const storage = new AsyncLocalStorage<LogContext>();

/** The context of the current request or activity (undefined outside both). */
export const currentLogContext = (): LogContext | undefined => storage.getStore();

/** Runs `fn` with `ctx` added to the current context (nested calls keep the outer fields). */
export function withLogContext<T>(ctx: LogContext, fn: () => T): T {
  const outer = storage.getStore();
  return storage.run(outer ? { ...outer, ...ctx } : ctx, fn);
}
