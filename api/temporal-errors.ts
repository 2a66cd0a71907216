import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApiError, conflict, forbidden, validationError } from './errors.js';

/**
 * Maps Temporal client errors to API errors: an Update rejected by its validator (typed
 * ApplicationFailure: NotPending / Forbidden / Invalid), a workflow that already finished, or an
 * id already running.
 */
export function mapTemporalError(err: unknown, what = 'request'): unknown {
  if (err instanceof WorkflowUpdateFailedError) {
    const cause = err.cause as { type?: string; message?: string } | undefined;
    const message = cause?.message ?? err.message;
    switch (cause?.type) {
      case 'Forbidden':
        return forbidden(message);
      case 'Invalid': {
        const [field, ...rest] = message.split(': ');
        return validationError([{ field: rest.length ? field! : 'body', message: rest.length ? rest.join(': ') : message }]);
      }
      default:
        return conflict(message);
    }
  }
  if (err instanceof WorkflowExecutionAlreadyStartedError) return conflict(`${what} is already being processed`);
  if (err instanceof WorkflowNotFoundError || isCompletedError(err)) return conflict(`${what} is no longer pending`);
  return err;
}

function isCompletedError(err: unknown): boolean {
  const e = err as { code?: number; message?: string; cause?: { code?: number; message?: string } } | undefined;
  const msg = `${e?.message ?? ''} ${e?.cause?.message ?? ''}`;
  return /workflow execution already completed|workflow not found/i.test(msg);
}

export function rethrowMapped(err: unknown, what?: string): never {
  const mapped = mapTemporalError(err, what);
  throw mapped instanceof ApiError ? mapped : err;
}
