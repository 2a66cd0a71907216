import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startSshd, sshExec, type SshTestHost } from '../helpers/sshd.js';
import { fileURLToPath } from 'node:url';
import { HostSchema, HostCredentialSchema, NotificationSchema, OnboardingStepSchema } from '../../db/entities/index.js';
import { assertNoSecretsInHistory, captureHistories, inPlaintext, readableRun } from '../helpers/history.js';

const csvEscape = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

describe('host inventory and onboarding (real Temporal, real sshd hosts)', () => {
  let p: TestPlatform;
  let a: SshTestHost;
  let b: SshTestHost;
  let gpu: SshTestHost;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- loosely typed JSON
  const waitBatch = async (batchId: string, onPoll?: (view: any) => void) => {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const r = await p.api('GET', `/api/v1/hosts/onboard/${batchId}`);
      if (r.body.data) onPoll?.(r.body.data);
      if (r.body.data?.done) return r.body.data;
      if (Date.now() > deadline) throw new Error(`batch stuck: ${JSON.stringify(r.body.data)}`);
      await new Promise((res) => setTimeout(res, 300));
    }
  };
  const waitHost = async (id: string, statuses: string[]) => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await p.api('GET', `/api/v1/hosts/${id}/onboarding`);
      if (statuses.includes(r.body.data.host_status) && !r.body.data.steps.some((s: { status: string }) => s.status === 'running')) return r.body.data;
      if (Date.now() > deadline) throw new Error(`host stuck: ${JSON.stringify(r.body.data)}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  };

  beforeAll(async () => {
    // The GPU host: a fake nvidia-smi (real output format) first on PATH for SSH sessions.
    const fakeBin = fileURLToPath(new URL('../fixtures/bin', import.meta.url));
    [p, a, b, gpu] = await Promise.all([
      startTestPlatform(),
      startSshd(),
      startSshd(),
      startSshd({ extraConfig: `SetEnv PATH=${fakeBin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` }),
    ]);
    expect((await p.api('POST', '/api/v1/host-groups', { body: { name: 'gpu-cluster-1' } })).status).toBe(201);
  });
  afterAll(async () => {
    if (process.env.CAPTURE_HISTORIES && p) await captureHistories(p.client, p.taskQueue, 'test/replay/histories');
    await p?.close();
    await a?.stop();
    await b?.stop();
    await gpu?.stop();
  });

  const csvRow = (name: string, h: SshTestHost, extra: Partial<Record<'password' | 'group' | 'tags' | 'port', string>> = {}) =>
    [name, h.host, extra.port ?? String(h.port), 'linux', h.adminUser, extra.password ?? h.adminPassword, extra.group ?? 'gpu-cluster-1', extra.tags ?? 'a100;rack-3', 'true'].map(csvEscape).join(',');
  // Many host records share one test sshd (address + port): say so, or the import is refused.
  const header = 'name,address,port,os,username,password,group,tags,allow_duplicate_address';

  it('CSV import is all-or-nothing: 3 bad rows of 100 import nothing and are all named', async () => {
    const rows = Array.from({ length: 100 }, (_, i) => csvRow(`bulk-${i}`, a));
    rows[10] = csvRow('bulk-10', a, { port: '99999' });
    rows[42] = csvRow('bulk-42', a, { group: 'no-such-group' }).replace('gpu-cluster-1', 'gpu-cluster-1');
    rows[42] = ['bulk-42', 'bad host!', String(a.port), 'linux', a.adminUser, 'x', 'gpu-cluster-1', '', 'true'].join(',');
    rows[77] = ['bulk-77', a.host, String(a.port), 'solaris', a.adminUser, 'x', 'gpu-cluster-1', '', 'true'].join(',');
    const res = await fetch(`${p.baseUrl}/api/v1/hosts/import`, { method: 'POST', headers: { authorization: `Bearer ${p.tokens.admin}`, 'content-type': 'text/csv' }, body: [header, ...rows].join('\n') });
    const body = (await res.json()) as { code: number; message: string; errors: Array<{ field: string }> };
    expect([res.status, body.code]).toEqual([400, 40001]);
    expect(new Set(body.errors.map((e) => e.field.split('.').slice(0, 2).join('.')))).toEqual(new Set(['hosts.10', 'hosts.42', 'hosts.77']));
    expect(body.errors.map((e) => e.field)).toEqual(expect.arrayContaining(['hosts.10.port', 'hosts.42.address', 'hosts.77.os']));
    expect(body.message).toContain('3 of 100');
    expect(await p.db.em.fork().count(HostSchema, {})).toBe(0);
  });

  let ids: string[] = [];
  let badId: string;
  it('imports 21 hosts (CSV), onboards them in one batch: 20 online, the one that refuses auth fails alone', { timeout: 180_000 }, async () => {
    const rows = Array.from({ length: 20 }, (_, i) => csvRow(`node-${String(i).padStart(2, '0')}`, i % 2 ? b : a));
    rows.push(csvRow('node-badauth', a, { password: 'wrong-password' }));
    const res = await fetch(`${p.baseUrl}/api/v1/hosts/import`, { method: 'POST', headers: { authorization: `Bearer ${p.tokens.admin}`, 'content-type': 'text/csv' }, body: [header, ...rows].join('\n') });
    const body = (await res.json()) as { data: { imported: number; ids: string[] } };
    expect(res.status, JSON.stringify(body)).toBe(201);
    expect(body.data.imported).toBe(21);
    ids = body.data.ids.slice(0, 20);
    badId = body.data.ids[20]!;
    const stored = await p.db.em.fork().getConnection().execute('select ciphertext from host_credentials');
    expect(JSON.stringify(stored)).not.toContain(a.adminPassword);

    const started = await p.api('POST', '/api/v1/hosts/onboard', { body: { host_ids: body.data.ids, concurrency: 10, remote_access: { enabled: true, extra_ports: [8888] } } });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    // The console's batch page polls this view: each host in the batch's order with its live
    // steps, the totals matching the hosts' states at every poll.
    type BatchHost = { id: string; slug: string; state: string; current_step: string | null; steps: Array<{ step: string; status: string }>; done_steps: number; error: string | null };
    const states = new Set<string>();
    let midway: BatchHost[] | null = null;
    const result = await waitBatch(started.body.data.batch_id, (v: { pending: number; running: number; online: string[]; failed: unknown[]; hosts: BatchHost[] }) => {
      const count = (st: string) => v.hosts.filter((h) => h.state === st).length;
      expect([count('queued'), count('running'), count('online'), count('failed')]).toEqual([v.pending, v.running, v.online.length, v.failed.length]);
      for (const h of v.hosts) states.add(h.state);
      if (!midway && v.hosts.some((h) => h.state === 'running' && h.steps.some((st) => st.status === 'done'))) midway = v.hosts;
      for (const h of v.hosts.filter((x) => x.state === 'queued')) expect(h.steps).toEqual([]);
    });
    expect(result.online).toHaveLength(20);
    expect(result.failed).toEqual([expect.objectContaining({ hostId: badId, step: 'connect' })]);
    expect(result.hosts.map((h: BatchHost) => h.id)).toEqual(body.data.ids);
    expect(result.hosts.map((h: BatchHost) => h.slug).slice(0, 2)).toEqual(['node-00', 'node-01']);
    for (const h of result.hosts.slice(0, 20) as BatchHost[]) {
      expect(h.state).toBe('online');
      expect(h.current_step).toBe('mark-online');
      expect(h.steps.map((st) => st.step)).toEqual(['connect', 'collect-facts', 'confirm-facts', 'apply-template', 'configure-remote-access', 'verify', 'mark-online']);
      expect(h.steps.every((st) => st.status === 'done' || st.status === 'skipped'), JSON.stringify(h.steps)).toBe(true);
      expect(h.done_steps).toBe(7);
    }
    const badView = result.hosts[20] as BatchHost;
    expect(badView).toMatchObject({ slug: 'node-badauth', state: 'failed', current_step: 'connect' });
    expect(badView.error).toMatch(/authentication ?failed/i);
    // 21 hosts 10 at a time: the polls saw hosts queued and running (one with steps done, mid-way), then finished.
    expect(states).toEqual(new Set(['queued', 'running', 'online', 'failed']));
    expect(midway).not.toBeNull();

    const list = await p.api('GET', '/api/v1/hosts?status=online&group=gpu-cluster-1&tag=a100&page_size=50');
    expect(list.body.data.total).toBe(20);
    const one = (await p.api('GET', `/api/v1/hosts/${ids[0]}`)).body.data;
    expect(one.facts.cpu.cores).toBeGreaterThan(0);
    expect(one.host_key_fingerprint).toBe(a.hostKeyFingerprintSha256);
    const bad = await p.api('GET', `/api/v1/hosts/${badId}/onboarding`);
    expect(bad.body.data.host_status).toBe('failed');
    expect(bad.body.data.steps.find((s: { step: string }) => s.step === 'connect')).toMatchObject({ status: 'failed', error: expect.stringContaining('AuthenticationFailed') });
    expect(bad.body.data.steps.map((s: { step: string; status: string }) => `${s.step}:${s.status}`).sort()).toEqual(['connect:failed']);

    const ra = await p.api('GET', `/api/v1/hosts/${ids[0]}/remote-access`);
    expect(ra.body.data.entries).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ protocol: 'ssh', public_domain: 'node-00.hosts.test', public_port: expect.any(Number), target_port: a.port }),
        expect.objectContaining({ protocol: 'http', public_port: expect.any(Number), target_port: 8888 }),
      ]),
    );
    // Issue 11: public ports come from the pool, one per entry on the gateway (no more 2222 for all).
    const ports = (await Promise.all(ids.map((id) => p.api('GET', `/api/v1/hosts/${id}/remote-access`)))).flatMap((x) => x.body.data.entries.map((e: { public_port: number }) => e.public_port));
    expect(ports).toHaveLength(40);
    expect(new Set(ports).size).toBe(40);
    expect(ports.every((port) => port >= 20000 && port <= 29999)).toBe(true);
    expect(ra.body.data.nginx.stream).toContain(`proxy_pass 127.0.0.1:${a.port};`);
    expect(ra.body.data.nginx.http).toContain('server_name node-00.hosts.test;');
    const desc = await p.client.workflow.getHandle(`host-onboarding/${ids[0]}`).describe();
    expect(desc.typedSearchAttributes.get({ name: 'HostStatus', type: 'KEYWORD' } as never)).toBe('online');

    // Patch onboarding-step-records: every step is still recorded, in order, as the Web UI lists
    // them; the steps that do remote work record themselves, so a host costs 2 local activities
    // (onboarding status; last step + online) and no bookkeeping activity is dispatched.
    const steps = await p.db.em.fork().find(OnboardingStepSchema, { host: ids[0]! }, { orderBy: { startedAt: 'asc' } });
    const byStep = Object.fromEntries(steps.map((s) => [s.step, s]));
    expect(Object.fromEntries(steps.map((s) => [s.step, s.status]))).toEqual({ connect: 'done', 'collect-facts': 'done', 'confirm-facts': 'skipped', 'apply-template': 'skipped', 'configure-remote-access': 'done', verify: 'done', 'mark-online': 'done' });
    for (const s of ['connect', 'collect-facts', 'configure-remote-access', 'verify'] as const) {
      expect(byStep[s], s).toMatchObject({ attempts: 1, startedAt: expect.any(Date), finishedAt: expect.any(Date) });
      expect(byStep[s]!.finishedAt!.getTime()).toBeGreaterThanOrEqual(byStep[s]!.startedAt!.getTime());
    }
    expect(byStep['connect']!.detail).toEqual({ fingerprint: a.hostKeyFingerprintSha256 });
    expect(byStep['collect-facts']!.detail).toMatchObject({ cpuCores: expect.any(Number), gpuDifferences: [] });
    expect(byStep['verify']!.detail).toEqual({ checked: ['login'] });
    expect(byStep['verify']!.startedAt!.getTime()).toBeGreaterThanOrEqual(byStep['configure-remote-access']!.finishedAt!.getTime());
    const events = (await p.client.workflow.getHandle(`host-onboarding/${ids[0]}`).fetchHistory()).events ?? [];
    expect(events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name] : []))).toEqual(['onboardConnect', 'collectHostFacts', 'configureRemoteAccess', 'verifyHost', 'notify']);
    expect(events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity')).toHaveLength(2);

    // Patch batch-child-memo: each child starts with a memo naming its host (encrypted), so its
    // activities read "collect facts of node-00" in the Web UI, not only the host id.
    const batchRun = await readableRun(p.client, started.body.data.workflow_id);
    const c0 = batchRun.children.find((c) => c.workflowId === `host-onboarding/${ids[0]}`)!;
    expect(c0.memo).toEqual({ slug: 'node-00', batch: started.body.data.workflow_id, summary: `Onboard host node-00 (batch ${started.body.data.batch_id})` });
    expect(c0.summary).toBe(c0.memo.summary);
    expect(c0.encrypted).toBe(true);
    expect(inPlaintext(batchRun.raw, c0.memo.summary as string)).toBe(false);
    const run0 = await readableRun(p.client, `host-onboarding/${ids[0]}`);
    expect(Object.fromEntries(run0.activities.map((x) => [x.type, x.summary]))).toEqual({
      onboardConnect: 'connect and pin host key of node-00',
      collectHostFacts: 'collect facts of node-00',
      configureRemoteAccess: 'configure remote access of node-00',
      verifyHost: 'verify host of node-00',
      notify: 'notify host.onboarded',
    });

    // Patch onboarding-notify: the outcome reaches whoever may onboard hosts (host.write), once per host.
    const inbox = await p.db.em.fork().find(NotificationSchema, { userId: p.users.operator, channel: 'inbox', event: { $in: ['host.onboarded', 'host.onboarding_failed'] } });
    expect(inbox.filter((n) => n.event === 'host.onboarded').map((n) => n.status)).toEqual(Array(20).fill('sent'));
    const failedMsgs = inbox.filter((n) => n.event === 'host.onboarding_failed');
    expect(failedMsgs).toHaveLength(1);
    expect(failedMsgs[0]!.subject).toMatch(/^Onboarding of node-badauth \(.+\) failed at connect$/);
    expect(failedMsgs[0]!.body).toContain('AuthenticationFailed');
    // A requester may not onboard hosts: told nothing.
    expect(await p.db.em.fork().count(NotificationSchema, { userId: p.users.requester, event: { $like: 'host.%' } })).toBe(0);
  });

  it('retry resumes at the failed step without re-running the earlier ones', async () => {
    const flag = `/tmp/hostflow-tpl-${Date.now()}`;
    const tpl = await p.api('POST', '/api/v1/env-templates', {
      body: { name: 'needs-flag', steps: [{ name: 'marker', check: `test -e ${flag}.done`, command: `test -e ${flag} && touch ${flag}.done` }] },
    });
    expect(tpl.status, JSON.stringify(tpl.body)).toBe(201);
    const h = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: 'templated', address: a.host, port: a.port, username: a.adminUser, private_key: a.adminPrivateKey, template_id: tpl.body.data.id } });
    const id = h.body.data.id;
    await p.api('POST', `/api/v1/hosts/${id}/onboarding`, { body: {} });
    const failed = await waitHost(id, ['failed']);
    expect(failed.steps.find((s: { step: string }) => s.step === 'apply-template')).toMatchObject({ status: 'failed', error: expect.stringContaining('TemplateStepFailed') });
    const before = await p.db.em.fork().find(OnboardingStepSchema, { host: id, step: { $in: ['connect', 'collect-facts'] } });

    await sshExec(a, `touch ${flag}`);
    const retry = await p.api('POST', `/api/v1/hosts/${id}/onboarding/retry`, { body: {} });
    expect(retry.body.data).toMatchObject({ from_step: 'apply-template' });
    const done = await waitHost(id, ['online']);
    expect(done.steps.find((s: { step: string }) => s.step === 'apply-template')).toMatchObject({ status: 'done', attempts: 2 });
    const after = await p.db.em.fork().find(OnboardingStepSchema, { host: id, step: { $in: ['connect', 'collect-facts'] } });
    for (const s of after) {
      const prev = before.find((x) => x.step === s.step)!;
      expect(s.attempts).toBe(1);
      expect(s.startedAt!.getTime()).toBe(prev.startedAt!.getTime());
    }
    await sshExec(a, `rm -f ${flag} ${flag}.done`);
  });

  it('hosts sharing a domain get their own pooled ports; an explicit port another host holds fails remote-access configuration with a readable error', async () => {
    const make = async (name: string) => (await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name, address: a.host, port: a.port, username: a.adminUser, private_key: a.adminPrivateKey } })).body.data.id as string;
    const [x, y] = [await make('clash-x'), await make('clash-y')];
    await p.api('POST', `/api/v1/hosts/${x}/onboarding`, { body: { remote_access: { enabled: true, domain: 'shared.example.com', public_ports: { [String(a.port)]: 29990 } } } });
    await waitHost(x, ['online']);
    await p.api('POST', `/api/v1/hosts/${y}/onboarding`, { body: { remote_access: { enabled: true, domain: 'shared.example.com', public_ports: { [String(a.port)]: 29990 } } } });
    const r = await waitHost(y, ['failed']);
    expect(r.steps.find((s: { step: string }) => s.step === 'configure-remote-access').error).toMatch(/RemoteAccessConflict.*shared\.example\.com:29990/);
  });

  it('a draft template is not applied; template create and publish are audited; a failing step keeps its output out of history and errors', { timeout: 120_000 }, async () => {
    const [c, d] = await Promise.all([startSshd(), startSshd()]);
    try {
      const flag = `/tmp/hostflow-draft-${Date.now()}`;
      const draft = await p.api('POST', '/api/v1/env-templates', { body: { name: 'draft-one', publish: false, steps: [{ name: 'touch', check: `test -e ${flag}`, command: `touch ${flag}` }] } });
      expect(draft.status, JSON.stringify(draft.body)).toBe(201);
      expect(draft.body.data.published_at).toBeNull();
      const h = await p.api('POST', '/api/v1/hosts', { body: { name: 'drafted', address: c.host, port: c.port, username: c.adminUser, private_key: c.adminPrivateKey, template_id: draft.body.data.id } });
      const id = h.body.data.id;
      await p.api('POST', `/api/v1/hosts/${id}/onboarding`, { body: {} });
      const failed = await waitHost(id, ['failed']);
      expect(failed.steps.find((s: { step: string }) => s.step === 'apply-template')).toMatchObject({ status: 'failed', error: expect.stringMatching(/draft/) });
      expect((await sshExec(c, `test -e ${flag} && echo applied || echo not-applied`)).stdout.trim()).toBe('not-applied');
      expect((await p.api('POST', `/api/v1/env-templates/${draft.body.data.id}/publish`)).status).toBe(200);
      const audit = await p.db.em.fork().getConnection().execute(`select action, actor from audit_events where target_id = ? order by at`, [draft.body.data.id]);
      expect(audit).toEqual([{ action: 'env-template.create', actor: 'admin' }, { action: 'env-template.publish', actor: 'admin' }]);

      const leak = `sk-LEAK-${Date.now().toString(36)}`;
      const tpl = await p.api('POST', '/api/v1/env-templates', { body: { name: 'leaky', steps: [{ name: 'leak', check: 'false', command: `echo "token=${leak}" >&2; echo ${leak}; exit 3` }] } });
      const lh = await p.api('POST', '/api/v1/hosts', { body: { name: 'leaky', address: d.host, port: d.port, username: d.adminUser, private_key: d.adminPrivateKey, template_id: tpl.body.data.id } });
      await p.api('POST', `/api/v1/hosts/${lh.body.data.id}/onboarding`, { body: {} });
      const lf = await waitHost(lh.body.data.id, ['failed']);
      const step = lf.steps.find((s: { step: string }) => s.step === 'apply-template');
      expect(step.error).toMatch(/TemplateStepFailed.*exit 3/);
      expect(JSON.stringify(lf)).not.toContain(leak);
      expect(await assertNoSecretsInHistory(p.client, p.taskQueue, [leak])).toBeGreaterThan(0);
      // The full output is kept in the step's command record only (secret-shaped text redacted).
      const cmds = await p.api('GET', `/api/v1/hosts/${lh.body.data.id}/commands?workflow_id=host-onboarding/${lh.body.data.id}&failed=true`);
      expect(cmds.status, JSON.stringify(cmds.body)).toBe(200);
      const run = cmds.body.data.items.find((i: { exit_code: number | null }) => i.exit_code === 3);
      expect(run, JSON.stringify(cmds.body.data.items)).toMatchObject({ builder: 'command', activity_type: 'applyEnvTemplate', stdin: false });
      const out = await p.api('GET', `/api/v1/hosts/${lh.body.data.id}/commands/${run.id}`);
      expect(out.body.data).toMatchObject({ stdout: `${leak}\n`, stderr: 'token=[redacted]\n' });
    } finally {
      await c.stop();
      await d.stop();
    }
  });

  it('the periodic re-check marks an unreachable host offline after N failures, and back online', async () => {
    const id = ids[1]!; // on sshd b
    await p.db.em.fork().nativeUpdate(HostCredentialSchema, { host: id }, { ciphertext: p.vault.encrypt('nope', `host-credential:${id}:password`).ciphertext });
    p.ssh.evict(id);
    for (let i = 0; i < 2; i++) await p.client.workflow.execute('hostRecheck', { taskQueue: p.taskQueue, workflowId: `host-recheck-test-${Date.now()}-${i}`, args: [{ offlineAfter: 2 }] });
    expect((await p.db.em.fork().findOneOrFail(HostSchema, { id })).status).toBe('offline');
    await p.db.em.fork().nativeUpdate(HostCredentialSchema, { host: id }, { ciphertext: p.vault.encrypt(b.adminPassword, `host-credential:${id}:password`).ciphertext });
    await p.client.workflow.execute('hostRecheck', { taskQueue: p.taskQueue, workflowId: `host-recheck-test-${Date.now()}-back`, args: [{ offlineAfter: 2 }] });
    expect((await p.db.em.fork().findOneOrFail(HostSchema, { id })).status).toBe('online');
  });

  it('collects GPU facts; differing GPUs wait for a human, who confirms; GPU filter finds the host', async () => {
    const h = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: 'gpu-box', address: gpu.host, port: gpu.port, username: gpu.adminUser, private_key: gpu.adminPrivateKey, expected_gpu: { model: 'H100', count: 8 } } });
    const id = h.body.data.id;
    await p.api('POST', `/api/v1/hosts/${id}/onboarding`, { body: {} });
    const deadline = Date.now() + 30_000;
    let waiting;
    for (;;) {
      waiting = (await p.api('GET', `/api/v1/hosts/${id}/onboarding`)).body.data;
      if (waiting.steps.some((s: { step: string; status: string }) => s.step === 'confirm-facts' && s.status === 'waiting')) break;
      if (Date.now() > deadline) throw new Error(JSON.stringify(waiting));
      await new Promise((res) => setTimeout(res, 200));
    }
    expect(waiting.live.gpuDifferences).toEqual(['expected 8 GPUs, found 2', 'expected H100, found NVIDIA A100-SXM4-80GB, NVIDIA A100-SXM4-80GB']);
    // The people who can confirm hear that it waits for them (event host.awaiting_confirmation).
    const ask = await p.db.em.fork().findOneOrFail(NotificationSchema, { userId: p.users.admin, channel: 'inbox', event: 'host.awaiting_confirmation', body: { $like: '%expected 8 GPUs, found 2%' } });
    expect(ask.subject).toMatch(/^Onboarding of gpu-box \(.+\) waits for your confirmation$/);
    const facts = (await p.api('GET', `/api/v1/hosts/${id}`)).body.data.facts;
    expect(facts.gpus).toEqual([
      expect.objectContaining({ index: 0, model: 'NVIDIA A100-SXM4-80GB', memoryMiB: 81920, driver: '535.129.03' }),
      expect.objectContaining({ index: 1, model: 'NVIDIA A100-SXM4-80GB' }),
    ]);
    expect(facts.cuda).toBe('12.2');
    const ok = await p.api('POST', `/api/v1/hosts/${id}/onboarding/confirm-facts`, { body: { accept: true } });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    await waitHost(id, ['online']);
    const again = await p.api('POST', `/api/v1/hosts/${id}/onboarding/confirm-facts`, { body: { accept: true } });
    expect(again.body.code).toBe(40901);
    const found = await p.api('GET', '/api/v1/hosts?gpu_model=a100');
    expect(found.body.data.items.map((x: { id: string }) => x.id)).toEqual([id]);
  });

  it('a host whose key changes after onboarding fails its re-checks (HostKeyMismatch) and goes offline', async () => {
    const h = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: 'rekeyed', address: gpu.host, port: gpu.port, username: gpu.adminUser, private_key: gpu.adminPrivateKey } });
    const id = h.body.data.id;
    await p.api('POST', `/api/v1/hosts/${id}/onboarding`, { body: {} });
    await waitHost(id, ['online']);
    await gpu.regenerateHostKey();
    p.ssh.evict(id);
    await p.client.workflow.execute('hostRecheck', { taskQueue: p.taskQueue, workflowId: `host-recheck-rekey-${Date.now()}`, args: [{ offlineAfter: 1 }] });
    const host = await p.db.em.fork().findOneOrFail(HostSchema, { id });
    expect(host.status).toBe('offline');
    expect(host.hostKeyFingerprint).not.toBe(gpu.hostKeyFingerprintSha256);

    // After checking the new key out of band, an admin re-pins it (audited); the host answers again.
    const body = { fingerprint: gpu.hostKeyFingerprintSha256, reason: 'reinstalled the OS' };
    expect((await p.api('POST', `/api/v1/hosts/${id}/host-key/repin`, { token: p.tokens.operator, body })).status).toBe(403);
    expect((await p.api('POST', `/api/v1/hosts/${id}/host-key/repin`, { body: { ...body, fingerprint: 'md5:aa' } })).body.errors?.[0]?.field).toBe('fingerprint');
    const repin = await p.api('POST', `/api/v1/hosts/${id}/host-key/repin`, { body });
    expect(repin.status, JSON.stringify(repin.body)).toBe(200);
    expect(repin.body.data.host_key_fingerprint).toBe(gpu.hostKeyFingerprintSha256);
    const audit = await p.db.em.fork().getConnection().execute(`select actor, detail from audit_events where action = 'host.host-key.repin' and target_id = ?`, [id]);
    expect(audit).toEqual([{ actor: 'admin', detail: { before: host.hostKeyFingerprint, after: gpu.hostKeyFingerprintSha256, reason: 'reinstalled the OS' } }]);
    p.ssh.evict(id);
    await p.client.workflow.execute('hostRecheck', { taskQueue: p.taskQueue, workflowId: `host-recheck-repinned-${Date.now()}`, args: [{ offlineAfter: 1 }] });
    expect((await p.db.em.fork().findOneOrFail(HostSchema, { id })).status).toBe('online');
  });
});
