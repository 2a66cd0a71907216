import ssh2 from 'ssh2';
import { z, noControlText } from '../../openapi.js';
import { HOST_OS, HOST_STATUSES } from '../../../db/entities/index.js';
import { WINRM_AUTH } from '../../../db/entities/host.entity.js';
import { PageQuery } from '../../pagination.js';

const slug = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'lowercase letters, digits and hyphens, 1-63 chars');
const address = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9.:[\]-]+$/, 'must be a hostname or IP address');

/** Privileged account requests a host permits (default: none; only staff may request them). */
export const AccountPolicyInput = z
  .object({
    allow_admin: z.boolean().default(false).openapi({ description: 'Allow is_admin (sudo / Administrators) requests' }),
    allow_groups: z.array(z.string().min(1).max(256)).max(20).default([]).openapi({ description: 'Privileged groups (root, sudo, wheel, adm, disk, docker, lxd; Windows Administrators …) that may be requested' }),
    privileged_by: z.enum(['staff', 'anyone']).default('staff').openapi({ description: 'Who may request what is allowed: staff (admin/operator) or anyone' }),
  })
  .strict()
  .openapi('AccountPolicy');

/** Parsed with ssh2 (the executor's own parser): what it cannot use is refused at registration. */
function isUsablePrivateKey(text: string): boolean {
  const k = ssh2.utils.parseKey(text);
  const key = Array.isArray(k) ? k[0] : k;
  return !!key && !(key instanceof Error) && key.isPrivateKey();
}

export const HostCreate = z
  .object({
    name: z.string().min(1).max(200),
    slug: slug.optional().openapi({ description: 'Defaults to a slug of the name' }),
    address,
    port: z.number().int().min(1).max(65535).default(22),
    os: z.enum(HOST_OS).default('linux'),
    username: z
      .string()
      .regex(/^(?:[A-Za-z0-9][A-Za-z0-9.-]{0,62}\\)?[A-Za-z_][A-Za-z0-9_.-]{0,63}(?:@[A-Za-z0-9][A-Za-z0-9.-]{0,252})?$/, 'must be a valid login name (Windows also DOMAIN\\user or user@realm)'),
    password: z.string().min(1).max(1024).optional().openapi({ description: 'Write-only: stored encrypted, never returned' }),
    private_key: z
      .string()
      .min(1)
      .max(16384)
      .refine(isUsablePrivateKey, 'must be an unencrypted OpenSSH or PEM private key (ed25519, ecdsa or rsa)')
      .optional()
      .openapi({ description: 'Write-only: OpenSSH/PEM private key (unencrypted), stored encrypted' }),
    allow_duplicate_address: z.boolean().default(false).openapi({ description: 'Register even though a host with the same address and port exists (otherwise 409 naming it)' }),
    site: z.string().max(100).optional(),
    group: z.string().max(100).optional(),
    tags: z.array(z.string().min(1).max(50)).max(50).default([]),
    winrm_port: z.number().int().min(1).max(65535).optional(),
    winrm_https: z.boolean().default(true),
    winrm_auth: z
      .enum(WINRM_AUTH)
      .default('negotiate')
      .openapi({ description: 'WinRM authentication: negotiate (Kerberos for user@REALM when the worker has a Kerberos configuration, else NTLMv2), ntlm, kerberos, basic (local accounts). NTLM/Kerberos over HTTP encrypt every message.' }),
    winrm_allow_unencrypted_basic: z
      .boolean()
      .default(false)
      .openapi({ description: 'Allow Basic over plain HTTP (credentials and scripts in clear text). Off by default; audited.' }),
    expected_gpu: z.object({ model: z.string().max(100).optional(), count: z.number().int().min(0).max(64).optional() }).optional(),
    template_id: z.string().uuid().optional().openapi({ description: 'Environment template version applied at onboarding' }),
    owner_tenant: z.string().max(100).optional(),
    account_policy: AccountPolicyInput.optional(),
  })
  .refine((h) => h.password || h.private_key, { path: ['password'], message: 'password or private_key is required' })
  .refine((h) => h.os === 'windows' || /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/.test(h.username), { path: ['username'], message: 'must be a valid login name' })
  .openapi('HostCreate', { anyOf: [{ required: ['password'] }, { required: ['private_key'] }], description: 'password or private_key is required' } as never);

