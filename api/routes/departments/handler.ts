import { Router } from 'express';
import type { AppDeps } from '../../deps.js';
import { type OpenAPIRegistry, paginated, z } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { pageOffsets, pageResult, PageQuery } from '../../pagination.js';
import { DepartmentSchema } from '../../../db/entities/index.js';
import { Department, DepartmentCreate, DepartmentIdParams, DepartmentListQuery, DepartmentUpdate, PublicDepartment } from './schema.js';
import { createDepartment, listDepartments, toDepartmentDto, updateDepartment } from './service.js';

export function departmentRoutes(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  const tags = ['departments'];

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/departments',
    summary: 'List departments',
    tags,
    permission: 'department.manage',
    query: DepartmentListQuery,
    response: paginated(Department),
    handler: async ({ query }) => {
      const [rows, total] = await listDepartments(deps, { name: query.name, ...pageOffsets(query) });
      return pageResult(rows.map(toDepartmentDto), total, query);
    },
  });

  // The registration form needs to offer departments to people who have no account yet: names only.
  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/registrations/departments',
    summary: 'Departments a new user can register for (id, name, parent; no admins)',
    tags: ['registrations'],
    permission: 'public',
    query: PageQuery.extend({ page_size: z.coerce.number().int().min(1).max(200).default(200) }),
    response: paginated(PublicDepartment),
    handler: async ({ query }) => {
      const [rows, total] = await deps.em.fork().findAndCount(DepartmentSchema, {}, { ...pageOffsets(query), orderBy: { name: 'asc', id: 'asc' } });
      return pageResult(rows.map((d) => ({ id: d.id, name: d.name, parent_id: d.parentId ?? null })), total, query);
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/departments',
    summary: 'Create a department (name unique; admins are user ids)',
    tags,
    permission: 'department.manage',
    body: DepartmentCreate,
    response: Department,
    status: 201,
    handler: async ({ body, user, req }) => toDepartmentDto(await createDepartment(deps, user!, body, req)),
  });

  defineRoute(r, registry, {
    method: 'patch',
    path: '/api/v1/departments/:id',
    summary: 'Change a department: name, parent (no cycles), admins (replaced whole)',
    tags,
    permission: 'department.manage',
    params: DepartmentIdParams,
    body: DepartmentUpdate,
    response: Department,
    handler: async ({ params, body, user, req }) => toDepartmentDto(await updateDepartment(deps, user!, params.id, body, req)),
  });

  return r;
}
