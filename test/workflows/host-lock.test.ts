// host-lock/<hostId> lets go by itself when its allocation no longer holds the host (a lost
// release signal): within minutes, not after a day. Time-skipping server (Java) with the real
// workflow bundle; the one activity is a plain function here (it answers "still held" once, then
// "not held", which is what the DB activity answers once the allocation row reached a final status).
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createTimeSkippingEnv } from '../helpers/time-skipping.js';
import type { hostLock } from '../../workflows/host-lock.workflow.js';
import { testDataConverter } from '../helpers/temporal.js';

describe('host-lock: a lost release does not block the host for a day', () => {
  let env: TestWorkflowEnvironment | undefined;
  beforeAll(async () => {
    env = await createTimeSkippingEnv();
  }, 120_000);
  afterAll(async () => {
    await env?.teardown();
  }, 60_000);

  it('re-checks after 5 minutes, then every 10 minutes, and releases itself once the allocation is over', async () => {
    const e = env!;
    const taskQueue = `host-lock-${randomUUID()}`;
    const calls: number[] = [];
    const worker = await Worker.create({ dataConverter: testDataConverter(),
      connection: e.nativeConnection,
      namespace: e.namespace ?? 'default',
      taskQueue,
      workflowBundle: { codePath: inject('workflowBundlePath') },
      activities: {
        allocationHoldsHost: async () => {
          calls.push(Date.now());
          return calls.length < 2;
        },
      },
    });
    const workflowId = `host-lock/${randomUUID()}`;
    const result = await worker.runUntil(e.client.workflow.execute<typeof hostLock>('hostLock', { taskQueue, workflowId, args: [{ hostId: 'h', allocationId: randomUUID() }] }));
    const d = await e.client.workflow.getHandle(workflowId).describe();
    const elapsedMin = (d.closeTime!.getTime() - d.startTime.getTime()) / 60_000;
    expect(result.releasedBy).toBe('stale');
    expect(calls).toHaveLength(2);
    // 5 minutes + 10 minutes (it was 5 minutes + 1 day).
    expect(elapsedMin).toBeGreaterThanOrEqual(15);
    expect(elapsedMin).toBeLessThan(60);
  }, 90_000);
});
