import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/**
 * An organisational unit. Its admins (user ids) review the self-registrations that name it
 * (the department review step of `user-registration/<id>`). A json array rather than a join
 * table: the list is short, read whole, and always replaced whole.
 */
export const DepartmentSchema = defineEntity({
  name: 'Department',
  tableName: 'departments',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    name: p.string().length(100).unique(),
    parentId: p.uuid().nullable().index(),
    admins: p.json<string[]>().default('[]'),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});

export type Department = InferEntity<typeof DepartmentSchema>;