export const Host = z
  .object({
    id: z.string().uuid(),
    slug: z.string(),
    name: z.string(),
    address: z.string(),
    port: z.number().int(),
    os: z.enum(HOST_OS),
    username: z.string(),
    site: z.string().nullable(),
    group: z.string().nullable(),
    tags: z.array(z.string()),
    status: z.enum(HOST_STATUSES),
    facts: z.unknown().nullable(),
    expected_gpu: z.object({ model: z.string().optional(), count: z.number().optional() }).nullable(),
    template_id: z.string().nullable(),
    owner_tenant: z.string().nullable(),
    account_policy: z.object({ allow_admin: z.boolean(), allow_groups: z.array(z.string()), privileged_by: z.enum(['staff', 'anyone']) }).nullable(),
    host_key_fingerprint: z.string().nullable(),
    winrm: z
      .object({ auth: z.enum(WINRM_AUTH), https: z.boolean(), port: z.number().nullable(), allow_unencrypted_basic: z.boolean() })
      .nullable()
      .openapi({ description: 'Windows hosts: WinRM transport settings (null for Linux)' }),
    has_credentials: z.boolean(),
    allocated: z.boolean().openapi({ description: 'Held by an allocation (rented, being provisioned or reclaimed, or failed and awaiting an operator): not available to allocate' }),
    last_seen_at: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi('Host');

export const HostListQuery = PageQuery.extend({
  status: z.enum(HOST_STATUSES).optional(),
  group: z.string().optional(),
  tag: z.string().optional(),
  gpu_model: z.string().max(100).optional().openapi({ description: 'Substring of a GPU model in the collected facts' }),
  q: z.string().max(100).optional().openapi({ description: 'Substring of name, slug or address' }),
  available: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional()
    .openapi({ description: 'true: only hosts that can be allocated now (online and not held by an allocation); false: only hosts that cannot' }),
});

export const HostIdParams = z.object({ id: z.string().uuid('must be a host id (uuid)') });

export const PingResult = z
  .object({
    workflow_id: z.string(),
    run_id: z.string(),
    reachable: z.boolean(),
    latency_ms: z.number().nullable(),
    error: z.object({ type: z.string(), message: z.string() }).nullable(),
  })
  .openapi('PingResult');

export const HostStatusChange = z
  .object({ status: z.enum(HOST_STATUSES), reason: z.string().max(500).optional() })
  .openapi('HostStatusChange');

/** Bulk import: JSON `{hosts:[...]}` or `text/csv` with a header row (tags separated by `;`). */
// Rows are validated one by one in the handler (errors name `hosts.<row>.<field>`); the document
// types them as HostCreate.
export const HostImport = z
  .object({ hosts: z.array(z.unknown()).min(1).max(5000).openapi({ items: { $ref: '#/components/schemas/HostCreate' } } as never) })
  .openapi('HostImport');
/** The preview checks every row and reports its errors, so any object is a row it accepts (HostCreate's fields are what it checks). */
export const HostImportPreviewBody = z
  .object({ hosts: z.array(z.record(z.string(), z.unknown()).openapi({ description: 'a row as POST /hosts/import takes it (HostCreate); checked and reported per field, never refused here' })).min(1).max(5000) })
  .openapi('HostImportPreviewBody');
export const HostImportResult = z.object({ imported: z.number(), ids: z.array(z.string()) });
export const HostImportPreview = z
  .object({
    total: z.number(),
    valid: z.number(),
    invalid: z.number(),
    rows: z.array(
      z.object({
        row: z.number().openapi({ description: '0-based row (the CSV\'s first data line is 0)' }),
        name: z.string().nullable(),
        slug: z.string().nullable(),
        address: z.string().nullable(),
        port: z.number().nullable(),
        os: z.string().nullable(),
        group: z.string().nullable(),
        errors: z.array(z.object({ field: z.string(), message: z.string() })).openapi({ description: 'What the import would refuse in this row, by field (hosts.<row>.<field>); empty: it imports' }),
      }),
    ),
  })
  .openapi('HostImportPreview');

/** A host key fingerprint as `ssh-keygen -lf` prints it, verified out of band, and why it changed. */
export const HostKeyRepin = z
  .object({
    fingerprint: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'must be an SSH SHA256 fingerprint, e.g. SHA256:Ab3… (43 base64 characters)'),
    reason: noControlText(500, 'must not contain control characters').min(1),
  })
  .strict()
  .openapi('HostKeyRepin');

/** What can be edited on a registered host (address, port, OS and credentials are not: re-register instead). */
export const HostUpdate = z
  .object({
    name: z.string().min(1).max(200).optional(),
    site: z.string().max(100).nullable().optional(),
    group: z.string().max(100).nullable().optional(),
    tags: z.array(z.string().min(1).max(50)).max(50).optional(),
    expected_gpu: z.object({ model: z.string().max(100).optional(), count: z.number().int().min(0).max(64).optional() }).nullable().optional(),
    owner_tenant: z.string().max(100).nullable().optional(),
    account_policy: AccountPolicyInput.nullable().optional().openapi({ description: 'Replaces the host\'s account policy; null removes it (the template\'s, if any, still applies)' }),
    winrm_auth: z.enum(WINRM_AUTH).optional(),
    winrm_https: z.boolean().optional(),
    winrm_port: z.number().int().min(1).max(65535).nullable().optional(),
    winrm_allow_unencrypted_basic: z.boolean().optional().openapi({ description: 'Allow Basic over plain HTTP for this host (audited as host.update with before/after)' }),
  })
  .refine((b) => Object.keys(b).length > 0, { path: ['body'], message: 'give at least one field to change' })
  .openapi('HostUpdate');

export const HostRetired = z.object({ id: z.string(), slug: z.string(), deleted: z.boolean() }).openapi('HostRetired');
