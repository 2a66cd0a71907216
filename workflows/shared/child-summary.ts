// The child workflows' counterpart of the API's runSummary (config/temporal.ts, which workflow code
// cannot import): a one-line human summary (the Web UI's "Summary", `staticSummary`) and a memo with
// `summary` plus the names the parent knows (host slug, customer code, username…), so the child's
// activity summaries read "stop processes of alice on gpu-07" too. Both are payloads: the codec
// encrypts them. Ids and names only. Callers add these options behind their own patch: they change
// the StartChildWorkflowExecution command.
import { memoField } from './activity-summary.js';

/** The parent memo's string fields among `names` (absent ones left out). */
export function inheritedMemo(names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = memoField(n);
    if (v) out[n] = v;
  }
  return out;
}

export function childRunSummary(summary: string, extra: Record<string, string> = {}): { staticSummary: string; memo: Record<string, string> } {
  const s = summary.length > 200 ? `${summary.slice(0, 199)}…` : summary;
  return { staticSummary: s, memo: { ...extra, summary: s } };
}

/** The names a rental's workflows share: allocation → lease → reclaim (and their gateway syncs). */
export const RENTAL_MEMO_FIELDS = ['host', 'customer', 'username'] as const;
