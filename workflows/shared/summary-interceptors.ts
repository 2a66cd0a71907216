// Workflow interceptors of the bundle (worker/create-worker.ts bundleWorkflows): every scheduled
// activity and local activity whose call site gave no `summary` gets the one ACTIVITY_SUMMARIES
// words from its arguments and the run's memo (workflows/shared/activity-summary.ts). Only user
// metadata changes, which the determinism check ignores: histories recorded before replay the same.
import type { WorkflowInterceptors } from '@temporalio/workflow';
import { describeActivity } from './activity-summary.js';

export const interceptors = (): WorkflowInterceptors => ({
  outbound: [
    {
      scheduleActivity(input, next) {
        if (input.options.summary) return next(input);
        const summary = describeActivity(input.activityType, input.args);
        return next(summary ? { ...input, options: { ...input.options, summary } } : input);
      },
      scheduleLocalActivity(input, next) {
        if (input.options.summary) return next(input);
        const summary = describeActivity(input.activityType, input.args);
        return next(summary ? { ...input, options: { ...input.options, summary } } : input);
      },
    },
  ],
});
