/**
 * Runs named steps in order, mirroring each one's status (running → done / skipped / failed) through
 * `record`, and keeping `progress` (what the workflow's `progress` query returns) up to date.
 * Steps listed in `done` (from an earlier run) are not run again. Returns false on the first failure,
 * with `failedStep` and `error` set.
 */
export type StepStatus = 'pending' | 'running' | 'done' | 'failed' | 'skipped' | 'waiting';

export interface StepsProgress {
  phase: 'allocate' | 'reclaim';
  current: string | null;
  steps: Record<string, StepStatus>;
  result: 'running' | 'done' | 'failed';
  failedStep?: string;
  error?: { type: string; message: string };
  detail?: Record<string, unknown>;
}

export interface StepOutcome {
  skipped?: boolean;
  detail?: object;
}

export async function runSteps<S extends string>(
  progress: StepsProgress,
  steps: readonly S[],
  done: readonly string[],
  h: {
    record: (step: S, position: number, status: StepStatus, extra?: { error?: string | null; detail?: Record<string, unknown> | null }) => Promise<void>;
    run: (step: S) => Promise<StepOutcome>;
  },
): Promise<boolean> {
  for (const s of steps) progress.steps[s] = done.includes(s) ? 'done' : 'pending';
  progress.result = 'running';
  delete progress.failedStep;
  delete progress.error;
  for (const [i, step] of steps.entries()) {
    if (done.includes(step)) continue;
    progress.current = step;
    progress.steps[step] = 'running';
    await h.record(step, i, 'running');
    try {
      const outcome = await h.run(step);
      progress.steps[step] = outcome.skipped ? 'skipped' : 'done';
      await h.record(step, i, outcome.skipped ? 'skipped' : 'done', { detail: (outcome.detail as Record<string, unknown> | undefined) ?? null });
    } catch (err) {
      const cause = (err as { cause?: { type?: string; message?: string } }).cause;
      progress.steps[step] = 'failed';
      progress.failedStep = step;
      progress.error = { type: cause?.type ?? (err as { type?: string }).type ?? 'Error', message: cause?.message ?? (err as Error).message };
      progress.result = 'failed';
      progress.current = null;
      await h.record(step, i, 'failed', { error: `${progress.error.type}: ${progress.error.message}` });
      return false;
    }
  }
  progress.current = null;
  return true;
}
