import {
  ApplicationFailure,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineUpdate,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Activities } from '../activities/index.js';
import type { LeaseEventKind } from '../db/entities/allocation.entity.js';
import { CustomerIdKey, HostIdKey, LifecycleStatusKey } from './shared/search-attributes.js';
import { reclaim } from './reclaim.workflow.js';
import { actorMay } from './shared/actor.js';
import { reminderKind } from './shared/reminder-offsets.js';
import { decisionTrace } from './shared/decision-trace.js';
import { RENTAL_MEMO_FIELDS, childRunSummary, inheritedMemo } from './shared/child-summary.js';
import { timerSummary } from './shared/activity-summary.js';

/**
 * lease/<allocationId>: sleeps durably to 7, 3 and 1 days before the end, sending a reminder at
 * each; at the end sends the final notice and enters the buffer period; when the buffer is over,
 * starts `reclaim/<allocationId>` and finishes.
 *
 * Reminders are exactly-once per (allocation, kind): the workflow's own `sent` set, and a unique
 * key in the DB (recordLeaseEvent). A reminder whose moment has already passed when the lease
 * is started (or when its end moves) is skipped, never sent late in a burst; one that falls due
 * while workers are down or behind (even before the lease's first task ran) is still sent.
 * Extending recomputes the remaining reminders; reminders already sent are not sent again. Long
 * leases continue-as-new with their state (including a status write still owed to the DB).
 *
 * Patches (see the rule at the top of workflows/index.ts; ids are part of the storage format):
 * - `lease-skip-from-start`: reminders on start are skipped relative to the Started event's time
 *   (commit 6586da7), not the first task's. Runs without the marker keep the first-task clock.
 * - `lease-extend-race`: an extend that lands while the lease enters its buffer wins: no final
 *   notice for the end it moved, the `LifecycleStatus` search attribute follows the phase back to
 *   `active`, and an extend arriving while the final notice is being sent waits for it.
 * - `lease-reclaim-memo`: the reclaim child starts with a human summary and the rental's names
 *   (host, customer, username) in its memo, for its activity summaries and the Web UI.
 * - `lease-reminder-policy`: a lease started with its own reminder offsets (`reminderOffsetsMinutes`:
 *   the allocation's or its customer's policy, in days, hours or minutes) reminds at those instead
 *   of 7/3/1 days. Decided at the start of each run from the input; runs without offsets (every
 *   run started before this change) keep the fixed schedule and never call the patch.
 */
export const REMINDERS: ReadonlyArray<readonly [LeaseEventKind, number]> = [
  ['reminder-7d', 7],
  ['reminder-3d', 3],
  ['reminder-1d', 1],
];
const DAY = 86_400_000;

export type LeasePhase = 'active' | 'buffer' | 'reclaiming';

export interface LeaseInput {
  allocationId: string;
  hostId: string;
  customerId: string;
  endsAtMs: number;
  bufferMs: number;
  graceMs: number;
  /** State carried across continue-as-new. */
  carried?: {
    phase: LeasePhase;
    sent: string[];
    skipped: string[];
    bufferEndsAtMs: number | null;
    terminateReason: string | null;
    /** The DB mirror still owes a status write (an Update landed just before continue-as-new). */
    dirty?: boolean;
  };
  /** Reminder offsets in minutes before the end (largest first); absent: 7/3/1 days (REMINDERS). */
  reminderOffsetsMinutes?: number[];
  /** Continue-as-new once history is this long (default 2,000; tests lower it to exercise it). */
  maxHistoryEvents?: number;
}

export interface LeaseState {
  phase: LeasePhase;
  endsAt: string;
  bufferEndsAt: string | null;
  next: { kind: string; at: string } | null;
  sent: string[];
  skipped: string[];
  terminateReason: string | null;
}

export interface LeaseActor {
  id: string;
  username: string;
  roles: string[];
  /** Effective permissions (api/authz); absent in histories recorded before they existed. */
  permissions?: string[];
}

