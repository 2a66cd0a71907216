import { ParentClosePolicy, condition, defineQuery, patched, setHandler, startChild, workflowInfo } from '@temporalio/workflow';
import { childRunSummary } from './shared/child-summary.js';
import { hostOnboarding, type OnboardingInput, type OnboardingProgress } from './host-onboarding.workflow.js';

/**
 * host-onboarding-batch/<batchId>: onboards many hosts as child workflows
 * (`host-onboarding/<hostId>`), at most `concurrency` at a time. One failing host does not fail
 * the others; the `progress` query reports each host.
 *
 * Patch `batch-child-memo`: each child starts with a human summary ("Onboard host gpu-07, batch
 * …") and the host's slug in its memo (its activity summaries name the host), not only the batch id.
 */
export interface BatchInput {
  /** `slug` (the API sets it) only names the host in the child's memo and summary. */
  hosts: Array<OnboardingInput & { slug?: string }>;
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

  const runOne = async (host: BatchInput['hosts'][number]) => {
    progress.running++;
    progress.pending--;
    try {
      const batch = workflowInfo().workflowId;
      const named = patched('batch-child-memo');
      const child = await startChild(hostOnboarding, {
        workflowId: `host-onboarding/${host.hostId}`,
        args: [host],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        ...(named
          ? childRunSummary(`Onboard host ${host.slug ?? host.hostId} (batch ${batch.split('/').pop()})`, { batch, ...(host.slug ? { slug: host.slug } : {}) })
          : { memo: { batch } }),
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
