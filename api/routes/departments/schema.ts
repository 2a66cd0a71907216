import { z, NO_CONTROL_RE } from '../../openapi.js';
import { PageQuery } from '../../pagination.js';

const name = z.string().trim().min(1).max(100).regex(NO_CONTROL_RE, 'must not contain control characters');

export const Department = z
  .object({
    id: z.string().uuid(),
    name: z.string(),
    parent_id: z.string().uuid().nullable(),
    admins: z.array(z.string().uuid()).openapi({ description: 'User ids of the department admins (they review registrations naming this department)' }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi('Department');

export const DepartmentCreate = z
  .object({
    name,
    parent_id: z.string().uuid('must be a department id (uuid)').nullable().optional(),
    admins: z.array(z.string().uuid('must be a user id (uuid)')).max(50).default([]),
  })
  .openapi('DepartmentCreate');

export const DepartmentUpdate = z
  .object({
    name: name.optional(),
    parent_id: z.string().uuid('must be a department id (uuid)').nullable().optional(),
    admins: z.array(z.string().uuid('must be a user id (uuid)')).max(50).optional(),
  })
  .openapi('DepartmentUpdate');

export const DepartmentListQuery = PageQuery.extend({ name: z.string().max(100).optional().openapi({ description: 'Substring of the name' }) });
export const DepartmentIdParams = z.object({ id: z.string().uuid('must be a department id (uuid)') });
export const PublicDepartment = z.object({ id: z.string().uuid(), name: z.string(), parent_id: z.string().uuid().nullable() }).openapi('PublicDepartment');
