import { z, noControlText } from '../../openapi.js';
import { fullName, description } from '../../../activities/remote/validation.js';
import { REQUEST_STATUSES } from '../../../db/entities/index.js';
import { PageQuery } from '../../pagination.js';
import { pii } from '../../authz/mask.js';

const noControl = (max: number) => noControlText(max);

export const AccountOpeningCreate = z
  .object({
    host_id: z.string().uuid('must be a host id (uuid)'),
    username: z.string().min(1).max(32).openapi({ description: 'OS login name; rules depend on the host OS (Linux: 1 to 32 characters, Windows: 1 to 20)' }),
    // The same schemas the create-account builders use (activities/remote/validation.ts).
    full_name: fullName.describe('1 to 100 printable characters, no ":" or "," (they separate /etc/passwd and GECOS fields)'),
    contact_email: z.string().email(),
    contact_phone: z.string().regex(/^\+?[0-9 ()-]{5,30}$/, 'must be a phone number').optional(),
    user_email: z.string().email().optional(),
    description: description.optional(),
    groups: z.array(z.string().min(1).max(256)).max(20).default([]),
    is_admin: z.boolean().default(false),
  })
  .openapi('AccountOpeningCreate');

export const AccountOpening = z
  .object({
    id: z.string().uuid(),
    status: z.enum(REQUEST_STATUSES),
    applicant: z.object({ id: z.string(), username: z.string() }),
    contact_email: pii(z.string(), 'email'),
    contact_phone: pii(z.string().nullable(), 'phone'),
    username: z.string(),
    full_name: z.string(),
    user_email: pii(z.string().nullable(), 'email'),
    description: z.string().nullable(),
    host: z.object({ id: z.string(), slug: z.string(), os: z.string() }),
    groups: z.array(z.string()),
    is_admin: z.boolean(),
    approved_by: z.string().nullable().openapi({ description: 'User id of the approver / rejecter' }),
    decided_at: z.string().nullable(),
    approval_notes: z.string().nullable(),
    reject_reason: z.string().nullable(),
    result_message: z.string().nullable(),
    failure_type: z.string().nullable(),
    host_account_id: z.string().nullable(),
    workflow_id: z.string(),
    expires_at: z.string(),
    created_at: z.string(),
    live: z.unknown().optional().openapi({ description: 'Live workflow state (query), on the detail endpoint' }),
  })
  .openapi('AccountOpening');

export const AccountOpeningListQuery = PageQuery.extend({
  status: z.enum(REQUEST_STATUSES).optional(),
  host_id: z.string().uuid().optional(),
  username: z.string().max(32).optional(),
  mine: z.enum(['true', 'false']).optional().openapi({ description: 'Only my own requests (always true for requesters)' }),
});

export const IdParams = z.object({ id: z.string().uuid('must be a request id (uuid)') });
export const ApproveBody = z.object({ notes: noControl(1000).optional() }).openapi('ApproveBody');
export const RejectBody = z.object({ reason: noControl(1000).trim().min(1, 'a reason is required') }).openapi('RejectBody');
export const BatchApproveBody = z.object({ ids: z.array(z.string().uuid()).min(1).max(100), notes: noControl(1000).optional() });
export const BatchRejectBody = z.object({ ids: z.array(z.string().uuid()).min(1).max(100), reason: noControl(1000).trim().min(1, 'a reason is required') });
export const BatchResult = z.object({
  results: z.array(z.object({ id: z.string(), ok: z.boolean(), code: z.number(), message: z.string(), status: z.string().optional() })),
  succeeded: z.number(),
  failed: z.number(),
});

export const RevealResult = z
  .object({ host: z.string(), address: z.string(), port: z.number(), username: z.string(), password: z.string(), revealed_at: z.string() })
  .openapi('RevealedCredentials', { description: 'Returned exactly once; afterwards the password is gone from the platform.' });

export const Stats = z.object({
  by_status: z.record(z.string(), z.number()),
  by_host: z.array(z.object({ host_id: z.string(), slug: z.string(), total: z.number() })),
  last_30_days: z.array(z.object({ day: z.string(), submitted: z.number() })),
});

export const WaitQuery = z.object({
  wait: z.enum(['true', 'false']).optional().openapi({ description: 'Hold the answer until the request is done or failed (at most wait_seconds), so a script can reveal right after' }),
  wait_seconds: z.coerce.number().int().min(1).max(120).default(60),
});

const PlannedCommand = z.object({
  step: z.string().openapi({ description: 'check-existing, create or groups' }),
  builder: z.string().openapi({ description: 'The command builder, as the audit (remote.exec) names it' }),
  change: z.boolean().openapi({ description: 'Changes the host (read-only lookups are not audited)' }),
  command: z.string().openapi({ description: 'Exactly what will be sent; no secret is ever in a command line' }),
  stdin: z.string().nullable().openapi({ description: 'Its stdin, with the password as <generated password, 20 chars>' }),
  sha256: z.string().openapi({ description: 'SHA-256 of command: what remote.exec audit rows record as command_sha256' }),
});
export const AccountOpeningPlanDto = z
  .object({
    request_id: z.string(),
    status: z.string(),
    host: z.object({ id: z.string(), slug: z.string(), os: z.string(), address: z.string(), port: z.number(), username: z.string() }),
    username: z.string(),
    groups: z.array(z.string()),
    commands: z.array(PlannedCommand),
    verify: z.string(),
    notes: z.array(z.string()),
  })
  .openapi('AccountOpeningPlan');
