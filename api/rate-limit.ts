// Fixed-window rate limits for public endpoints, counted in the database (rate_limits) so that
// every API process shares one window per (bucket, subject). One atomic upsert per request.
import type { Response } from 'express';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { ApiError } from './errors.js';

export interface RateLimit {
  /** Requests allowed per window; 0 turns the limit off. */
  max: number;
  windowMinutes: number;
}

/**
 * Counts one request of `subject` in `bucket`. Over the limit: 429 (42902) with `Retry-After`
 * (seconds until the window ends) set on `res`, before the endpoint does any work.
 */
export async function enforceRateLimit(em: SqlEntityManager, res: Response, input: { bucket: string; subject: string; limit: RateLimit; now: Date; what: string }): Promise<void> {
  const { bucket, limit, now } = input;
  if (limit.max <= 0) return;
  const subject = input.subject.slice(0, 64);
  const windowMs = limit.windowMinutes * 60_000;
  const windowStart = new Date(now.getTime() - windowMs);
  const rows = await em.getConnection().execute<Array<{ hits: number; window_ms: number }>>(
    `insert into rate_limits (bucket, subject, hits, window_started_at) values (?, ?, 1, ?)
     on conflict (bucket, subject) do update set
       hits = case when rate_limits.window_started_at <= ? then 1 else rate_limits.hits + 1 end,
       window_started_at = case when rate_limits.window_started_at <= ? then excluded.window_started_at else rate_limits.window_started_at end
     returning hits, (extract(epoch from window_started_at) * 1000)::float8 as window_ms`,
    [bucket, subject, now, windowStart, windowStart],
  );
  const hits = Number(rows[0]?.hits ?? 1);
  if (hits <= limit.max) return;
  const retryAfter = Math.max(1, Math.ceil((Number(rows[0]!.window_ms) + windowMs - now.getTime()) / 1000));
  res.setHeader('Retry-After', String(retryAfter)); // (the error handler sets it too, from data.retry_after_seconds)
  throw new ApiError(429, 42902, `too many ${input.what} from this address: at most ${limit.max} per ${limit.windowMinutes} minutes; retry after ${retryAfter} s`, undefined, { retry_after_seconds: retryAfter });
}