export const extendUpdate = defineUpdate<LeaseState, [{ endsAt: string; actor: LeaseActor }]>('extend');
export const returnEarlyUpdate = defineUpdate<LeaseState, [{ mode: 'buffer' | 'reclaim'; actor: LeaseActor }]>('return-early');
export const terminateUpdate = defineUpdate<LeaseState, [{ reason: string; actor: LeaseActor }]>('terminate');
export const leaseStateQuery = defineQuery<LeaseState>('state');

const db = proxyActivities<Pick<Activities, 'recordLeaseEvent' | 'setAllocationStatus'>>({
  // Lease events must land whatever the outage: unlimited attempts (SDK default), short timeout.
  startToCloseTimeout: '10 seconds',
  retry: { maximumInterval: '5 minutes' },
});

/**
 * The 7/3/1-day reminder as a local activity (patch 'lease-local-reminder'): it runs inside the
 * workflow task the timer woke, so a reminder costs one workflow task and a marker instead of two
 * workflow tasks and an activity task dispatched through the server (bench/leases). Same options,
 * same idempotency: the lease_events row and the notification key make a re-run after a crashed
 * worker (the workflow task times out, another worker runs it again) finish the send, not repeat it.
 */
const localDb = proxyLocalActivities<Pick<Activities, 'recordLeaseEvent'>>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumInterval: '5 minutes' },
});

/** Keeps history well below the suggested limit over a term of months. */
const MAX_HISTORY_EVENTS = 2_000;

