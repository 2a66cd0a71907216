// Operational queries and actions on workflow runs (`hostflow runs …`), as plain functions over a
// Temporal client so tests call them against the real dev server as the CLI does.
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { AesGcmPayloadCodec } from '../config/payload-codec.js';
import type { Keyring } from '../db/vault.js';

type Failure = temporal.api.failure.v1.IFailure;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** A failure's message: the platform's failure converter moves it into encrypted attributes. */
export async function failureMessage(f: Failure | null | undefined, ring: Keyring): Promise<string | null> {
  if (!f) return null;
  let message = f.message ?? '';
  if (f.encodedAttributes) {
    try {
      const [p] = await new AesGcmPayloadCodec(ring).decode([f.encodedAttributes as Payload]);
      const attrs = defaultPayloadConverter.fromPayload<{ message?: string }>(p!);
      if (attrs?.message) message = attrs.message;
    } catch {
      // keep the outer message
    }
  }
  const type = f.applicationFailureInfo?.type;
  return `${type ? `${type}: ` : ''}${message}`.slice(0, 300);
}

const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined): number | null => (t?.seconds != null ? Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : null);

export interface StuckRun {
  workflowId: string;
  runId: string;
  workflowType: string;
  reason: 'activity-retrying' | 'activity-pending' | 'timer-overdue';
  /** Activity type, or the timer's id. */
  what: string;
  attempt: number | null;
  /** Since when it waits (activity scheduled / timer due). */
  since: string | null;
  lastFailure: string | null;
  /** What the numbers mean (timers: fired but not run, or not fired by the server). */
  detail?: string;
}

export interface StuckOptions {
  /** Activities at this attempt or later count as stuck (default 3). */
  minAttempts?: number;
  /** Activities pending this long count as stuck whatever the attempt (default 30 min). */
  pendingMs?: number;
  /** Timers this far past their due time count as overdue (default 2 min). */
  timerGraceMs?: number;
  /** Look at most at this many running workflows (default 500). */
  limit?: number;
  /** A visibility query narrowing the running workflows (`WorkflowType = "lease"`). */
  query?: string;
  now?: number;
}

/** Running workflows whose pending activities retry or wait too long, or whose next timer is overdue (no worker?). */
export async function findStuckRuns(client: Client, ring: Keyring, o: StuckOptions = {}): Promise<StuckRun[]> {
  const minAttempts = o.minAttempts ?? 3;
  const pendingMs = o.pendingMs ?? 30 * 60_000;
  const grace = o.timerGraceMs ?? 2 * 60_000;
  const now = o.now ?? Date.now();
  const out: StuckRun[] = [];
  let seen = 0;
  const query = `ExecutionStatus = "Running"${o.query ? ` AND (${o.query})` : ''}`;
  for await (const wf of client.workflow.list({ query })) {
    if (++seen > (o.limit ?? 500)) break;
    const handle = client.workflow.getHandle(wf.workflowId, wf.runId);
    const d = await handle.describe();
    for (const a of d.raw.pendingActivities ?? []) {
      const scheduled = ms(a.scheduledTime) ?? ms(a.lastStartedTime);
      const attempt = a.attempt ?? 1;
      const retrying = attempt >= minAttempts;
      const waiting = scheduled !== null && now - scheduled > pendingMs;
      if (!retrying && !waiting) continue;
      out.push({
        workflowId: wf.workflowId,
        runId: wf.runId,
        workflowType: wf.type,
        reason: retrying ? 'activity-retrying' : 'activity-pending',
        what: a.activityType?.name ?? '?',
        attempt,
        since: scheduled ? new Date(scheduled).toISOString() : null,
        lastFailure: await failureMessage(a.lastFailure, ring),
      });
    }
    // Timers. The server fires a timer whether or not a worker runs (TimerFired, then a workflow
    // task), so a worker that is down when a timer falls due leaves a fired timer that no workflow
    // task has processed: that is the overdue timer (the reminder, the lease's end did not happen).
    // Also reported: a timer started and not fired long after its due time (the server is behind).
    const open = new Map<string, { due: number }>();
    let unprocessed: Array<{ timerId: string; due: number; fired: number }> = [];
    let taskFailure: Failure | null = null;
    for (const e of (await handle.fetchHistory()).events ?? []) {
      const ev = e as HistoryEvent;
      if (ev.timerStartedEventAttributes) {
        const t = ev.timerStartedEventAttributes;
        open.set(t.timerId!, { due: ms(ev.eventTime)! + (ms(t.startToFireTimeout) ?? 0) });
      } else if (ev.timerFiredEventAttributes) {
        const id = ev.timerFiredEventAttributes.timerId!;
        const fired = ms(ev.eventTime)!;
        unprocessed.push({ timerId: id, due: open.get(id)?.due ?? fired, fired });
        open.delete(id);
      } else if (ev.timerCanceledEventAttributes) open.delete(ev.timerCanceledEventAttributes.timerId!);
      else if (ev.workflowTaskCompletedEventAttributes) {
        // The workflow code has seen everything before this event.
        unprocessed = [];
        taskFailure = null;
      } else if (ev.workflowTaskFailedEventAttributes) taskFailure = ev.workflowTaskFailedEventAttributes.failure ?? null;
    }
    for (const [timerId, t] of open) {
      if (now - t.due <= grace) continue;
      out.push({ workflowId: wf.workflowId, runId: wf.runId, workflowType: wf.type, reason: 'timer-overdue', what: `timer ${timerId}`, attempt: null, since: new Date(t.due).toISOString(), lastFailure: null, detail: 'due and not fired by the server yet (is the Temporal server overloaded?)' });
    }
    const taskQueue = d.taskQueue;
    for (const t of unprocessed) {
      if (now - t.fired <= grace) continue;
      out.push({
        workflowId: wf.workflowId,
        runId: wf.runId,
        workflowType: wf.type,
        reason: 'timer-overdue',
        what: `timer ${t.timerId}`,
        attempt: null,
        since: new Date(t.due).toISOString(),
        lastFailure: await failureMessage(taskFailure, ring),
        detail: taskFailure
          ? `fired ${new Date(t.fired).toISOString()}; the workflow task that should run it fails (see last failure)`
          : `fired ${new Date(t.fired).toISOString()}; no workflow task has run since: is a worker polling task queue "${taskQueue}"?`,
      });
    }
  }
  return out;
}

