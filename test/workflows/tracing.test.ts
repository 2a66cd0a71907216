// OpenTelemetry end to end against the real Temporal dev server and a real sshd: spans from the
// HTTP request, the Temporal client, the workflow isolate (through the exporter sink), the
// activity and the SSH command land in one in-memory exporter and form one connected tree.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { installTracing } from '../../config/tracing.js';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startSshd, sshExec, type SshTestHost } from '../helpers/sshd.js';
import { AllocationSchema, CustomerSchema, HostSchema, UserSchema } from '../../db/entities/index.js';

// Installed before any client or worker exists, as openRuntime does in the processes.
const exporter = new InMemorySpanExporter();
installTracing({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

/** Waits until a span named `name` (prefix match with `*`) of trace `traceId` (any when unset) is exported. */
async function waitForSpan(match: (s: ReadableSpan) => boolean, what: string, ms = 20_000): Promise<ReadableSpan> {
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = exporter.getFinishedSpans().find(match);
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`no span ${what}; have: ${exporter.getFinishedSpans().map((s) => s.name).join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The chain of span names from `leaf` up to the trace's root. */
function ancestry(leaf: ReadableSpan): string[] {
  const byId = new Map(exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === leaf.spanContext().traceId).map((s) => [s.spanContext().spanId, s]));
  const out: string[] = [];
  for (let s: ReadableSpan | undefined = leaf; s; s = parentOf(s) ? byId.get(parentOf(s)!) : undefined) out.push(s.name);
  return out;
}

/**
 * The chain from `leaf` once it reaches `root`: a workflow's StartActivity span ends (and leaves the
 * isolate) only after the activity's result is back in the workflow, later than the RunActivity span.
 */
async function chainTo(leaf: ReadableSpan, root: string, ms = 20_000): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const chain = ancestry(leaf);
    if (chain.at(-1) === root) return chain;
    if (Date.now() > deadline) return chain; // the assertion after it names what is missing
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('tracing: one trace from the API request through workflow, activity and SSH command', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  let hostId: string;
  const created: string[] = [];
  beforeAll(async () => {
    [p, sshd] = await Promise.all([startTestPlatform(), startSshd()]);
    const h = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: 'trace-host', address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey, account_policy: { allow_admin: true, privileged_by: 'anyone' } } });
    expect(h.status, JSON.stringify(h.body)).toBe(201);
    hostId = h.body.data.id;
  });
  afterAll(async () => {
    for (const u of created) await sshExec(sshd, `sudo -n pkill -KILL -u ${u}; sudo -n userdel -r -f ${u}; sudo -n rm -f /var/lib/hostflow/accounts/${u}`).catch(() => undefined);
    await p?.close();
    await sshd?.stop();
  });

  it('POST /hosts/:id/ping → StartWorkflow → RunWorkflow → StartActivity → RunActivity → remote.exec, continuing the caller\'s traceparent', async () => {
    const callerTrace = randomBytes(16).toString('hex');
    const callerSpan = randomBytes(8).toString('hex');
    const res = await fetch(`${p.baseUrl}/api/v1/hosts/${hostId}/ping`, { method: 'POST', headers: { authorization: `Bearer ${p.tokens.admin}`, traceparent: `00-${callerTrace}-${callerSpan}-01` } });
    const body = (await res.json()) as { data: { reachable: boolean; workflow_id: string } };
    expect(body.data.reachable).toBe(true);

    const inTrace = (s: ReadableSpan) => s.spanContext().traceId === callerTrace;
    const ssh = await waitForSpan((s) => inTrace(s) && s.name.startsWith('remote.exec '), 'remote.exec in the caller trace');
    expect(ssh.attributes).toMatchObject({ 'hostflow.host_id': hostId, 'hostflow.remote.protocol': 'ssh', 'hostflow.command.exit_code': 0 });
    // No command text or argument anywhere on the span.
    expect(Object.keys(ssh.attributes).sort()).toEqual(['hostflow.command.builder', 'hostflow.command.exit_code', 'hostflow.host_id', 'hostflow.remote.protocol']);
    await waitForSpan((s) => inTrace(s) && s.name === 'RunWorkflow:hostPing', 'RunWorkflow:hostPing');
    expect(ancestry(ssh)).toEqual([ssh.name, 'RunActivity:pingHost', 'StartActivity:pingHost', 'RunWorkflow:hostPing', 'StartWorkflow:hostPing', 'POST /api/v1/hosts/:id/ping']);
    const http = await waitForSpan((s) => inTrace(s) && s.name === 'POST /api/v1/hosts/:id/ping', 'http span');
    expect(parentOf(http)).toBe(callerSpan);
    expect(http.attributes).toMatchObject({ 'http.route': '/api/v1/hosts/:id/ping', 'http.response.status_code': 200 });
    // The later activity of the same run is in the trace too, under the same workflow span.
    const seen = await waitForSpan((s) => inTrace(s) && s.name === 'RunActivity:markHostSeen', 'RunActivity:markHostSeen');
    expect(ancestry(seen).slice(1)).toEqual(['StartActivity:markHostSeen', 'RunWorkflow:hostPing', 'StartWorkflow:hostPing', 'POST /api/v1/hosts/:id/ping']);
    const run = exporter.getFinishedSpans().find((s) => inTrace(s) && s.name === 'RunWorkflow:hostPing')!;
    expect(run.attributes).toMatchObject({ workflowId: body.data.workflow_id });
  });

  it('POST /account-openings/:id/approve → StartWorkflowUpdate → HandleUpdate → provisionAccount → the useradd command: one trace, the approval\'s', async () => {
    expect((await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'onboarding' } })).status).toBe(200);
    expect((await p.api('POST', `/api/v1/hosts/${hostId}/status`, { body: { status: 'online' } })).status).toBe(200);
    const username = `tr${randomBytes(3).toString('hex')}`;
    created.push(username);
    const sub = await p.api('POST', '/api/v1/account-openings', { token: p.tokens.requester, body: { host_id: hostId, username, full_name: 'Trace User', contact_email: 'trace@example.com' } });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const id = sub.body.data.id as string;
    // The approver's own trace (a caller's traceparent), so the trace is told apart from the submit's.
    const approvalTrace = randomBytes(16).toString('hex');
    const callerSpan = randomBytes(8).toString('hex');
    const ok = await fetch(`${p.baseUrl}/api/v1/account-openings/${id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${p.tokens.approver}`, 'content-type': 'application/json', traceparent: `00-${approvalTrace}-${callerSpan}-01` }, body: '{}' });
    expect(ok.status, await ok.clone().text()).toBe(200);
    const inApproval = (s: ReadableSpan) => s.spanContext().traceId === approvalTrace;

    const handleUpdate = await waitForSpan((s) => inApproval(s) && s.name === 'HandleUpdate:approve', 'HandleUpdate:approve in the approval trace');
    expect(handleUpdate.attributes.workflowId).toBe(`account-opening/${id}`);
    const chain = ancestry(handleUpdate);
    expect(chain[0]).toBe('HandleUpdate:approve');
    expect(chain).toContain('StartWorkflowUpdate:approve');
    expect(chain.at(-1)).toBe('POST /api/v1/account-openings/:id/approve');

    // The account is created after the Update returned, in the run's main body: its activity and
    // its SSH command are in the approval's trace, under the HandleUpdate span.
    const useradd = await waitForSpan((s) => inApproval(s) && s.name.startsWith('remote.exec ') && s.attributes['hostflow.command.builder'] === 'hostflow-create-user', 'the useradd command span in the approval trace', 45_000);
    expect(useradd.attributes).toMatchObject({ 'hostflow.host_id': hostId, 'hostflow.remote.protocol': 'ssh', 'hostflow.command.exit_code': 0 });
    // Host id, builder name, exit code: no command text, argument (the username) or output.
    expect(Object.keys(useradd.attributes).sort()).toEqual(['hostflow.command.builder', 'hostflow.command.exit_code', 'hostflow.host_id', 'hostflow.remote.protocol']);
    expect(JSON.stringify(useradd.attributes)).not.toContain(username);
    const fromUseradd = await chainTo(useradd, 'POST /api/v1/account-openings/:id/approve');
    expect(fromUseradd.slice(0, 4)).toEqual([useradd.name, 'RunActivity:provisionAccount', 'StartActivity:provisionAccount', 'HandleUpdate:approve']);
    expect(fromUseradd.slice(3)).toEqual(chain);
    const http = exporter.getFinishedSpans().find((s) => inApproval(s) && s.name === 'POST /api/v1/account-openings/:id/approve')!;
    expect(parentOf(http)).toBe(callerSpan);
    // The login check after it too; and none of the provisioning is left in the submit's trace
    // (which keeps its own commands: the submit checks whether the username exists on the host).
    const verify = await waitForSpan((s) => inApproval(s) && s.name === 'RunActivity:verifyAccountLogin', 'RunActivity:verifyAccountLogin in the approval trace', 45_000);
    expect((await chainTo(verify, 'POST /api/v1/account-openings/:id/approve')).slice(1, 3)).toEqual(['StartActivity:verifyAccountLogin', 'HandleUpdate:approve']);
    const submit = exporter.getFinishedSpans().find((s) => s.name === 'POST /api/v1/account-openings');
    expect(submit, 'the submit request has its own trace').toBeDefined();
    const submitTrace = submit!.spanContext().traceId;
    expect(submitTrace).not.toBe(approvalTrace);
    const leftInSubmit = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === submitTrace && (s.attributes['hostflow.command.builder'] === 'hostflow-create-user' || s.name.endsWith(':provisionAccount') || s.name.endsWith(':verifyAccountLogin')));
    expect(leftInSubmit.map((s) => s.name)).toEqual([]);
  });
  it('POST /allocations/:id/extend → HandleUpdate:extend → the lease\'s status write, in the extension\'s trace (not the lease run\'s)', async () => {
    const em = p.db.em.fork();
    const customerId = em.create(CustomerSchema, { name: 'Trace Co', code: `t${randomBytes(3).toString('hex')}` }).id;
    const userId = em.create(UserSchema, { username: `trl-${randomBytes(3).toString('hex')}`, email: 'trl@trace.test', roles: ['customer_member'], customerId }).id;
    const h = em.create(HostSchema, { slug: `trl-${randomBytes(4).toString('hex')}`, name: 'trace lease box', address: '127.0.0.1', port: 1, os: 'linux', username: 'x', status: 'online' });
    const now = Date.now();
    const endsAtMs = now + 3_600_000;
    const a = em.create(AllocationSchema, { host: h, customer: customerId, customerUser: userId, osUsername: 'trl', startsAt: new Date(now), endsAt: new Date(endsAtMs), bufferSeconds: 3600, graceSeconds: 60, status: 'active', createdBy: 'test' });
    await em.flush();
    const run = await p.client.workflow.start('lease', { workflowId: `lease/${a.id}`, taskQueue: p.taskQueue, args: [{ allocationId: a.id, hostId: h.id, customerId, endsAtMs, bufferMs: 3_600_000, graceMs: 60_000, reminderOffsetsMinutes: [1] }] });
    try {
      const extendTrace = randomBytes(16).toString('hex');
      const res = await fetch(`${p.baseUrl}/api/v1/allocations/${a.id}/extend`, {
        method: 'POST',
        headers: { authorization: `Bearer ${p.tokens.admin}`, 'content-type': 'application/json', traceparent: `00-${extendTrace}-${randomBytes(8).toString('hex')}-01` },
        body: JSON.stringify({ ends_at: new Date(endsAtMs + 86_400_000).toISOString() }),
      });
      expect(res.status, await res.clone().text()).toBe(200);
      const write = await waitForSpan((s) => s.spanContext().traceId === extendTrace && s.name === 'RunActivity:setAllocationStatus', 'the status write in the extension trace');
      const chain = await chainTo(write, 'POST /api/v1/allocations/:id/extend');
      expect(chain.slice(0, 3)).toEqual(['RunActivity:setAllocationStatus', 'StartActivity:setAllocationStatus', 'HandleUpdate:extend']);
      expect(chain).toContain('StartWorkflowUpdate:extend');
      expect(chain.at(-1)).toBe('POST /api/v1/allocations/:id/extend');
    } finally {
      await run.terminate('trace test done');
    }
  });
});
