import { ParentClosePolicy, condition, defineQuery, setHandler, startChild, workflowInfo } from '@temporalio/workflow';
import { hostOnboarding, type OnboardingInput, type OnboardingProgress } from './host-onboarding.workflow.js';

/**
 * host-onboarding-batch/<batchId>: onboards many hosts as child workflows
 * (`host-onboarding/<hostId>`), at most `concurrency` at a time. One failing host does not fail
 * the others; the `progress` query reports each host.
 */
export interface BatchInput {
  hosts: OnboardingInput[];
  concurrency?: number;
}

export interface BatchProgress {
  total: number;
  running: number;
  online: string[];
  failed: Array<{ hostId: string; step?: string; error?: string }>;
  pending: number;
}

export const batchProgressQuery = defineQuery<BatchProgress>('progress');

export async function hostOnboardingBatch(input: BatchInput): Promise<BatchProgress> {
  const limit = Math.max(1, Math.min(input.concurrency ?? 10, 50));
  const queue = [...input.hosts];
  const progress: BatchProgress = { total: queue.length, running: 0, online: [], failed: [], pending: queue.length };
  setHandler(batchProgressQuery, () => progress);

  const runOne = async (host: OnboardingInput) => {
    progress.running++;
    progress.pending--;
    try {
      const child = await startChild(hostOnboarding, {
        workflowId: `host-onboarding/${host.hostId}`,
        args: [host],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        memo: { batch: workflowInfo().workflowId },
      });
      const r: OnboardingProgress = await child.result();
      if (r.result === 'online') progress.online.push(host.hostId);
      else progress.failed.push({ hostId: host.hostId, step: r.failedStep, error: r.error?.message });
    } catch (err) {
      progress.failed.push({ hostId: host.hostId, error: (err as Error).message });
    } finally {
      progress.running--;
    }
  };

  const inFlight: Promise<void>[] = [];
  while (queue.length) {
    await condition(() => progress.running < limit);
    const p = runOne(queue.shift()!);
    inFlight.push(p);
  }
  await Promise.all(inFlight);
  return progress;
}
