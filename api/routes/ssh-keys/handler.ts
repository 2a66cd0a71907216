import { runSummary } from '../../../config/temporal.js';
import { Router } from 'express';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { AppDeps } from '../../deps.js';
import { z, type OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { conflict, validationError } from '../../errors.js';
import { PageQuery, pageOffsets, pageResult } from '../../pagination.js';
import { SshKeySchema, UserSchema, type SshKey as SshKeyRow } from '../../../db/entities/index.js';
import { recordAudit } from '../../../db/audit.js';
import { parseSshPublicKey } from '../../../activities/remote/linux.js';
import { InvalidInputError } from '../../../activities/remote/validation.js';
import type { sshKeyRevoke } from '../../../workflows/ssh-key-revoke.workflow.js';
import type { sshKeyAdd } from '../../../workflows/ssh-key-add.workflow.js';
import { rethrowMapped } from '../../temporal-errors.js';

const SshKey = z
  .object({
    id: z.string().uuid(),
    user_id: z.string().uuid(),
    type: z.string(),
    bits: z.number(),
    fingerprint: z.string(),
    comment: z.string().nullable(),
    public_key: z.string(),
    created_at: z.string(),
    revoked_at: z.string().nullable(),
  })
  .openapi('SshKey');
const SshKeyCreate = z
  .object({
    public_key: z.string().min(1).max(16_384).openapi({ description: 'One OpenSSH public key line: "<type> <base64> [comment]"' }),
    user_id: z.string().uuid().optional().openapi({ description: 'Owner, a user within your scope (default: the caller)' }),
  })
  .openapi('SshKeyCreate');

/** Key size in bits from the key blob: RSA modulus length, the ECDSA curve, 256 for Ed25519 (and security keys). */
export function keyBits(type: string, blob: string): number {
  const raw = Buffer.from(blob, 'base64');
  if (type === 'ssh-rsa') {
    let off = 0;
    const field = () => {
      const len = raw.readUInt32BE(off);
      const v = raw.subarray(off + 4, off + 4 + len);
      off += 4 + len;
      return v;
    };
    field(); // type
    field(); // e
    let n = field();
    while (n.length && n[0] === 0) n = n.subarray(1);
    return n.length ? (n.length - 1) * 8 + Math.floor(Math.log2(n[0]!)) + 1 : 0;
  }
  const m = /nistp(\d+)/.exec(type);
  if (m) return Number(m[1]);
  return 256;
}

const toDto = (k: SshKeyRow) => ({
  id: k.id,
  user_id: k.user.id,
  type: k.type,
  bits: k.bits,
  fingerprint: k.fingerprint,
  comment: k.comment ?? null,
  public_key: k.publicKey,
  created_at: k.createdAt.toISOString(),
  revoked_at: k.revokedAt?.toISOString() ?? null,
});


/** Users' SSH public keys: validated, fingerprinted, unique by fingerprint among active keys, revocable. */
export function sshKeyRoutes(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  const tags = ['ssh-keys'];
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/ssh-keys',
    summary: 'Register an SSH public key (RSA ≥ 2048 bits, ECDSA, Ed25519); the hosts of the owner\'s active allocations get it now (workflow ssh-key-add/<id>)',
    tags,
    permission: 'ssh_key.manage',
    body: SshKeyCreate,
    response: SshKey,
    status: 201,
    handler: async ({ body, user, req, scope }) => {
      const ownerId = body.user_id ?? user!.id;
      const em = deps.em.fork();
      // Someone else's key: only for a user within the caller's scope (staff: anyone; a customer owner: the company).
      const owner = ownerId === user!.id ? await em.findOne(UserSchema, { id: ownerId }) : await em.findOne(UserSchema, (await scope.where(em, UserSchema, { id: ownerId })) as never);
      if (!owner) throw validationError([{ field: 'user_id', message: 'user does not exist' }]);
      let parsed;
      try {
        parsed = parseSshPublicKey(body.public_key.trim(), 'public_key');
      } catch (err) {
        if (err instanceof InvalidInputError) throw validationError([{ field: 'public_key', message: err.message.replace(/^public_key: /, '') }]);
        throw err;
      }
      const bits = keyBits(parsed.type, parsed.blob);
      if (parsed.type === 'ssh-rsa' && bits < 2048) throw validationError([{ field: 'public_key', message: `RSA keys must be at least 2048 bits (this one has ${bits})` }]);
      if (parsed.comment.length > 200) throw validationError([{ field: 'public_key', message: 'comment must be at most 200 characters' }]);
      const existing = await em.findOne(SshKeySchema, { fingerprint: parsed.fingerprint, revokedAt: null });
      // One answer whoever holds it: the message must not tell a caller that another user owns the key.
      if (existing) throw conflict(`public_key: this key (${parsed.fingerprint}) is already registered; use another key, or revoke the registered one first`);
      const row = em.create(SshKeySchema, {
        user: owner,
        type: parsed.type,
        bits,
        publicKey: [parsed.type, parsed.blob, parsed.comment].filter(Boolean).join(' '),
        comment: parsed.comment || null,
        fingerprint: parsed.fingerprint,
      });
      recordAudit(em, { actor: user!.username, action: 'ssh-key.add', targetType: 'user', targetId: owner.id, ip: req.ip, requestId: req.requestId, detail: { fingerprint: parsed.fingerprint } });
      try {
        await em.flush();
      } catch (err) {
        if (err instanceof UniqueConstraintViolationException) throw conflict(`public_key: this key (${parsed.fingerprint}) is already registered; use another key, or revoke the registered one first`);
        throw err;
      }
      // The owner's active allocations get the key now (workflow ssh-key-add/<id>). Nothing
      // half-done: if Temporal cannot take the start, the key is not registered either.
      try {
        await deps.temporal.client.workflow.start<typeof sshKeyAdd>('sshKeyAdd', {
          workflowId: `ssh-key-add/${row.id}`,
          taskQueue: deps.temporal.taskQueue,
          args: [{ keyId: row.id }],
          workflowIdConflictPolicy: 'USE_EXISTING',
          ...runSummary(`Add SSH key ${row.fingerprint} to its owner's rented hosts`, { fingerprint: row.fingerprint }),
        });
      } catch (err) {
        await deps.em.fork().nativeDelete(SshKeySchema, { id: row.id });
        rethrowMapped(err);
      }
      return toDto(row);
    },
  });
  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/ssh-keys',
    summary: 'List SSH keys within your scope (your own; a customer owner: the company’s; staff: anyone’s)',
    tags,
    permission: 'ssh_key.manage',
    query: PageQuery.extend({ user_id: z.string().uuid().optional(), include_revoked: z.enum(['true', 'false']).default('false') }),
    response: z.object({ items: z.array(SshKey), total: z.number(), page: z.number(), page_size: z.number(), pages: z.number() }),
    handler: async ({ query, scope }) => {
      const where: Record<string, unknown> = {};
      if (query.user_id) where.user = query.user_id;
      if (query.include_revoked !== 'true') where.revokedAt = null;
      const em = deps.em.fork();
      const [rows, total] = await em.findAndCount(SshKeySchema, (await scope.where(em, SshKeySchema, where)) as never, { ...pageOffsets(query), orderBy: { createdAt: 'asc', id: 'asc' } });
      return pageResult(rows.map(toDto), total, query);
    },
  });
  defineRoute(r, registry, {
    method: 'delete',
    path: '/api/v1/ssh-keys/:id',
    summary: 'Revoke a key (kept for the audit trail); the hosts of its owner\'s allocations lose it now (workflow ssh-key-revoke/<id>)',
    tags,
    permission: 'ssh_key.manage',
    params: z.object({ id: z.string().uuid() }),
    response: SshKey,
    handler: async ({ params, user, req, scope }) => {
      const em = deps.em.fork();
      const k = await scope.find(em, SshKeySchema, { id: params.id }, 'ssh key');
      if (!k.revokedAt) {
        k.revokedAt = new Date();
        recordAudit(em, { actor: user!.username, action: 'ssh-key.revoke', targetType: 'user', targetId: k.user.id, ip: req.ip, requestId: req.requestId, detail: { fingerprint: k.fingerprint, workflowId: `ssh-key-revoke/${k.id}` } });
        await em.flush();
      }
      // Revoked in the DB first (no allocation adds it again), then off the hosts. If Temporal cannot
      // take the start, the error says so and DELETE again starts it (a running one is reused).
      try {
        await deps.temporal.client.workflow.start<typeof sshKeyRevoke>('sshKeyRevoke', {
          workflowId: `ssh-key-revoke/${k.id}`,
          taskQueue: deps.temporal.taskQueue,
          args: [{ keyId: k.id }],
          workflowIdConflictPolicy: 'USE_EXISTING',
          ...runSummary(`Revoke SSH key ${k.fingerprint} from the hosts it was put on`, { fingerprint: k.fingerprint }),
        });
      } catch (err) {
        rethrowMapped(err);
      }
      return toDto(k);
    },
  });
  return r;
}
