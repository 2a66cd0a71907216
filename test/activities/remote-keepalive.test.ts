// Remote commands inside activities: the executor heartbeats while a command runs, and stops the
// command's process group on the host when the activity is cancelled or times out. Real Temporal
// dev server, real sshd, a real worker built by createWorker (with its activity interceptor).
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { randomInt, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { NativeConnection, bundleWorkflowCode, type Worker } from '@temporalio/worker';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startSshd, sshExec, type SshTestHost } from '../helpers/sshd.js';
import { createWorker, installWorkerRuntime } from '../../worker/create-worker.js';
import { FAILURE_CONVERTER_PATH } from '../../config/temporal.js';
import { testDataConverter } from '../helpers/temporal.js';
import type { Payload } from '@temporalio/common';
import type { Activities } from '../../activities/index.js';
import type { RemoteCommandInput } from '../fixtures/workflows/remote-command.workflow.js';
import { killProcessGroupScript, withPgidReport } from '../../activities/ssh/ssh-executor.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/workflows/index.ts', import.meta.url));

describe('remote commands in activities (real sshd, real Temporal)', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  let worker: Worker;
  let running: Promise<void>;
  let connection: NativeConnection;
  let hostId: string;
  const taskQueue = `keepalive-${randomUUID()}`;

  beforeAll(async () => {
    [p, sshd] = await Promise.all([startTestPlatform({ worker: false }), startSshd()]);
    const h = await p.api('POST', '/api/v1/hosts', { body: { name: 'keepalive-host', address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
    hostId = h.body.data.id;
    installWorkerRuntime('WARN');
    connection = await NativeConnection.connect({ address: inject('temporalAddress') });
    const activities = {
      async runRemoteCommand(id: string, command: string, details?: unknown) {
        if (details !== undefined) Context.current().heartbeat(details);
        const r = await p.ssh.exec(id, command);
        return { exitCode: r.exitCode, stdout: r.stdout };
      },
    };
    worker = await createWorker({
      connection,
      namespace: 'default',
      taskQueue,
      activities: activities as unknown as Activities,
      payloadKeys: p.payloadKeys,
      workflowBundle: await bundleWorkflowCode({ workflowsPath: FIXTURES, failureConverterPath: FAILURE_CONVERTER_PATH, logger: { trace() {}, debug() {}, info() {}, warn() {}, log() {}, error: console.error } }),
      shutdownGraceTime: '2s',
    });
    running = worker.run();
  }, 180_000);
  afterAll(async () => {
    worker?.shutdown();
    await running?.catch(() => undefined);
    await connection?.close();
    await p?.close();
    await sshd?.stop();
  });

  const start = (input: Omit<RemoteCommandInput, 'hostId'>) =>
    p.client.workflow.start('remoteCommandFixture', { taskQueue, workflowId: `remote-cmd/${randomUUID()}`, args: [{ hostId, ...input }] });
  // `[s]leep …`: the pattern does not match the shell that runs pgrep (its command line holds the pattern).
  const count = async (pattern: string) => Number((await sshExec(sshd, `pgrep -fc -- '[${pattern[0]}]${pattern.slice(1)}' || true`)).stdout.trim() || '0');
  const waitFor = async (what: string, fn: () => Promise<boolean>, ms: number) => {
    const deadline = Date.now() + ms;
    while (!(await fn())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  it('a quiet command longer than the heartbeat timeout completes, and the activity\'s heartbeat details survive', async () => {
    const h = await start({ command: 'sleep 5; echo finished', details: { done: ['step-a'] }, startToCloseMs: 60_000, heartbeatMs: 1_500, maximumAttempts: 1 });
    // While the command runs, the pending activity still carries the details the activity sent.
    await new Promise((r) => setTimeout(r, 3_000));
    const d = await h.describe();
    const pending = d.raw.pendingActivities?.[0];
    expect(pending?.attempt).toBe(1);
    // Heartbeat details are ciphertext in Temporal (payload codec); decoded they are what was sent.
    const raw = pending?.heartbeatDetails?.payloads?.[0];
    expect(Buffer.from(raw?.metadata?.encoding ?? []).toString()).toBe('binary/encrypted');
    const [plain] = raw ? await testDataConverter().payloadCodecs![0]!.decode([raw as Payload]) : [];
    expect(plain?.data && JSON.parse(Buffer.from(plain.data).toString('utf8'))).toEqual({ done: ['step-a'] });
    const r = await h.result();
    expect(r).toEqual({ exitCode: 0, stdout: 'finished\n' });
  }, 60_000);

  it('a command whose activity times out (start-to-close) leaves no process on the host', async () => {
    const secs = `30.${randomInt(100000, 999999)}`;
    const h = await start({ command: `sleep ${secs}`, startToCloseMs: 3_000, heartbeatMs: 1_000, maximumAttempts: 1 });
    await waitFor('the sleep to start', async () => (await count(`sleep ${secs}`)) === 1, 10_000);
    const err = await h.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    await waitFor('the remote sleep to be killed', async () => (await count(`sleep ${secs}`)) === 0, 10_000);
  }, 60_000);

  it('a command run under sudo is stopped too when its activity times out', async () => {
    const secs = `30.${randomInt(100000, 999999)}`;
    const h = await start({ command: `sudo -n sh -c 'sleep ${secs}; echo late'`, startToCloseMs: 3_000, heartbeatMs: 1_000, maximumAttempts: 1 });
    await waitFor('the sleep to start', async () => (await count(`sleep ${secs}`)) >= 1, 10_000);
    await h.result().catch(() => undefined);
    await waitFor('the remote sudo sleep to be killed', async () => (await count(`sleep ${secs}`)) === 0, 10_000);
  }, 60_000);

  it('cancelling the workflow stops the remote command before the activity reports cancelled', async () => {
    const secs = `30.${randomInt(100000, 999999)}`;
    const h = await start({ command: `sleep ${secs}`, startToCloseMs: 60_000, heartbeatMs: 2_000, maximumAttempts: 1 });
    await waitFor('the sleep to start', async () => (await count(`sleep ${secs}`)) === 1, 10_000);
    await h.cancel();
    expect(await h.result()).toBe('cancelled');
    // WAIT_CANCELLATION_COMPLETED: the activity ended only after the process group was killed.
    expect(await count(`sleep ${secs}`)).toBe(0);
  }, 60_000);

  it('output keeps no trace of the process-group report, and the kill script refuses group 0/1', async () => {
    const r = await p.ssh.exec(hostId, 'echo one; echo two >&2; printf three');
    expect(r).toMatchObject({ exitCode: 0, stdout: 'one\nthree', stderr: 'two\n' });
    expect(withPgidReport('true')).toContain('"$$"');
    expect(() => killProcessGroupScript(1)).toThrow(RangeError);
    expect(() => killProcessGroupScript(0)).toThrow(RangeError);
  });
});
