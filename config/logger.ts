import { pino, type Logger, type LoggerOptions } from 'pino';

/** Paths whose values are never written to logs, wherever they appear in a logged object. */
export const REDACT_PATHS = [
  'password', 'newPassword', 'privateKey', 'passphrase', 'token', 'secret', 'apiKey', 'authorization', 'cookie',
  '*.password', '*.newPassword', '*.privateKey', '*.passphrase', '*.token', '*.secret', '*.apiKey', '*.authorization', '*.cookie',
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]',
  '*.*.password', '*.*.privateKey', '*.*.token', '*.*.secret',
];

export function createLogger(opts: { level?: string; name?: string; destination?: pino.DestinationStream } = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    name: opts.name ?? 'hostflow',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: undefined,
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

export type { Logger };
