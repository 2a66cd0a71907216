import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/**
 * A role is data: a named set of permissions (api/authz/permissions.ts), optionally inheriting its
 * parent's, optionally scoped to host groups ("East region operators see East region hosts").
 * Built-in roles are seeded by migration; admins define custom ones through /api/v1/roles.
 */
export const RoleSchema = defineEntity({
  name: 'Role',
  tableName: 'roles',
  properties: {
    name: p.string().length(64).primary(),
    description: p.string().length(500).default(''),
    /** Name of the parent role: this role has all of its permissions too (checked by the roles service; a parent cannot be deleted). */
    parent: p.string().length(64).nullable(),
    /** Permission names, or `*` for all of them. */
    permissions: p.json<string[]>().default('[]'),
    /** Host group ids; empty = not limited by host group. */
    hostGroupIds: p.json<string[]>().default('[]'),
    builtin: p.boolean().default(false),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});

export type RoleRow = InferEntity<typeof RoleSchema>;
