// Departments: a name, a parent, and admins (user ids) who review registrations naming them.
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { DepartmentSchema, UserSchema, type Department } from '../../../db/entities/index.js';
import { recordAudit } from '../../../db/audit.js';
import { conflict, notFound, validationError } from '../../errors.js';

export interface DepartmentDeps {
  em: SqlEntityManager;
}
interface Actor {
  username: string;
}
interface Ctx {
  ip?: string;
  requestId: string;
}

export const toDepartmentDto = (d: Department) => ({
  id: d.id,
  name: d.name,
  parent_id: d.parentId ?? null,
  admins: d.admins,
  created_at: d.createdAt.toISOString(),
  updated_at: d.updatedAt.toISOString(),
});

async function checkAdmins(em: SqlEntityManager, admins: string[]) {
  const unique = [...new Set(admins)];
  const found = unique.length ? await em.find(UserSchema, { id: { $in: unique }, disabledAt: null }) : [];
  const missing = unique.filter((id) => !found.some((u) => u.id === id));
  if (missing.length) throw validationError(missing.map((id) => ({ field: `admins.${admins.indexOf(id)}`, message: 'no active user with this id' })));
  return unique;
}

/** The parent must exist and must not be the department itself or one of its descendants. */
async function checkParent(em: SqlEntityManager, parentId: string, selfId?: string) {
  let cursor: string | null = parentId;
  for (let depth = 0; cursor; depth++) {
    if (cursor === selfId) throw validationError([{ field: 'parent_id', message: 'a department cannot be its own ancestor' }]);
    if (depth > 64) throw validationError([{ field: 'parent_id', message: 'department tree is too deep' }]);
    const d: Department | null = await em.findOne(DepartmentSchema, { id: cursor });
    if (!d) throw validationError([{ field: 'parent_id', message: depth === 0 ? 'no department with this id' : 'broken parent chain' }]);
    cursor = d.parentId ?? null;
  }
}

export async function listDepartments(deps: DepartmentDeps, q: { name?: string; limit: number; offset: number }) {
  const where = q.name ? { name: { $ilike: `%${q.name.replace(/[\\%_]/g, (c) => `\\${c}`)}%` } } : {};
  return deps.em.fork().findAndCount(DepartmentSchema, where, { limit: q.limit, offset: q.offset, orderBy: { name: 'asc', id: 'asc' } });
}

export async function createDepartment(deps: DepartmentDeps, actor: Actor, input: { name: string; parent_id?: string | null; admins: string[] }, ctx: Ctx) {
  const em = deps.em.fork();
  if (input.parent_id) await checkParent(em, input.parent_id);
  const admins = await checkAdmins(em, input.admins);
  const row = em.create(DepartmentSchema, { name: input.name, parentId: input.parent_id ?? null, admins });
  recordAudit(em, { actor: actor.username, action: 'department.create', targetType: 'department', targetId: row.id, ip: ctx.ip, requestId: ctx.requestId, detail: { name: row.name, admins } });
  try {
    await em.flush();
  } catch (err) {
    if (err instanceof UniqueConstraintViolationException) throw conflict(`department ${input.name} already exists`);
    throw err;
  }
  return row;
}

export async function updateDepartment(
  deps: DepartmentDeps,
  actor: Actor,
  id: string,
  input: { name?: string; parent_id?: string | null; admins?: string[] },
  ctx: Ctx,
) {
  const em = deps.em.fork();
  const row = await em.findOne(DepartmentSchema, { id });
  if (!row) throw notFound('department');
  const before = toDepartmentDto(row);
  if (input.parent_id) await checkParent(em, input.parent_id, id);
  if (input.parent_id !== undefined) row.parentId = input.parent_id;
  if (input.admins) row.admins = await checkAdmins(em, input.admins);
  if (input.name !== undefined) row.name = input.name;
  recordAudit(em, { actor: actor.username, action: 'department.update', targetType: 'department', targetId: id, ip: ctx.ip, requestId: ctx.requestId, detail: { before, after: input } });
  try {
    await em.flush();
  } catch (err) {
    if (err instanceof UniqueConstraintViolationException) throw conflict(`department ${input.name} already exists`);
    throw err;
  }
  return row;
}

/** Ids of the departments a user administers. */
export async function departmentsAdministeredBy(em: SqlEntityManager, userId: string): Promise<string[]> {
  const rows = await em.getConnection().execute<Array<{ id: string }>>(`select id from departments where admins @> ?::jsonb`, [JSON.stringify([userId])]);
  return rows.map((r) => r.id);
}
