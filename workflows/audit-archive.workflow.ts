import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';

const db = proxyActivities<Pick<Activities, 'archiveAuditTrail'>>({ startToCloseTimeout: '30 minutes', retry: { maximumAttempts: 3 } });

/**
 * Run by the Temporal Schedule `audit-archive`: moves audit rows older than the retention to a
 * gzip JSON-lines file with its chain head, then deletes them (db/audit/archive.ts).
 */
export async function auditArchive(input: { retentionDays: number }): Promise<{ rows: number; lastSeq?: number; file?: string }> {
  const r = await db.archiveAuditTrail(input);
  return { rows: r.rows, lastSeq: r.lastSeq, file: r.file };
}
