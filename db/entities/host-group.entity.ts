import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/** A named set of hosts (a cluster, a room, a product line). Hosts reference it by name. */
export const HostGroupSchema = defineEntity({
  name: 'HostGroup',
  tableName: 'host_groups',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    name: p.string().length(100).unique(),
    description: p.string().length(500).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});

export type HostGroup = InferEntity<typeof HostGroupSchema>;
