// Retention on PGlite and PostgreSQL: the `auditArchive` workflow (real Temporal worker, the
// bundle of global setup) archives old rows to gzip JSON lines with their chain head, deletes them
// through the archive door only, and `verify` still passes across the cut, starting from the
// archived head. Also: the alert rules for new-IP logins and off-hours access.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureHistories } from '../helpers/history.js';
import { inject } from 'vitest';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { DB_KINDS, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { createActivities } from '../../activities/index.js';
import { createWorker, installWorkerRuntime } from '../../worker/create-worker.js';
import { createLogger } from '../../config/logger.js';
import { appendAudit } from '../../db/audit.js';
import { verifyAuditChain } from '../../db/audit/verify.js';
import { verifyArchiveFile } from '../../db/audit/archive.js';
import { AuditArchiveSchema, AuditChainSchema, AuditEventSchema, LoginEventSchema, SecurityEventSchema } from '../../db/entities/index.js';
import { DEFAULT_SECURITY_RULES, evaluateLoginRules, outsideHours, parseWorkHours } from '../../db/audit/security-rules.js';
import type { auditArchive } from '../../workflows/audit-archive.workflow.js';

describe.each(DB_KINDS)('audit archive on %s', (kind) => {
  let p: TestPlatform;
  let dir: string;
  let worker: Worker;
  let run: Promise<void>;
  let conn: NativeConnection;
  const taskQueue = `audit-archive-${randomUUID()}`;

  beforeAll(async () => {
    p = await startTestPlatform({ db: kind, worker: false });
    dir = await mkdtemp(join(tmpdir(), 'hf-audit-archive-'));
    installWorkerRuntime('WARN');
    conn = await NativeConnection.connect({ address: inject('temporalAddress') });
    const logger = createLogger({ level: 'silent' });
    worker = await createWorker({
      connection: conn,
      namespace: 'default',
      taskQueue,
      activities: createActivities({ em: p.db.em, vault: p.vault, logger, ssh: p.ssh, winrm: p.winrm, mailer: null, mailFrom: 'x <x@test>', baseDomain: 'hosts.test', auditArchiveDir: dir }),
      payloadKeys: p.payloadKeys,
      workflowBundle: { codePath: inject('workflowBundlePath') },
      shutdownGraceTime: '2s',
    });
    run = worker.run();
  });
  afterAll(async () => {
    if (process.env.CAPTURE_HISTORIES && p) await captureHistories(p.client, taskQueue, 'test/replay/histories');
    worker?.shutdown();
    await run;
    await conn?.close();
    await p?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('archives rows older than the retention with their chain head; verify passes across the cut; a second run has nothing to do', async () => {
    // A fresh database: nothing precedes the old rows, so they are the chain's prefix.
    expect(await p.db.em.fork().count(AuditEventSchema, {})).toBe(0);
    const old = Date.now() - 400 * 86_400_000;
    for (let i = 0; i < 30; i++) await appendAudit(p.db.em, { actor: 'old', actorType: 'user', actorId: null, action: 'test.old', targetType: 'test', targetId: String(i), at: new Date(old + i * 1000), detail: { i } });
    for (let i = 0; i < 5; i++) await appendAudit(p.db.em, { actor: 'new', actorType: 'user', actorId: null, action: 'test.new', targetType: 'test', targetId: String(i) });
    const live = await p.db.em.fork().count(AuditEventSchema, {});
    const oldCount = await p.db.em.fork().count(AuditEventSchema, { at: { $lt: new Date(Date.now() - 365 * 86_400_000) } });
    expect(oldCount).toBe(30);

    const r = await p.client.workflow.execute<typeof auditArchive>('auditArchive', { taskQueue, workflowId: `audit-archive/test-${randomUUID()}`, args: [{ retentionDays: 365 }] });
    expect(r.rows).toBe(30);
    const chain = await p.db.em.fork().findOneOrFail(AuditChainSchema, { id: 1 });
    expect(r.rows).toBe(Number(chain.archivedSeq));
    const left = await p.db.em.fork().count(AuditEventSchema, {});
    expect(left).toBe(live - r.rows);
    const v = await verifyAuditChain(p.db.em);
    expect(v, JSON.stringify(v.problem)).toMatchObject({ ok: true, fromSeq: r.rows });
    {
      const files = await readdir(dir);
      expect(files).toHaveLength(1);
      const f = await verifyArchiveFile(join(dir, files[0]!));
      expect(f).toMatchObject({ firstSeq: 1, lastSeq: r.rows, headHash: chain.archivedHash });
      const cut = await p.db.em.fork().findOneOrFail(AuditArchiveSchema, { lastSeq: r.rows });
      expect(cut.headHash).toBe(chain.archivedHash);
    }
    // A second run: nothing new is old enough.
    const again = await p.client.workflow.execute<typeof auditArchive>('auditArchive', { taskQueue, workflowId: `audit-archive/test-${randomUUID()}`, args: [{ retentionDays: 365 }] });
    expect(again.rows).toBe(0);
    // Live rows are still protected, archived door or not.
    await expect(p.db.em.fork().getConnection().execute(`delete from "audit_events"`)).rejects.toThrow(/DELETE refused/);
  });

  it('archives exactly the old prefix when old rows come first', async () => {
    // All rows now in the table are new; add old ones after them: the prefix rule archives none of them.
    await appendAudit(p.db.em, { actor: 'old', actorType: 'user', actorId: null, action: 'test.late-old', targetType: 'test', targetId: 'x', at: new Date(Date.now() - 500 * 86_400_000) });
    const r = await p.client.workflow.execute<typeof auditArchive>('auditArchive', { taskQueue, workflowId: `audit-archive/test-${randomUUID()}`, args: [{ retentionDays: 365 }] });
    expect(r.rows).toBe(0);
    expect(await p.db.em.fork().count(AuditEventSchema, { action: 'test.late-old' })).toBe(1);
    expect((await verifyAuditChain(p.db.em)).ok).toBe(true);
  });

  it('alert rules: login from a new IP (not the first login ever), off-hours access', async () => {
    const s = { ...DEFAULT_SECURITY_RULES, workHours: parseWorkHours('08:00-20:00'), workTimezone: 'Asia/Shanghai' };
    expect(outsideHours(new Date('2026-12-01T13:30:00Z'), s)).toBe(true); // 21:30 in Shanghai
    expect(outsideHours(new Date('2026-12-01T03:00:00Z'), s)).toBe(false); // 11:00
    const userId = randomUUID();
    const login = async (ip: string, at: Date) => {
      const em = p.db.em.fork();
      em.create(LoginEventSchema, { kind: 'login_success', userId, username: 'ipuser', ip, createdAt: at });
      await em.flush();
      await evaluateLoginRules(p.db.em, s, { kind: 'login_success', userId, username: 'ipuser', ip, at });
    };
    await login('10.0.0.1', new Date('2026-12-01T03:00:00Z'));
    await login('10.0.0.1', new Date('2026-12-01T03:05:00Z'));
    expect(await p.db.em.fork().count(SecurityEventSchema, { userId })).toBe(0);
    await login('10.0.0.2', new Date('2026-12-01T13:30:00Z'));
    const ev = await p.db.em.fork().find(SecurityEventSchema, { userId }, { orderBy: { kind: 'asc' } });
    expect(ev.map((e) => e.kind)).toEqual(['new_ip_login', 'off_hours_access']);
    expect(ev[0]!.ip).toBe('10.0.0.2');
  });
});
