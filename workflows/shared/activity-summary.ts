// Activity summaries for the Web UI's timeline ("create account alice on gpu-07" instead of
// `provisionAccount`): the SDK's per-call `summary` (user metadata on the ScheduleActivityTask
// command). It is a payload, so the codec encrypts it like every other one. User metadata is not
// part of the determinism check (replaying an old history without it, or a new one with it, gives
// the same commands): no patch needed (test/replay/ proves it).
import { workflowInfo, type ActivityOptions } from '@temporalio/workflow';

/** The run's memo fields the API set at start (runSummary's extra: host, username, customer, slug…). */
export function memoField(name: string): string | undefined {
  const v = (workflowInfo().memo as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' && v ? v : undefined;
}

/** Call-site options with a one-line summary; `parts` that are unknown are left out ("on gpu-07" only when the host is known). */
export function summary(verb: string, parts: Array<[string, string | undefined]> = []): Pick<ActivityOptions, 'summary'> {
  const text = [verb, ...parts.filter(([, v]) => v).map(([prep, v]) => (prep ? `${prep} ${v}` : v!))].join(' ');
  return { summary: text.length > 200 ? `${text.slice(0, 199)}…` : text };
}
