// Test-only workflow interceptors (bundled after the platform's in test/workflows/activity-summaries.test.ts):
// report every activity and local activity a run schedules, with the summary it leaves with, to
// the `summaryCheck` sink (called during replay too), so a test can replay recorded histories and
// see what today's code would put in the Web UI's timeline.
import { proxySinks, type Sinks, type WorkflowInterceptors } from '@temporalio/workflow';

export interface SummaryCheckSinks extends Sinks {
  summaryCheck: { scheduled(kind: 'activity' | 'local', activityType: string, summary: string | null): void };
}

const { summaryCheck } = proxySinks<SummaryCheckSinks>();

export const interceptors = (): WorkflowInterceptors => ({
  outbound: [
    {
      scheduleActivity(input, next) {
        summaryCheck.scheduled('activity', input.activityType, input.options.summary ?? null);
        return next(input);
      },
      scheduleLocalActivity(input, next) {
        summaryCheck.scheduled('local', input.activityType, input.options.summary ?? null);
        return next(input);
      },
    },
  ],
});
