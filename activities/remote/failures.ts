import { ApplicationFailure } from '@temporalio/common';
import { RemoteError } from './executor.js';
import { InvalidInputError } from './validation.js';

/** Turns classified remote errors into Temporal failures: permanent ones do not retry. */
export function toActivityFailure(err: unknown): unknown {
  if (err instanceof RemoteError) {
    return err.retryable
      ? ApplicationFailure.retryable(err.message, err.type)
      : ApplicationFailure.nonRetryable(err.message, err.type);
  }
  // A builder refused a value: retrying cannot help. (Left as a plain Error, Temporal would name its
  // type 'InvalidInputError', which no nonRetryableErrorTypes list matches, and retry it 5 times.)
  if (err instanceof InvalidInputError) return ApplicationFailure.nonRetryable(err.message, err.type);
  return err;
}

export async function classified<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toActivityFailure(err);
  }
}
