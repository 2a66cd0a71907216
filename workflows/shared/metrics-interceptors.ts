// Workflow interceptor of the bundle (worker/create-worker.ts bundleWorkflows): how each run's
// main function ended — completed, failed, cancelled, continued as new — reported through the
// `hostflowMetrics` sink to the worker process, which counts it per workflow type
// (`hostflow_workflow_closed_total`, config/metrics.ts). A sink call is no command (replay-safe) and
// is not delivered while history is replayed, so each ending is counted once, by the worker that
// ran it. An error that is not a Temporal failure fails the workflow *task* (retried, not closed):
// `task_failed`, once per attempt.
import { ContinueAsNew, TemporalFailure, isCancellation, proxySinks, type Sinks, type WorkflowInterceptors } from '@temporalio/workflow';

export type WorkflowOutcome = 'completed' | 'failed' | 'cancelled' | 'continued_as_new' | 'task_failed';

export interface WorkflowMetricsSinks extends Sinks {
  hostflowMetrics: {
    workflowEnded(outcome: WorkflowOutcome): void;
  };
}

const { hostflowMetrics } = proxySinks<WorkflowMetricsSinks>();

export const outcomeOf = (err: unknown): WorkflowOutcome =>
  err instanceof ContinueAsNew ? 'continued_as_new' : isCancellation(err) ? 'cancelled' : err instanceof TemporalFailure ? 'failed' : 'task_failed';

export const interceptors = (): WorkflowInterceptors => ({
  inbound: [
    {
      async execute(input, next) {
        try {
          const result = await next(input);
          hostflowMetrics.workflowEnded('completed');
          return result;
        } catch (err) {
          hostflowMetrics.workflowEnded(outcomeOf(err));
          throw err;
        }
      },
    },
  ],
});
