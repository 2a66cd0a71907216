// Command records of a host (written by activities/remote/command-records.ts): list and detail.
// Plain functions taking (deps, input); the host is found through the caller's row scope first.
import type { SqlEntityManager } from '@mikro-orm/sql';
import { CommandRecordSchema, type CommandRecord } from '../../../db/entities/index.js';
import { notFound } from '../../errors.js';
import { pageOffsets, type PageQuery } from '../../pagination.js';

const summary = (r: CommandRecord) => ({
  id: r.id,
  host_id: r.host.id,
  workflow_id: r.workflowId ?? null,
  run_id: r.runId ?? null,
  activity_type: r.activityType ?? null,
  attempt: r.attempt ?? null,
  builder: r.builder,
  command_sha256: r.commandSha256,
  stdin: r.stdin,
  exit_code: r.exitCode ?? null,
  error: r.error ?? null,
  stdout_bytes: r.stdoutBytes,
  stderr_bytes: r.stderrBytes,
  truncated: r.truncated,
  started_at: r.startedAt.toISOString(),
  duration_ms: r.durationMs,
});

/** Newest first; without the output (the detail has it). */
export async function listCommandRecords(em: SqlEntityManager, input: { hostId: string; query: PageQuery & { workflow_id?: string; failed?: boolean } }) {
  const where: Record<string, unknown> = { host: input.hostId };
  if (input.query.workflow_id) where.workflowId = input.query.workflow_id;
  if (input.query.failed === true) where.$or = [{ exitCode: { $ne: 0 } }, { exitCode: null }];
  if (input.query.failed === false) where.exitCode = 0;
  const [rows, total] = await em.findAndCount(CommandRecordSchema, where as never, {
    ...pageOffsets(input.query),
    exclude: ['stdout', 'stderr'] as never,
    orderBy: { startedAt: 'desc', id: 'asc' },
  });
  return { rows: rows.map(summary), total };
}

export async function getCommandRecord(em: SqlEntityManager, input: { hostId: string; id: string }) {
  const r = await em.findOne(CommandRecordSchema, { id: input.id, host: input.hostId });
  if (!r) throw notFound('command record');
  return { ...summary(r), stdout: r.stdout, stderr: r.stderr };
}
