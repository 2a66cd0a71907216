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
