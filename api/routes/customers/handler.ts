import { Router } from 'express';
import { MAX_REMINDER_OFFSETS, REMINDER_OFFSET_PATTERN, formatReminderOffset, normaliseReminderOffsets } from '../../../workflows/shared/reminder-offsets.js';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { AppDeps, AuthDeps } from '../../deps.js';
import { z, noControlText, type OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { conflict, validationError } from '../../errors.js';
import { PageQuery, pageOffsets, pageResult } from '../../pagination.js';
import { readPage } from '../../../db/read.js';
import { CustomerSchema, UserSchema, type Customer as CustomerRow, type User } from '../../../db/entities/index.js';
import { recordAudit } from '../../../db/audit.js';
import { createUser } from '../users/service.js';
import { isTimeZone } from '../../../activities/notify/format.js';
import { pii } from '../../authz/mask.js';

const noControl = (max: number) => noControlText(max, 'must not contain control characters');

const Customer = z
  .object({
    id: z.string().uuid(),
    name: z.string(),
    code: z.string(),
    contact_name: pii(z.string().nullable(), 'name'),
    contact_email: pii(z.string().nullable(), 'email'),
    contact_phone: pii(z.string().nullable(), 'phone'),
    notes: z.string().nullable(),
    reminder_offsets: z.array(z.string()).nullable().openapi({ description: "The customer's lease reminder offsets (e.g. [\"30d\",\"7d\",\"1d\"]); null: 7d/3d/1d. New allocations take it; running leases keep theirs" }),
    created_at: z.string(),
  })
  .openapi('Customer');
const CustomerCreate = z
  .object({
    name: noControl(200).min(1),
    code: z.string().regex(/^[a-z][a-z0-9-]{1,31}$/, '2-32 lowercase letters, digits or "-", starting with a letter'),
    contact_name: noControl(100).optional(),
    contact_email: z.string().email().optional(),
    contact_phone: z.string().regex(/^\+?[0-9 ()-]{5,30}$/, 'must be a phone number').optional(),
    notes: noControl(1000).optional(),
    reminder_offsets: z.array(z.string().regex(REMINDER_OFFSET_PATTERN, 'an offset looks like 7d, 12h or 30m')).max(MAX_REMINDER_OFFSETS).optional(),
  })
  .openapi('CustomerCreate');
const CustomerUpdate = z
  .object({
    name: noControl(200).min(1).optional(),
    contact_name: noControl(100).nullable().optional(),
    contact_email: z.string().email().nullable().optional(),
    contact_phone: z.string().regex(/^\+?[0-9 ()-]{5,30}$/, 'must be a phone number').nullable().optional(),
    notes: noControl(1000).nullable().optional(),
    reminder_offsets: z.array(z.string().regex(REMINDER_OFFSET_PATTERN, 'an offset looks like 7d, 12h or 30m')).max(MAX_REMINDER_OFFSETS).nullable().optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { path: ['body'], message: 'give at least one field to change' })
  .openapi('CustomerUpdate', { description: 'The code is the customer\'s identity and cannot change' });
const CustomerUser = z
  .object({ id: z.string().uuid(), username: z.string(), email: pii(z.string().nullable(), 'email'), full_name: z.string().nullable(), timezone: z.string().nullable(), role: z.string(), must_change_password: z.boolean(), created_at: z.string() })
  .openapi('CustomerUser');
const CustomerUserCreate = z
  .object({
    username: z.string().regex(/^[a-z_][a-z0-9_-]{1,31}$/, '2-32 characters: lowercase letters, digits, "_" or "-", not starting with a digit (it is also their OS login name)'),
    email: z.string().email(),
    full_name: noControl(100).min(1).optional(),
    timezone: z.string().refine(isTimeZone, 'must be an IANA time zone, e.g. Asia/Shanghai').optional(),
    role: z.enum(['customer_member', 'customer_owner']).default('customer_member').openapi({ description: 'customer_owner sees the whole company; customer_member only what is allocated to them' }),
  })
  .openapi('CustomerUserCreate');
const CustomerUserCreated = CustomerUser.extend({
  initial_password: z.string().openapi({ description: 'Generated; shown once; must be changed at first login' }),
});
const IdParams = z.object({ id: z.string().uuid('must be a customer id (uuid)') });
/** Validated offsets → minutes (largest first, unique); a bad list is 40001 naming reminder_offsets. */
const offsetsOf = (list: string[]): number[] => {
  const r = normaliseReminderOffsets(list);
  if ('error' in r) throw validationError([{ field: 'reminder_offsets', message: r.error }]);
  return r.minutes;
};

const toDto = (c: CustomerRow) => ({
  id: c.id,
  name: c.name,
  code: c.code,
  contact_name: c.contactName ?? null,
  contact_email: c.contactEmail ?? null,
  contact_phone: c.contactPhone ?? null,
  notes: c.notes ?? null,
  reminder_offsets: c.reminderOffsets ? c.reminderOffsets.map(formatReminderOffset) : null,
  created_at: c.createdAt.toISOString(),
});
const toUserDto = (u: User) => ({
  id: u.id,
  username: u.username,
  email: u.email ?? null,
  full_name: u.fullName ?? null,
  timezone: u.timezone ?? null,
  role: u.roles.includes('customer_owner') ? 'customer_owner' : (u.roles[0] ?? ''),
  must_change_password: u.mustChangePassword,
  created_at: u.createdAt.toISOString(),
});

/** Customers (companies renting hosts) and their users. */
export function customerRoutes(deps: AppDeps & AuthDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  const tags = ['customers'];
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/customers',
    summary: 'Create a customer',
    tags,
    permission: 'customer.write',
    body: CustomerCreate,
    response: Customer,
    status: 201,
    handler: async ({ body, user, req }) => {
      const em = deps.em.fork();
      const row = em.create(CustomerSchema, {
        name: body.name,
        code: body.code,
        contactName: body.contact_name ?? null,
        contactEmail: body.contact_email ?? null,
        contactPhone: body.contact_phone ?? null,
        notes: body.notes ?? null,
        reminderOffsets: body.reminder_offsets ? offsetsOf(body.reminder_offsets) : null,
      });
      recordAudit(em, { actor: user!.username, action: 'customer.create', targetType: 'customer', targetId: row.id, ip: req.ip, requestId: req.requestId, detail: { code: row.code } });
      try {
        await em.flush();
      } catch (err) {
        if (err instanceof UniqueConstraintViolationException) throw conflict(`code: a customer with code ${body.code} already exists`);
        throw err;
      }
      return toDto(row);
    },
  });
  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/customers',
    summary: 'List customers',
    tags,
    permission: 'customer.read',
    query: PageQuery.extend({ q: z.string().max(100).optional() }),
    response: z.object({ items: z.array(Customer), total: z.number(), page: z.number(), page_size: z.number(), pages: z.number() }),
    handler: async ({ query, scope }) => {
      const like = query.q ? `%${query.q.replace(/[%_\\]/g, '\\$&')}%` : undefined;
      const em = deps.em.fork();
      const where = await scope.where(em, CustomerSchema, like ? { $or: [{ name: { $ilike: like } }, { code: { $ilike: like } }] } : {});
      const { rows, total } = await readPage<CustomerRow>(em, CustomerSchema, where, { ...pageOffsets(query), orderBy: { createdAt: 'desc', id: 'asc' } });
      return pageResult(rows.map(toDto), total, query);
    },
  });
  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/customers/:id',
    summary: 'One customer',
    tags,
    permission: 'customer.read',
    params: IdParams,
    response: Customer,
    handler: async ({ params, scope }) => toDto(await scope.find(deps.em.fork(), CustomerSchema, { id: params.id }, 'customer')),
  });
  defineRoute(r, registry, {
    method: 'patch',
    path: '/api/v1/customers/:id',
    summary: 'Edit a customer (not its code); audited with before/after',
    tags,
    permission: 'customer.write',
    params: IdParams,
    body: CustomerUpdate,
    response: Customer,
    handler: async ({ params, body, user, req, scope }) => {
      const em = deps.em.fork();
      const c = await scope.find(em, CustomerSchema, { id: params.id }, 'customer');
      const fields = { name: 'name', contact_name: 'contactName', contact_email: 'contactEmail', contact_phone: 'contactPhone', notes: 'notes' } as const;
      const before: Record<string, unknown> = {};
      const after: Record<string, unknown> = {};
      if (body.reminder_offsets !== undefined) {
        before.reminder_offsets = c.reminderOffsets?.map(formatReminderOffset) ?? null;
        c.reminderOffsets = body.reminder_offsets === null ? null : offsetsOf(body.reminder_offsets);
        after.reminder_offsets = c.reminderOffsets?.map(formatReminderOffset) ?? null;
      }
      for (const [api, prop] of Object.entries(fields) as Array<[keyof typeof fields, (typeof fields)[keyof typeof fields]]>) {
        if (body[api] === undefined) continue;
        before[api] = c[prop] ?? null;
        after[api] = body[api];
        (c as unknown as Record<string, unknown>)[prop] = body[api];
      }
      recordAudit(em, { actor: user!.username, action: 'customer.update', targetType: 'customer', targetId: c.id, ip: req.ip, requestId: req.requestId, detail: { before, after } });
      await em.flush();
      return toDto(c);
    },
  });
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/customers/:id/users',
    summary: "Add a user to a customer: a generated initial password, shown once, to be changed at first login",
    tags,
    permission: 'customer.write',
    params: IdParams,
    body: CustomerUserCreate,
    response: CustomerUserCreated,
    status: 201,
    handler: async ({ params, body, user, req, scope }) => {
      const em = deps.em.fork();
      const c = await scope.find(em, CustomerSchema, { id: params.id }, 'customer');
      const { user: row, initialPassword } = await createUser(deps, em, {
        username: body.username,
        email: body.email,
        fullName: body.full_name ?? null,
        timezone: body.timezone ?? null,
        roles: [body.role],
        customerId: c.id,
      });
      recordAudit(em, { actor: user!.username, action: 'customer.user.create', targetType: 'user', targetId: row.id, ip: req.ip, requestId: req.requestId, detail: { customer: c.code, username: row.username, roles: row.roles } });
      await em.flush();
      return { ...toUserDto(row), initial_password: initialPassword };
    },
  });
  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/customers/:id/users',
    summary: "A customer's users",
    tags,
    permission: 'customer.read',
    params: IdParams,
    query: PageQuery,
    response: z.object({ items: z.array(CustomerUser), total: z.number(), page: z.number(), page_size: z.number(), pages: z.number() }),
    handler: async ({ params, query, scope }) => {
      const em = deps.em.fork();
      const c = await scope.find(em, CustomerSchema, { id: params.id }, 'customer');
      const [rows, total] = await em.findAndCount(UserSchema, (await scope.where(em, UserSchema, { customerId: c.id })) as never, { ...pageOffsets(query), orderBy: { createdAt: 'asc', id: 'asc' } });
      return pageResult(rows.map(toUserDto), total, query);
    },
  });
  return r;
}
