// Ensuring the platform's Schedules on a real Temporal dev server, including the restart case CI
// met: the schedule exists, and describing it (which `update` does first) fails for a while with
// a transient gRPC error. The failures are injected on the client side of a real connection (the
// server cannot be made to time out its scheduler query on demand); everything else is real.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { Connection, type Client } from '@temporalio/client';
import { testClient } from '../helpers/temporal.js';
import { upsertSchedule } from '../../worker/schedules.js';

const grpcStatus = { UNAVAILABLE: 14, DEADLINE_EXCEEDED: 4, PERMISSION_DENIED: 7 } as const;

const action = (taskQueue: string, days: number) => ({
  type: 'startWorkflow' as const,
  workflowType: 'auditArchive',
  args: [{ retentionDays: days }],
  taskQueue,
  workflowExecutionTimeout: '2 hours' as const,
});

/** The same connection, with `describeSchedule` failing `failures` times with `code` first. */
function flakyDescribe(connection: Connection, failures: number, code: number): { conn: Connection; calls: () => number } {
  let calls = 0;
  const svc = new Proxy(connection.workflowService, {
    get(target, prop, receiver) {
      const real = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== 'describeSchedule' || typeof real !== 'function') return real;
      return async (...args: unknown[]) => {
        calls++;
        if (calls <= failures) throw Object.assign(new Error(`${code} injected: query timed out`), { code, details: 'injected', metadata: { get: () => [] } });
        return (real as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
  const conn = new Proxy(connection, { get: (t, p, r) => (p === 'workflowService' ? svc : Reflect.get(t, p, r)) });
  return { conn, calls: () => calls };
}

describe('upsertSchedule (real Temporal dev server)', () => {
  let connection: Connection;
  let client: Client;
  const taskQueue = `schedules-${randomUUID()}`;
  const ids: string[] = [];

  beforeAll(async () => {
    connection = await Connection.connect({ address: inject('temporalAddress') });
    client = testClient(connection);
  });
  afterAll(async () => {
    for (const id of ids) await client.schedule.getHandle(id).delete().catch(() => undefined);
    await connection?.close();
  });

  it('creates an absent schedule, then updates it in place when the settings change', async () => {
    const scheduleId = `sched-${randomUUID()}`;
    ids.push(scheduleId);
    await upsertSchedule(client, { scheduleId, spec: { intervals: [{ every: '1d' }] }, action: action(taskQueue, 30), catchupWindow: '1 hour' });
    await upsertSchedule(client, { scheduleId, spec: { intervals: [{ every: '2d' }] }, action: action(taskQueue, 90), catchupWindow: '1 hour' });
    const d = await client.schedule.getHandle(scheduleId).describe();
    expect(d.spec.intervals?.[0]?.every).toBe(2 * 86_400_000);
    expect(d.action.type === 'startWorkflow' && d.action.args).toEqual([{ retentionDays: 90 }]);
  });

  it('rides out transient describe failures on restart (the CI case), saying so in the log', async () => {
    const scheduleId = `sched-${randomUUID()}`;
    ids.push(scheduleId);
    await upsertSchedule(client, { scheduleId, spec: { intervals: [{ every: '1d' }] }, action: action(taskQueue, 30), catchupWindow: '1 hour' });
    const flaky = flakyDescribe(connection, 2, grpcStatus.DEADLINE_EXCEEDED);
    const warnings: object[] = [];
    await upsertSchedule(testClient(flaky.conn), {
      scheduleId,
      spec: { intervals: [{ every: '3d' }] },
      action: action(taskQueue, 7),
      catchupWindow: '1 hour',
      log: { warn: (obj) => warnings.push(obj) },
    });
    expect(flaky.calls()).toBe(3);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatchObject({ scheduleId, attempt: 1, err: 'Failed to describe schedule' });
    const d = await client.schedule.getHandle(scheduleId).describe();
    expect(d.action.type === 'startWorkflow' && d.action.args).toEqual([{ retentionDays: 7 }]);
  });

  it('gives up after its retry window with the schedule and the gRPC cause in the message', async () => {
    const scheduleId = `sched-${randomUUID()}`;
    ids.push(scheduleId);
    await upsertSchedule(client, { scheduleId, spec: { intervals: [{ every: '1d' }] }, action: action(taskQueue, 30), catchupWindow: '1 hour' });
    const flaky = flakyDescribe(connection, 1_000, grpcStatus.UNAVAILABLE);
    await expect(
      upsertSchedule(testClient(flaky.conn), { scheduleId, spec: { intervals: [{ every: '3d' }] }, action: action(taskQueue, 7), catchupWindow: '1 hour', retryForMs: 1_500 }),
    ).rejects.toThrow(new RegExp(`schedule ${scheduleId}: Failed to describe schedule \\(14 injected: query timed out\\)`));
    expect(flaky.calls()).toBeGreaterThanOrEqual(2);
  });

  it('does not retry what a retry cannot fix (permission denied)', async () => {
    const scheduleId = `sched-${randomUUID()}`;
    ids.push(scheduleId);
    await upsertSchedule(client, { scheduleId, spec: { intervals: [{ every: '1d' }] }, action: action(taskQueue, 30), catchupWindow: '1 hour' });
    const flaky = flakyDescribe(connection, 1_000, grpcStatus.PERMISSION_DENIED);
    await expect(
      upsertSchedule(testClient(flaky.conn), { scheduleId, spec: { intervals: [{ every: '3d' }] }, action: action(taskQueue, 7), catchupWindow: '1 hour' }),
    ).rejects.toThrow(/Failed to describe schedule/);
    expect(flaky.calls()).toBe(1);
  });
});
