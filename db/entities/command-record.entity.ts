import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { HostSchema } from './host.entity.js';

/** Bytes of each stream a command record keeps (after redaction): the first 16 KiB and the last 48 KiB. */
export const COMMAND_OUTPUT_LIMIT = 64 * 1024;

/**
 * One remote command that changed a host (account operations, key edits, reclaim steps, template
 * steps), written by the executor layer (activities/remote/command-records.ts) — like Rundeck's
 * execution output. Holds the full stdout/stderr, secret-redacted and bounded to
 * COMMAND_OUTPUT_LIMIT per stream; never the command text or its stdin (passwords travel there):
 * the command is named by its builder and SHA-256, as in the audit trail. Failure messages in
 * workflow history stay summaries (activities/remote/output.ts); the output is here only.
 */
export const CommandRecordSchema = defineEntity({
  name: 'CommandRecord',
  tableName: 'command_records',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    host: () => p.manyToOne(HostSchema).deleteRule('cascade'),
    workflowId: p.string().length(300).nullable().index(),
    runId: p.string().length(64).nullable(),
    activityType: p.string().length(100).nullable(),
    attempt: p.integer().nullable(),
    /** Which command builder produced it (`hostflow-create-user`, `ps:New-LocalUser`, `command` for template steps). */
    builder: p.string().length(100),
    commandSha256: p.string().length(64),
    /** Whether the command got input on stdin (its content is never stored). */
    stdin: p.boolean().default(false),
    exitCode: p.integer().nullable(),
    /** `<RemoteErrorType>: message` when the command could not run or finish (connection, timeout). */
    error: p.string().length(2000).nullable(),
    stdout: p.text().default(''),
    stderr: p.text().default(''),
    /** Sizes of the streams as the host sent them (before redaction and bounding). */
    stdoutBytes: p.integer().default(0),
    stderrBytes: p.integer().default(0),
    truncated: p.boolean().default(false),
    startedAt: p.datetime(),
    durationMs: p.integer(),
  },
  indexes: [{ properties: ['host', 'startedAt'] }],
});

export type CommandRecord = InferEntity<typeof CommandRecordSchema>;
