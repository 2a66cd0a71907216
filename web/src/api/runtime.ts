import { api } from './client';
/** Settings the server knows and the static bundle cannot (GET /console-config.json). */
export interface ConsoleConfig { temporal_ui: { url: string; namespace: string } | null }
let cached: Promise<ConsoleConfig> | undefined;
export function consoleConfig(): Promise<ConsoleConfig> {
  cached ??= fetch('/console-config.json').then((r) => (r.ok ? (r.json() as Promise<ConsoleConfig>) : { temporal_ui: null })).catch(() => ({ temporal_ui: null }));
  return cached;
}
export function temporalRunUrl(cfg: ConsoleConfig, workflowId: string): string | null {
  if (!cfg.temporal_ui) return null;
  return `${cfg.temporal_ui.url.replace(/\/$/, '')}/namespaces/${encodeURIComponent(cfg.temporal_ui.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** Re-set the codec cookie after this long (it lives 60 minutes, and dies with the session). */
const CODEC_COOKIE_REFRESH_MS = 20 * 60_000;
let codecCookieAt = 0;
let codecCookie: Promise<void> | undefined;
/** The Temporal Web UI's codec cookie for this session (api/routes/temporal/codec-cookie.ts); failures are silent (the UI then shows ciphertext). */
export function ensureCodecCookie(): Promise<void> {
  if (codecCookie && Date.now() - codecCookieAt < CODEC_COOKIE_REFRESH_MS) return codecCookie;
  codecCookieAt = Date.now();
  codecCookie = api.POST('/api/v1/temporal/codec/session').then(({ error }) => {
    if (error) codecCookieAt = 0;
  }, () => {
    codecCookieAt = 0;
  });
  return codecCookie;
}
/** Forget it (logout: the server clears the cookie itself). */
export function forgetCodecCookie(): void {
  codecCookie = undefined;
  codecCookieAt = 0;
}
