import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/**
 * Fixed-window request counters for public endpoints, one row per (bucket, subject): e.g. bucket
 * `registration` keyed by the source address. In the database, so every API process counts the
 * same window.
 */
export const RateLimitSchema = defineEntity({
  name: 'RateLimit',
  tableName: 'rate_limits',
  properties: {
    bucket: p.string().length(32).primary(),
    subject: p.string().length(64).primary(),
    hits: p.integer().default(0),
    windowStartedAt: p.datetime(),
  },
});
export type RateLimit = InferEntity<typeof RateLimitSchema>;
