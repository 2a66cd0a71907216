import { z } from '../../openapi.js';
import { PageQuery } from '../../pagination.js';

export const CommandParams = z.object({ id: z.string().uuid('must be a host id (uuid)'), commandId: z.string().uuid('must be a command record id (uuid)') });

export const CommandListQuery = PageQuery.extend({
  workflow_id: z.string().max(300).optional().openapi({ description: 'Only the commands of this workflow run, e.g. `account-opening/<requestId>` or `host-onboarding/<hostId>`' }),
  failed: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional()
    .openapi({ description: 'true: only commands that exited non-zero or did not finish' }),
});

const CommandFields = {
  id: z.string(),
  host_id: z.string(),
  workflow_id: z.string().nullable(),
  run_id: z.string().nullable(),
  activity_type: z.string().nullable(),
  attempt: z.number().int().nullable(),
  builder: z.string().openapi({ description: 'The command builder (`hostflow-create-user`, `ps:New-LocalUser`; `command` for template steps)' }),
  command_sha256: z.string().openapi({ description: 'SHA-256 of the command text (the text itself is never stored; the audit trail carries the same hash)' }),
  stdin: z.boolean().openapi({ description: 'Whether the command got input on stdin (never stored: passwords travel there)' }),
  exit_code: z.number().int().nullable(),
  error: z.string().nullable(),
  stdout_bytes: z.number().int(),
  stderr_bytes: z.number().int(),
  truncated: z.boolean().openapi({ description: 'A stream was longer than 64 KiB: its first 16 KiB and last ~48 KiB are kept' }),
  started_at: z.string(),
  duration_ms: z.number().int(),
};

export const CommandSummary = z.object(CommandFields).openapi('CommandRecordSummary');
export const CommandDetail = z
  .object({
    ...CommandFields,
    stdout: z.string().openapi({ description: 'Secret-redacted, at most 64 KiB' }),
    stderr: z.string().openapi({ description: 'Secret-redacted, at most 64 KiB' }),
  })
  .openapi('CommandRecord');
