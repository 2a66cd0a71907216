import { pino, type Logger, type LoggerOptions } from 'pino';

/** Paths whose values are never written to logs, wherever they appear in a logged object. */
export const REDACT_PATHS = [
  'password', 'newPassword', 'privateKey', 'passphrase', 'token', 'secret', 'apiKey', 'authorization', 'cookie',
  '*.password', '*.newPassword', '*.privateKey', '*.passphrase', '*.token', '*.secret', '*.apiKey', '*.authorization', '*.cookie',
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]',
  '*.*.password', '*.*.privateKey', '*.*.token', '*.*.secret',
];

/** `LOG_FORMAT`: `pretty` (coloured, human-readable, via pino-pretty), `json`, or `auto` = pretty on a terminal. */
export const wantsPretty = (format: 'auto' | 'json' | 'pretty' | undefined, isTty = Boolean(process.stdout.isTTY)) => format === 'pretty' || ((format ?? 'auto') === 'auto' && isTty);

export function createLogger(opts: { level?: string; name?: string; destination?: pino.DestinationStream; pretty?: boolean } = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    name: opts.name ?? 'hostflow',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: undefined,
  };
  if (opts.destination) return pino(options, opts.destination);
  // pino-pretty runs in pino's transport thread; redaction happens before, in this thread.
  if (opts.pretty) return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } });
  return pino(options);
}

export type { Logger };
