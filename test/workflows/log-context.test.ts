// Log context against the real Temporal dev server and a real sshd: worker lines (the SDK's
// workflow and activity loggers through the Runtime logger, and the platform's own pino lines
// written inside an activity) carry workflow id, run id, activity type and attempt; API lines carry
// the request id, which also lands in the memo of the workflow the request started, next to the
// human summary.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createLogger } from '../../config/logger.js';
import { installWorkerRuntime } from '../../worker/create-worker.js';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startSshd, type SshTestHost } from '../helpers/sshd.js';

type Line = Record<string, unknown> & { msg: string };
const lines: Line[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Line);
    done();
  },
});
const logger = createLogger({ level: 'debug', destination: sink });
// First install wins (once per process): the platform's own call then keeps this logger.
installWorkerRuntime('WARN', { logger });

describe('log context: request id on API lines and in memos, run and activity on worker lines', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  beforeAll(async () => {
    [p, sshd] = await Promise.all([startTestPlatform({ logger }), startSshd()]);
  });
  afterAll(async () => {
    await p?.close();
    await sshd?.stop();
  });

  it('a ping: its request id in the API line and the run memo (with the summary); workflow and activity lines carry the run', async () => {
    const h = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: 'log-host', address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
    expect(h.status).toBe(201);
    const hostId = h.body.data.id as string;
    const requestId = `req-log-${Date.now()}`;
    const res = await fetch(`${p.baseUrl}/api/v1/hosts/${hostId}/ping`, { method: 'POST', headers: { authorization: `Bearer ${p.tokens.admin}`, 'x-request-id': requestId } });
    const body = (await res.json()) as { data: { reachable: boolean; workflow_id: string; run_id: string } };
    expect(body.data.reachable).toBe(true);
    const { workflow_id: workflowId, run_id: runId } = body.data;

    // The memo (decrypted by the client's codec): request id and the human summary.
    const desc = await p.client.workflow.getHandle(workflowId).describe();
    expect(desc.memo).toMatchObject({ requestId, summary: 'Ping log-host' });
    // Stored encrypted: the raw memo payload is not JSON with the request id in it.
    const raw = await p.client.workflowService.describeWorkflowExecution({ namespace: 'default', execution: { workflowId } });
    const rawMemo = raw.workflowExecutionInfo?.memo?.fields?.requestId;
    expect(rawMemo?.metadata?.encoding && Buffer.from(rawMemo.metadata.encoding).toString()).toBe('binary/encrypted');
    expect(Buffer.from(rawMemo!.data!).toString('latin1')).not.toContain(requestId);

    const deadline = Date.now() + 10_000;
    const find = (f: (l: Line) => boolean) => lines.find(f);
    while (Date.now() < deadline && !find((l) => l.msg === 'Activity completed' && l.activityType === 'markHostSeen' && l.workflowId === workflowId)) await new Promise((r) => setTimeout(r, 100));

    // The API's request line carries the request id (the request's async context).
    const api = find((l) => l.msg === 'request' && l.route === '/api/v1/hosts/:id/ping' && l.requestId === requestId);
    expect(api, 'API request line with the request id').toBeTruthy();
    expect(api).toMatchObject({ method: 'POST', status: 200 });

    // A platform line written inside the activity (the SSH executor pinning the host key).
    const pinned = find((l) => l.msg === 'pinned SSH host key on first contact' && l.hostId === hostId);
    expect(pinned).toMatchObject({ workflowId, runId, workflowType: 'hostPing', activityType: 'pingHost', attempt: 1 });

    // The SDK's activity logger (Runtime logger → pino).
    const act = find((l) => l.msg === 'Activity completed' && l.activityType === 'pingHost' && l.workflowId === workflowId);
    expect(act).toMatchObject({ name: 'temporal', workflowId, workflowRunId: runId, attempt: 1 });
    // The SDK's workflow logger (sink → Runtime logger → pino).
    const wf = find((l) => l.workflowId === workflowId && l.workflowType === 'hostPing' && l.sdkComponent === 'workflow' || (l.workflowId === workflowId && l.msg === 'Workflow completed'));
    expect(wf, `a workflow line of ${workflowId}; saw: ${lines.filter((l) => l.workflowId === workflowId).map((l) => l.msg).join(' | ')}`).toMatchObject({ workflowId, runId });
    // The task token (an opaque blob) is not logged.
    expect(lines.some((l) => 'taskToken' in l)).toBe(false);
  });
});
