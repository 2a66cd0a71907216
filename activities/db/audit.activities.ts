import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Logger } from '../../config/logger.js';
import { archiveAudit, type ArchiveResult } from '../../db/audit/archive.js';

export interface AuditActivityDeps {
  em: SqlEntityManager;
  logger: Logger;
  /** DATA_DIR/audit-archive by default. */
  auditArchiveDir?: string;
}

/** Retention (run by the `audit-archive` Schedule): rows older than retentionDays → gzip JSON lines, then deleted. */
export function createAuditActivities(deps: AuditActivityDeps) {
  return {
    async archiveAuditTrail(input: { retentionDays: number }): Promise<ArchiveResult> {
      if (!(input.retentionDays > 0)) return { rows: 0 };
      const before = new Date(Date.now() - input.retentionDays * 86_400_000);
      const r = await archiveAudit(deps.em, { before, dir: deps.auditArchiveDir ?? '.data/audit-archive' });
      deps.logger.info({ rows: r.rows, firstSeq: r.firstSeq, lastSeq: r.lastSeq, file: r.file }, 'audit archived');
      return r;
    },
  };
}
