import { pino, type Logger, type LoggerOptions } from 'pino';
import { trace } from '@opentelemetry/api';
import { currentLogContext } from './log-context.js';

/** Paths whose values are never written to logs, wherever they appear in a logged object. */
export const REDACT_PATHS = [
  'password', 'newPassword', 'privateKey', 'passphrase', 'token', 'secret', 'apiKey', 'authorization', 'cookie',
  '*.password', '*.newPassword', '*.privateKey', '*.passphrase', '*.token', '*.secret', '*.apiKey', '*.authorization', '*.cookie',
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]',
  '*.*.password', '*.*.privateKey', '*.*.token', '*.*.secret',
];

/** `LOG_FORMAT`: `pretty` (coloured, human-readable, via pino-pretty), `json`, or `auto` = pretty on a terminal. */
export const wantsPretty = (format: 'auto' | 'json' | 'pretty' | undefined, isTty = Boolean(process.stdout.isTTY)) => format === 'pretty' || ((format ?? 'auto') === 'auto' && isTty);

/** The fields config/log-context.ts holds for the current request or activity, plus the active trace. */
export function logContextMixin(): Record<string, unknown> {
  const ctx = currentLogContext();
  const span = trace.getActiveSpan()?.spanContext();
  if (!span || !span.traceId || /^0+$/.test(span.traceId)) return ctx ? { ...ctx } : {};
  return { ...ctx, traceId: span.traceId, spanId: span.spanId };
}

export function createLogger(opts: { level?: string; name?: string; destination?: pino.DestinationStream; pretty?: boolean } = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    name: opts.name ?? 'hostflow',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: undefined,
    // Every line carries the request id (API) or workflow id, run id, activity type and attempt
    // (activities), and the trace id when a span is active (config/log-context.ts, config/tracing.ts).
    mixin: logContextMixin,
  };
  if (opts.destination) return pino(options, opts.destination);
  // pino-pretty runs in pino's transport thread; redaction happens before, in this thread.
  if (opts.pretty) return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } });
  return pino(options);
}

export type { Logger };
