import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createTimeSkippingEnv } from '../helpers/time-skipping.js';
import { sleepFor, type SleepForResult } from '../fixtures/workflows/sleep.workflow.js';
import { testDataConverter } from '../helpers/temporal.js';

const FIXTURE_WORKFLOWS_PATH = fileURLToPath(new URL('../fixtures/workflows/index.ts', import.meta.url));
const DAY_MS = 24 * 60 * 60 * 1000;

describe('time-skipping test server (Java, from Maven Central)', () => {
  let env: TestWorkflowEnvironment | undefined;

  beforeAll(async () => {
    env = await createTimeSkippingEnv();
  }, 120_000);

  afterAll(async () => {
    await env?.teardown();
  }, 60_000);

  it('skips a 30-day workflow sleep in well under 30 s of wall time', async () => {
    if (!env) throw new Error('test environment was not created');
    const testEnv = env;
    const taskQueue = `time-skipping-${randomUUID()}`;
    const worker = await Worker.create({ dataConverter: testDataConverter(),
      connection: testEnv.nativeConnection,
      namespace: testEnv.namespace ?? 'default',
      taskQueue,
      workflowsPath: FIXTURE_WORKFLOWS_PATH,
    });

    const started = performance.now();
    const raw = await worker.runUntil(
      testEnv.client.workflow.execute(sleepFor, {
        args: [30],
        taskQueue,
        workflowId: `sleep-for-${randomUUID()}`,
      }),
    );
    const wallMs = performance.now() - started;

    expect(typeof raw).toBe('string');
    const result = JSON.parse(raw) as SleepForResult;
    expect(result.days).toBe(30);
    expect(result.after - result.before).toBeGreaterThanOrEqual(30 * DAY_MS);
    expect(Number.isNaN(Date.parse(result.startTime))).toBe(false);
    expect(wallMs).toBeLessThan(30_000);
  }, 60_000);
});
