import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';

const db = proxyActivities<Pick<Activities, 'pruneRecordings'>>({ startToCloseTimeout: '30 minutes', retry: { maximumAttempts: 5 } });

/**
 * Run by the Temporal Schedule `recording-retention`: terminal recordings of sessions that ended
 * more than `retentionDays` ago are deleted or archived, each audited
 * (activities/db/recording.activities.ts). Batches of 1000 until a batch comes back short.
 */
export async function recordingRetention(input: { retentionDays: number; mode: 'delete' | 'archive' }): Promise<{ deleted: number; archived: number; missing: number }> {
  const total = { deleted: 0, archived: 0, missing: 0 };
  for (let i = 0; i < 100; i++) {
    const r = await db.pruneRecordings({ ...input, batch: 1000 });
    total.deleted += r.deleted;
    total.archived += r.archived;
    total.missing += r.missing;
    if (r.deleted + r.archived + r.missing < 1000) break;
  }
  return total;
}
