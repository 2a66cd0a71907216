import { createTransport, type Transporter } from 'nodemailer';

/**
 * The SMTP transport: pooled (a few long-lived connections reused for many mails instead of one
 * SMTP session per mail), which is what makes reminder fan-outs fast (bench/notify.ts).
 */
export function createMailer(url: string | undefined, opts: { maxConnections?: number; pool?: boolean } = {}): Transporter | null {
  if (!url) return null;
  if (opts.pool === false) return createTransport(url);
  return createTransport({ url, pool: true, maxConnections: opts.maxConnections ?? 5, maxMessages: 1000 } as Parameters<typeof createTransport>[0]);
}

/** The NOTIFY_* settings as the notification center takes them. */
export function notifySettingsFromEnv(env: { NOTIFY_DEFAULT_LANGUAGE: 'en' | 'zh-CN'; NOTIFY_RATE_LIMIT_PER_HOUR: number; NOTIFY_SENSITIVE_WORDS: string; NOTIFY_MAX_ATTEMPTS: number }) {
  return {
    defaultLanguage: env.NOTIFY_DEFAULT_LANGUAGE,
    rateLimitPerHour: env.NOTIFY_RATE_LIMIT_PER_HOUR,
    sensitiveWords: env.NOTIFY_SENSITIVE_WORDS.split(',').map((w) => w.trim()).filter(Boolean),
    maxAttempts: env.NOTIFY_MAX_ATTEMPTS,
  };
}
