import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/** A company that rents hosts (seed 001 §8.2.2). Its people are `users` rows with `customer_id` set and the `customer` role. */
export const CustomerSchema = defineEntity({
  name: 'Customer',
  tableName: 'customers',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    name: p.string().length(200),
    /** Short unique code (lowercase letters, digits, "-"), used in account names and search. */
    code: p.string().length(32).unique(),
    contactName: p.string().length(100).nullable(),
    contactEmail: p.string().length(255).nullable(),
    contactPhone: p.string().length(50).nullable(),
    notes: p.string().length(1000).nullable(),
    /** The customer's lease reminder offsets (minutes before the end, largest first); null: the default 7/3/1 days. */
    reminderOffsets: p.json<number[]>().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});

export type Customer = InferEntity<typeof CustomerSchema>;