export type ResetPoint = 'last-good-step' | 'first-task' | 'last-task';

/**
 * The WorkflowTaskCompleted event a reset goes back to. `last-good-step`: the last completed
 * workflow task before the activity that failed last was scheduled, so that step runs again
 * (activities are check-then-act: what it already did is not done twice). `first-task`: the very
 * first workflow task (the run starts over with the same input). `last-task`: the last completed one.
 */
export function resetEventId(events: HistoryEvent[], to: ResetPoint): { eventId: number; why: string } {
  const completed = events.filter((e) => e.workflowTaskCompletedEventAttributes).map((e) => Number(e.eventId));
  if (!completed.length) throw new Error('the run has no completed workflow task to reset to');
  if (to === 'first-task') return { eventId: completed[0]!, why: 'the first workflow task' };
  if (to === 'last-task') return { eventId: completed.at(-1)!, why: 'the last completed workflow task' };
  const failed = [...events].reverse().find((e) => e.activityTaskFailedEventAttributes || e.activityTaskTimedOutEventAttributes);
  if (!failed) throw new Error('no failed activity in this run: nothing for last-good-step to re-run (use --to last-task or first-task)');
  const scheduledId = Number((failed.activityTaskFailedEventAttributes ?? failed.activityTaskTimedOutEventAttributes)!.scheduledEventId);
  const before = completed.filter((id) => id < scheduledId);
  if (!before.length) throw new Error('the failed activity was scheduled by the first workflow task: use --to first-task');
  const scheduled = events.find((e) => Number(e.eventId) === scheduledId);
  return { eventId: before.at(-1)!, why: `before ${scheduled?.activityTaskScheduledEventAttributes?.activityType?.name ?? 'the failed activity'} (event ${scheduledId}) was scheduled` };
}

/** Resets a closed or running run to `to`; returns the new run id. */
export async function resetRun(client: Client, workflowId: string, o: { to: ResetPoint; reason: string; runId?: string }): Promise<{ runId: string; fromRunId: string; eventId: number; why: string }> {
  const handle = client.workflow.getHandle(workflowId, o.runId);
  const d = await handle.describe();
  const history = await handle.fetchHistory();
  const point = resetEventId(history.events ?? [], o.to);
  const r: { runId?: string | null } = await client.workflowService.resetWorkflowExecution({
    namespace: client.options.namespace,
    workflowExecution: { workflowId, runId: d.runId },
    reason: o.reason,
    workflowTaskFinishEventId: point.eventId as never, // protobufjs takes a number for an int64
    requestId: randomUUID(),
  });
  return { runId: r.runId!, fromRunId: d.runId, eventId: point.eventId, why: point.why };
}