export async function lease(input: LeaseInput): Promise<LeaseState> {
  /** [kind, ms before the end] of every reminder of this lease. */
  const reminders: ReadonlyArray<readonly [LeaseEventKind, number]> =
    input.reminderOffsetsMinutes?.length && patched('lease-reminder-policy')
      ? input.reminderOffsetsMinutes.map((m) => [reminderKind(m) as LeaseEventKind, m * 60_000] as const)
      : REMINDERS.map(([k, d]) => [k, d * DAY] as const);
  let endsAtMs = input.endsAtMs;
  let phase: LeasePhase = input.carried?.phase ?? 'active';
  let bufferEndsAtMs: number | null = input.carried?.bufferEndsAtMs ?? null;
  let terminateReason: string | null = input.carried?.terminateReason ?? null;
  const sent = new Set<string>(input.carried?.sent ?? []);
  const skipped = new Set<string>(input.carried?.skipped ?? []);
  let wake = false;
  let dirty = input.carried?.dirty ?? false;
  /** Bumped by every Update that changes the lease: work started before it is stale if it moved. */
  let changes = 0;
  /** The final notice is being sent: an extend waits for it (then it is no longer stale). */
  let noticeInFlight = false;
  const raceFixed = () => patched('lease-extend-race');

  /**
   * Reminders not sent whose moment is before `now` are skipped; later ones are pending. On start,
   * `now` is when the lease was started, not when a worker first ran it: a reminder that fell due
   * while the first task waited for a worker is sent late, not skipped. (`workflowInfo().startTime`
   * is the Started event's time; the SDK's `runStartTime` is the first task's.)
   */
  const recompute = (now = Date.now()) => {
    for (const [kind, beforeMs] of reminders) {
      if (sent.has(kind)) continue;
      if (endsAtMs - beforeMs <= now) skipped.add(kind);
      else skipped.delete(kind);
    }
  };
  const nextEvent = (): { kind: LeaseEventKind | 'end' | 'reclaim'; at: number } | null => {
    if (phase === 'reclaiming') return null;
    if (phase === 'buffer') return { kind: 'reclaim', at: bufferEndsAtMs ?? Date.now() };
    const pending = reminders.filter(([k]) => !sent.has(k) && !skipped.has(k)).map(([k, beforeMs]) => ({ kind: k, at: endsAtMs - beforeMs }));
    pending.sort((a, b) => a.at - b.at);
    return pending[0] ?? { kind: 'end', at: endsAtMs };
  };
  const state = (): LeaseState => {
    const n = nextEvent();
    return {
      phase,
      endsAt: new Date(endsAtMs).toISOString(),
      bufferEndsAt: bufferEndsAtMs === null ? null : new Date(bufferEndsAtMs).toISOString(),
      next: n ? { kind: n.kind, at: new Date(n.at).toISOString() } : null,
      sent: [...sent],
      skipped: [...skipped],
      terminateReason,
    };
  };
  // The trace of the last Update (extend, return-early, terminate: POST /allocations/:id/…): the
  // status write it causes, and the reclaim (child workflow and its SSH commands) a terminate or a
  // return starts, run in it; work a timer causes (reminders, the end, the buffer's end) does not.
  const decided = decisionTrace();
  /** Called by every Update handler (inside its HandleUpdate span). */
  const changed = () => {
    decided.capture();
    wake = true;
    dirty = true;
    changes++;
  };

  setHandler(leaseStateQuery, state);
  setHandler(
    extendUpdate,
    async ({ endsAt }) => {
      // Only set on the patched path (lease-extend-race), so old histories never wait here.
      if (noticeInFlight) {
        await condition(() => !noticeInFlight);
        if (Date.parse(endsAt) <= endsAtMs) throw invalid(`ends_at: must be later than the current end ${new Date(endsAtMs).toISOString()}`);
        if (phase === 'reclaiming') throw notActive('the lease is over and the host is being reclaimed');
      }
      endsAtMs = Date.parse(endsAt);
      if (phase === 'buffer') {
        phase = 'active';
        bufferEndsAtMs = null;
      }
      recompute();
      changed();
      return state();
    },
    {
      validator: ({ endsAt, actor }) => {
        if (!actorMay(actor, 'allocation.manage', ['admin', 'operator'])) throw forbidden('extending a lease needs the allocation.manage permission');
        if (phase === 'reclaiming') throw notActive('the lease is over and the host is being reclaimed');
        const t = Date.parse(endsAt);
        if (!Number.isFinite(t)) throw invalid('ends_at: not a date');
        if (t <= endsAtMs) throw invalid(`ends_at: must be later than the current end ${new Date(endsAtMs).toISOString()}`);
        if (t <= Date.now()) throw invalid('ends_at: must be in the future');
      },
    },
  );
  setHandler(
    returnEarlyUpdate,
    ({ mode }) => {
      if (mode === 'reclaim') {
        phase = 'reclaiming';
      } else {
        endsAtMs = Date.now();
        recompute();
      }
      changed();
      return state();
    },
    {
      validator: ({ mode }) => {
        if (phase === 'reclaiming') throw notActive('the host is already being reclaimed');
        if (mode === 'buffer' && phase !== 'active') throw notActive('the lease has already ended; return it with mode "reclaim" to reclaim now');
      },
    },
  );
  setHandler(
    terminateUpdate,
    ({ reason }) => {
      terminateReason = reason.trim();
      phase = 'reclaiming';
      changed();
      return state();
    },
    {
      validator: ({ reason, actor }) => {
        if (!actorMay(actor, 'allocation.terminate', ['admin'])) throw forbidden('terminating a lease needs the allocation.terminate permission');
        if (!reason || !reason.trim()) throw invalid('reason: a reason is required');
        if (phase === 'reclaiming') throw notActive('the host is already being reclaimed');
      },
    },
  );

  if (!input.carried) recompute(patched('lease-skip-from-start') ? workflowInfo().startTime.getTime() : Date.now());
  const maxHistoryEvents = input.maxHistoryEvents ?? MAX_HISTORY_EVENTS;

  for (;;) {
    if (dirty) {
      dirty = false;
      if (phase !== 'reclaiming') {
        // The search attribute follows the phase (an extend during the buffer makes it active again).
        if (workflowInfo().typedSearchAttributes.get(LifecycleStatusKey) !== phase && raceFixed()) upsertSearchAttributes([{ key: LifecycleStatusKey, value: phase }]);
        await decided.run(() => db.setAllocationStatus(input.allocationId, phase, { endsAtMs }));
      }
    }
    if (phase === 'reclaiming') break;
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength > maxHistoryEvents) {
      await condition(allHandlersFinished);
      // Everything an Update changed up to this point is carried, including a status write the
      // DB mirror still owes (`dirty`): the next run makes it first.
      return continueAsNew<typeof lease>({
        ...input,
        endsAtMs,
        carried: { phase, sent: [...sent], skipped: [...skipped], bufferEndsAtMs, terminateReason, ...(dirty ? { dirty } : {}) },
      });
    }
    const ev = nextEvent()!;
    const delay = ev.at - Date.now();
    // The timer's summary in the Web UI: what the lease waits for, and for whom.
    const waiting = timerSummary(
      (who) => (ev.kind === 'end' ? `wait for the end of the term of ${who}` : ev.kind === 'reclaim' ? `buffer period of ${who}, then reclaim` : `wait for the ${ev.kind.replace(/^reminder-/, '')} reminder to ${who}`),
      input.allocationId,
      ev.at,
    );
    if (delay > 0 && (await condition(() => wake, delay, waiting))) {
      wake = false;
      continue;
    }
    // An Update delivered in the same task as the timer moved what `ev` was computed from.
    if (wake && raceFixed()) {
      wake = false;
      continue;
    }
    wake = false;
    // The timer fired: what follows is the lease's own doing, not the last Update's.
    decided.clear();
    if (ev.kind === 'end' && raceFixed()) {
      const before = changes;
      phase = 'buffer';
      bufferEndsAtMs = endsAtMs + input.bufferMs;
      upsertSearchAttributes([{ key: LifecycleStatusKey, value: 'buffer' }]);
      await db.setAllocationStatus(input.allocationId, 'buffer', { endsAtMs });
      // Extended while the status was written: the end moved, so no final notice for it; the
      // loop's dirty write puts the mirror and the search attribute back to active.
      if (changes !== before) continue;
      noticeInFlight = true;
      try {
        await db.recordLeaseEvent({ allocationId: input.allocationId, kind: 'ended', dueAtMs: ev.at, firedAtMs: Date.now(), endsAtMs, bufferEndsAtMs });
      } finally {
        noticeInFlight = false;
      }
    } else if (ev.kind === 'end') {
      phase = 'buffer';
      bufferEndsAtMs = endsAtMs + input.bufferMs;
      await db.setAllocationStatus(input.allocationId, 'buffer', { endsAtMs });
      await db.recordLeaseEvent({ allocationId: input.allocationId, kind: 'ended', dueAtMs: ev.at, firedAtMs: Date.now(), endsAtMs, bufferEndsAtMs });
      upsertSearchAttributes([{ key: LifecycleStatusKey, value: 'buffer' }]);
    } else if (ev.kind === 'reclaim') {
      phase = 'reclaiming';
    } else {
      const record = patched('lease-local-reminder') ? localDb : db;
      await record.recordLeaseEvent({ allocationId: input.allocationId, kind: ev.kind, dueAtMs: ev.at, firedAtMs: Date.now(), endsAtMs });
      sent.add(ev.kind);
    }
  }

  await decided.run(async () => {
    await db.setAllocationStatus(input.allocationId, 'reclaiming', { endsAtMs, terminateReason });
    upsertSearchAttributes([{ key: LifecycleStatusKey, value: 'reclaiming' }]);
    // Patch `lease-reclaim-memo`: the reclaim gets a human summary and the rental's names in its memo.
    const names = patched('lease-reclaim-memo') ? inheritedMemo(RENTAL_MEMO_FIELDS) : null;
    try {
      await startChild(reclaim, {
        ...(names
          ? childRunSummary(`Reclaim of ${names.host ?? `host ${input.hostId}`}${names.customer ? ` from ${names.customer}` : ''}${names.username ? ` (account ${names.username})` : ''}${terminateReason ? ': terminated' : ''}`, { ...names, allocationId: input.allocationId })
          : {}),
        workflowId: `reclaim/${input.allocationId}`,
        args: [{ allocationId: input.allocationId, hostId: input.hostId, graceMs: input.graceMs }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        typedSearchAttributes: [
          { key: HostIdKey, value: input.hostId },
          { key: CustomerIdKey, value: input.customerId },
          { key: LifecycleStatusKey, value: 'reclaiming' },
        ],
      });
    } catch (err) {
      // An admin already started the reclaim through the API: nothing more to do.
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  });
  await condition(allHandlersFinished);
  return state();
}

const forbidden = (message: string) => ApplicationFailure.create({ type: 'Forbidden', message });
const invalid = (message: string) => ApplicationFailure.create({ type: 'Invalid', message });
const notActive = (message: string) => ApplicationFailure.create({ type: 'NotPending', message });
