import { ApplicationFailure } from '@temporalio/common';
import { RemoteError } from './executor.js';

/** Turns classified remote errors into Temporal failures: permanent ones do not retry. */
export function toActivityFailure(err: unknown): unknown {
  if (err instanceof RemoteError) {
    return err.retryable
      ? ApplicationFailure.retryable(err.message, err.type)
      : ApplicationFailure.nonRetryable(err.message, err.type);
  }
  return err;
}

export async function classified<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toActivityFailure(err);
  }
}
