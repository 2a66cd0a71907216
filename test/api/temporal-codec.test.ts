// The payload codec end to end, against the suite's real Temporal dev server: what Temporal stores
// is ciphertext (read back with the real `temporal` CLI), the codec endpoint decodes it for the
// people allowed to (the CLI itself, speaking the Web UI's remote codec protocol), and runs keep
// working across a key rotation.
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { startTestPlatform, startWorkerFor, TEST_UI_ORIGIN, type TestPlatform } from '../helpers/platform.js';
import { testClient } from '../helpers/temporal.js';
import { temporalCliPath } from '../../scripts/temporal-cli.js';
import { generateKeyring, type Keyring } from '../../db/vault.js';
import { AuditEventSchema, UserSchema } from '../../db/entities/index.js';
import { AesGcmPayloadCodec } from '../../config/payload-codec.js';
import { releaseSignal, type hostLock } from '../../workflows/host-lock.workflow.js';

const run = promisify(execFile);
const cli = (...args: string[]) => run(temporalCliPath(), [...args, '--address', inject('temporalAddress')], { maxBuffer: 32 * 1024 * 1024 }).then((r) => r.stdout);

describe('Temporal payload codec and the Web UI codec endpoint', { timeout: 180_000 }, () => {
  let p: TestPlatform;
  let auditorToken: string;
  const business = { customer: 'Alice Example Ltd', email: 'alice.example@customer.test', host: 'gpu-secret-07.customer.test' };
  const summary = `Account alice on ${business.host} for ${business.customer}`;
  let workflowId: string;

  beforeAll(async () => {
    p = await startTestPlatform();
    const em = p.db.em.fork();
    const auditor = em.create(UserSchema, { username: 'auditor1', roles: ['auditor'] });
    await em.flush();
    auditorToken = await p.tokenFor(auditor.id);
    // A real workflow run carrying business data in its input and memo; it fails (no such host),
    // so its failure message goes through the codec as well.
    workflowId = `host-ping/codec-${randomUUID()}`;
    const h = await p.client.workflow.start('hostPing', { workflowId, taskQueue: p.taskQueue, args: [{ hostId: randomUUID(), note: business }], memo: { summary }, workflowExecutionTimeout: '60s' });
    await h.result().catch(() => undefined);
  });
  afterAll(() => p?.close());

  it('`temporal workflow show` prints no plaintext business data; with --codec-endpoint and an authorised token it prints it decoded', async () => {
    const raw = await cli('workflow', 'show', '-w', workflowId, '--output', 'json');
    const rawDecoded = raw.replace(/"([A-Za-z0-9+/]{8,}={0,2})"/g, (_m, b: string) => JSON.stringify(Buffer.from(b, 'base64').toString('latin1')));
    for (const s of [...Object.values(business), summary, 'Alice']) {
      expect(raw, s).not.toContain(s);
      expect(rawDecoded, s).not.toContain(s);
    }
    expect(rawDecoded).toContain('binary/encrypted');
    const describe = await cli('workflow', 'describe', '-w', workflowId, '--output', 'json');
    expect(describe).not.toContain(business.customer);

    const decoded = await cli('workflow', 'show', '-w', workflowId, '--output', 'json', '--codec-endpoint', `${p.baseUrl}/api/v1/temporal/codec`, '--codec-auth', `Bearer ${auditorToken}`);
    const text = decoded.replace(/"([A-Za-z0-9+/]{8,}={0,2})"/g, (_m, b: string) => JSON.stringify(Buffer.from(b, 'base64').toString('utf8')));
    expect(text).toContain(business.customer);
    expect(text).toContain(summary);
    // Each decode call was audited: who, which namespace, how many payloads (never content).
    const rows = await p.db.em.fork().find(AuditEventSchema, { action: 'temporal.decode' });
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.targetId === 'default' && r.actor === 'auditor1')).toBe(true);
    expect(JSON.stringify(rows.map((r) => r.detail))).not.toContain(business.customer);
  });

  it('the endpoint: 200 for admin and auditor, 401 without credentials, 403 for an operator; X-Namespace must be ours', async () => {
    const hist = await p.client.workflow.getHandle(workflowId).fetchHistory();
    const input = JSON.parse(JSON.stringify(hist.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]));
    const call = (token: string | null, headers: Record<string, string> = {}) =>
      fetch(`${p.baseUrl}/api/v1/temporal/codec/decode`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-namespace': 'default', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers }, body: JSON.stringify({ payloads: [input] }) });
    for (const token of [p.tokens.admin, auditorToken]) {
      const r = await call(token);
      expect(r.status).toBe(200);
      const body = (await r.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
      expect(Buffer.from(body.payloads[0]!.metadata.encoding!, 'base64').toString()).toBe('json/plain');
      expect(JSON.parse(Buffer.from(body.payloads[0]!.data, 'base64').toString())).toMatchObject({ note: business });
    }
    expect((await call(null)).status).toBe(401);
    const forbidden = await call(p.tokens.operator);
    expect([forbidden.status, ((await forbidden.json()) as { code: number }).code]).toEqual([403, 40301]);
    const other = await call(p.tokens.admin, { 'x-namespace': 'someone-else' });
    expect([other.status, ((await other.json()) as { errors: Array<{ field: string }> }).errors[0]!.field]).toEqual([400, 'X-Namespace']);

    // encode → decode round trip through the endpoint (what the UI does for a signal it sends).
    const plain = { metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: Buffer.from(JSON.stringify({ hello: business.email })).toString('base64') };
    const enc = (await (await fetch(`${p.baseUrl}/api/v1/temporal/codec/encode`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${p.tokens.admin}` }, body: JSON.stringify({ payloads: [plain] }) })).json()) as { payloads: Array<{ data: string }> };
    expect(Buffer.from(enc.payloads[0]!.data, 'base64').toString('latin1')).not.toContain(business.email);
    const back = (await (await fetch(`${p.baseUrl}/api/v1/temporal/codec/decode`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${p.tokens.admin}` }, body: JSON.stringify(enc) })).json()) as { payloads: Array<{ data: string }> };
    expect(back.payloads[0]!.data).toBe(plain.data);
  });

  it('CORS: only the UI origin, preflight answered without credentials', async () => {
    const pre = (origin: string) => fetch(`${p.baseUrl}/api/v1/temporal/codec/decode`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,x-namespace' } });
    const ok = await pre(TEST_UI_ORIGIN);
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(TEST_UI_ORIGIN);
    expect(ok.headers.get('access-control-allow-headers')).toContain('x-namespace');
    const evil = await pre('http://evil.test');
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('a run started under key 1 completes after key 2 becomes primary (key 1 kept for decoding)', async () => {
    const k1 = generateKeyring('rot1');
    const k2: Keyring = { activeKeyId: 'rot2', keys: new Map([...generateKeyring('rot2').keys, ...k1.keys]) };
    const q = await startTestPlatform({ worker: false, payloadKeys: k1 });
    try {
      const w1 = await startWorkerFor(q, { payloadKeys: k1 });
      const id = `host-lock/rotation-${randomUUID()}`;
      const allocationId = randomUUID();
      await q.client.workflow.start<typeof hostLock>('hostLock', { workflowId: id, taskQueue: q.taskQueue, args: [{ hostId: randomUUID(), allocationId }] });
      // The first workflow task ran under key 1 (the timer is scheduled), then that worker goes away.
      for (let i = 0; i < 100 && !(await q.client.workflow.getHandle(id).fetchHistory()).events!.some((e) => e.timerStartedEventAttributes); i++) await new Promise((r) => setTimeout(r, 100));
      await w1.stop();
      // Rotation: every process restarts with k2 first and k1 kept.
      const w2 = await startWorkerFor(q, { payloadKeys: k2 });
      try {
        const client2 = testClient(q.client.connection, { payloadKeys: k2 });
        const handle = client2.workflow.getHandle<typeof hostLock>(id);
        await handle.signal(releaseSignal, { allocationId });
        expect(await handle.result()).toEqual({ allocationId, releasedBy: 'signal' });
        const json = JSON.stringify(await handle.fetchHistory());
        const ids = [...json.matchAll(/"encryption-key-id":"([^"]+)"/g)].map((m) => Buffer.from(m[1]!, 'base64').toString());
        expect(new Set(ids)).toEqual(new Set(['rot1', 'rot2']));
        // Without key 1 in the ring the old input cannot be read: the ring must keep retired keys.
        const started = (await handle.fetchHistory()).events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads!;
        const withoutK1 = new AesGcmPayloadCodec({ activeKeyId: 'rot2', keys: new Map([['rot2', k2.keys.get('rot2')!]]) });
        await expect(withoutK1.decode(started)).rejects.toThrow(/key "rot1", which is not in HOSTFLOW_PAYLOAD_KEYS/);
      } finally {
        await w2.stop();
      }
    } finally {
      await q.close();
    }
  });
});
