import { mkdir, rename, unlink, stat, copyFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Logger } from '../../config/logger.js';
import { appendAudit } from '../../db/audit.js';
import { RemoteSessionSchema } from '../../db/entities/index.js';

export interface RecordingActivityDeps {
  em: SqlEntityManager;
  logger: Logger;
  /** Where `archive` moves recordings (DATA_DIR/recordings-archive). */
  recordingArchiveDir?: string;
}

export interface RecordingRetentionResult {
  deleted: number;
  archived: number;
  /** Ended sessions older than the cut whose file was already gone (a retry after a crash, or lost). */
  missing: number;
}

const gone = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * Retention of terminal recordings (run by the `recording-retention` Schedule): the recordings of
 * sessions that ended more than `retentionDays` ago are deleted (the row keeps its history, its
 * recording link goes) or archived (the encrypted file moves to the archive directory, still
 * playable). Each one is a `remote_session.recording.deleted` / `.archived` audit event. Live
 * sessions are never touched. Check-then-act: a retry finds moved or deleted files and finishes
 * the row without doing anything twice.
 */
export function createRecordingActivities(deps: RecordingActivityDeps) {
  return {
    async pruneRecordings(input: { retentionDays: number; mode: 'delete' | 'archive'; batch?: number }): Promise<RecordingRetentionResult> {
      const out: RecordingRetentionResult = { deleted: 0, archived: 0, missing: 0 };
      if (!(input.retentionDays > 0)) return out;
      const before = new Date(Date.now() - input.retentionDays * 86_400_000);
      const archiveDir = deps.recordingArchiveDir ?? '.data/recordings-archive';
      const em = deps.em.fork();
      const rows = await em.find(
        RemoteSessionSchema,
        // Archive: what is archived already stays where it is.
        { endedAt: { $ne: null, $lt: before }, recordingPath: { $ne: null }, ...(input.mode === 'archive' ? { $not: { recordingPath: { $like: `${archiveDir}%` } } } : {}) },
        { orderBy: { endedAt: 'asc' }, limit: input.batch ?? 1000 },
      );
      for (const row of rows) {
        const path = row.recordingPath!;
        if (input.mode === 'delete') {
          let existed = true;
          await unlink(path).catch((err: unknown) => {
            if (!gone(err)) throw err;
            existed = false;
          });
          await em.nativeUpdate(RemoteSessionSchema, { id: row.id }, { recordingPath: null });
          await appendAudit(deps.em, { actor: 'recording-retention', actorType: 'system', action: 'remote_session.recording.deleted', targetType: 'remote_session', targetId: row.id, detail: { ended_at: row.endedAt!.toISOString(), retention_days: input.retentionDays, file_existed: existed } });
          if (existed) out.deleted++;
          else out.missing++;
        } else {
          const month = row.endedAt!.toISOString().slice(0, 7);
          const target = join(archiveDir, month, basename(path));
          await mkdir(join(archiveDir, month), { recursive: true, mode: 0o700 });
          let moved = true;
          try {
            await rename(path, target);
          } catch (err) {
            if (gone(err)) {
              // Moved by an earlier attempt that crashed before the row was updated?
              moved = await stat(target).then(() => true, () => false);
            } else if ((err as NodeJS.ErrnoException).code === 'EXDEV') {
              await copyFile(path, target);
              await unlink(path);
            } else throw err;
          }
          await em.nativeUpdate(RemoteSessionSchema, { id: row.id }, { recordingPath: moved ? target : null });
          await appendAudit(deps.em, { actor: 'recording-retention', actorType: 'system', action: moved ? 'remote_session.recording.archived' : 'remote_session.recording.deleted', targetType: 'remote_session', targetId: row.id, detail: { ended_at: row.endedAt!.toISOString(), retention_days: input.retentionDays, ...(moved ? { archive: target } : { file_existed: false }) } });
          if (moved) out.archived++;
          else out.missing++;
        }
      }
      deps.logger.info({ ...out, mode: input.mode, retentionDays: input.retentionDays }, 'recording retention');
      return out;
    },
  };
}
