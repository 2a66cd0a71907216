import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { HostSchema } from './host.entity.js';
import { CustomerSchema } from './customer.entity.js';
import { UserSchema } from './user.entity.js';

/**
 * pending → provisioning → active ⇄ (extend) → buffer → reclaiming → reclaimed
 * with failed (provisioning failed), reclaim-failed (host left in maintenance) and cancelled.
 */
export const ALLOCATION_STATUSES = ['pending', 'provisioning', 'active', 'failed', 'buffer', 'reclaiming', 'reclaim-failed', 'reclaimed', 'cancelled'] as const;
export type AllocationStatus = (typeof ALLOCATION_STATUSES)[number];
/** Statuses in which an allocation holds its host: at most one per host (partial unique index). */
export const HOLDING_ALLOCATION_STATUSES: readonly AllocationStatus[] = ['pending', 'provisioning', 'active', 'failed', 'buffer', 'reclaiming', 'reclaim-failed'];

/**
 * A host rented to a customer for a term (seed 001 §8.2.2, §8.2.4). The workflows
 * `allocation/<id>`, `lease/<id>` and `reclaim/<id>` are the truth; this row mirrors them.
 */
export const AllocationSchema = defineEntity({
  name: 'Allocation',
  tableName: 'allocations',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    host: () => p.manyToOne(HostSchema).index(),
    customer: () => p.manyToOne(CustomerSchema).index(),
    /** The customer user whose OS account and keys go on the host. */
    customerUser: () => p.manyToOne(UserSchema),
    osUsername: p.string().length(64),
    startsAt: p.datetime(),
    endsAt: p.datetime(),
    bufferSeconds: p.integer(),
    /** Grace given to running tasks before reclaim stops them. */
    graceSeconds: p.integer(),
    status: p.enum(ALLOCATION_STATUSES).default('pending').index(),
    hostAccountId: p.uuid().nullable(),
    /** The step that failed (provisioning or reclaim), with its error. */
    failedStep: p.string().length(50).nullable(),
    error: p.string().length(2000).nullable(),
    terminateReason: p.string().length(1000).nullable(),
    notes: p.string().length(1000).nullable(),
    /** Reminder offsets (minutes before the end, largest first) this allocation's lease was started with; null: 7/3/1 days. */
    reminderOffsets: p.json<number[]>().nullable(),
    createdBy: p.string().length(64),
    reclaimedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()).index(),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
  uniques: [
    {
      name: 'allocations_host_holding_unique',
      expression: `create unique index "allocations_host_holding_unique" on "allocations" ("host_id") where "status" in ('pending', 'provisioning', 'active', 'failed', 'buffer', 'reclaiming', 'reclaim-failed')`,
    },
  ],
});
export type Allocation = InferEntity<typeof AllocationSchema>;

export const ALLOCATION_PHASES = ['allocate', 'reclaim'] as const;
export const ALLOCATION_STEP_STATUSES = ['pending', 'running', 'done', 'failed', 'skipped', 'waiting'] as const;

/** One step of provisioning or reclaim, with its status and timestamps (the progress API). */
export const AllocationStepSchema = defineEntity({
  name: 'AllocationStep',
  tableName: 'allocation_steps',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    allocation: () => p.manyToOne(AllocationSchema).deleteRule('cascade').index(),
    phase: p.enum(ALLOCATION_PHASES),
    step: p.string().length(50),
    position: p.integer(),
    status: p.enum(ALLOCATION_STEP_STATUSES).default('pending'),
    attempts: p.integer().default(0),
    startedAt: p.datetime().nullable(),
    finishedAt: p.datetime().nullable(),
    error: p.string().length(2000).nullable(),
    detail: p.json<Record<string, unknown>>().nullable(),
  },
  uniques: [{ properties: ['allocation', 'phase', 'step'] }],
});
export type AllocationStep = InferEntity<typeof AllocationStepSchema>;

/** The kinds of the default schedule; a reminder policy adds `reminder-<n>d|h|m` (workflows/shared/reminder-offsets.ts). */
export const LEASE_EVENT_KINDS = ['reminder-7d', 'reminder-3d', 'reminder-1d', 'ended', 'reclaim-started'] as const;
export type LeaseEventKind = (typeof LEASE_EVENT_KINDS)[number] | `reminder-${number}${'d' | 'h' | 'm'}`;

/**
 * What a lease has done, exactly once per (allocation, kind): the unique key is what makes a
 * reminder impossible to send twice, whatever happens to workers.
 */
export const LeaseEventSchema = defineEntity({
  name: 'LeaseEvent',
  tableName: 'lease_events',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    allocation: () => p.manyToOne(AllocationSchema).deleteRule('cascade').index(),
    kind: p.string().length(40).$type<LeaseEventKind>(),
    /** When the workflow meant it to happen (workflow time). */
    dueAt: p.datetime(),
    /** Workflow time when it fired. */
    firedAt: p.datetime(),
    /** The lease end it was computed from. */
    leaseEndsAt: p.datetime(),
    notification: p.string().length(20).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
  uniques: [{ properties: ['allocation', 'kind'] }],
});
export type LeaseEvent = InferEntity<typeof LeaseEventSchema>;
