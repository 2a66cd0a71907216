// Recording retention as the `recording-retention` Temporal Schedule's workflow (real Temporal
// worker on the suite's bundle): recordings of sessions that ended more than N days ago are
// deleted (row kept, link gone) or archived (file moved, still playable), each audited; live and
// recent sessions are untouched; a second run has nothing to do. The Schedule itself is created
// and described against the dev server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { captureHistories } from '../helpers/history.js';
import { createActivities } from '../../activities/index.js';
import { createWorker, installWorkerRuntime } from '../../worker/create-worker.js';
import { ensureRecordingRetentionSchedule } from '../../worker/schedules.js';
import { createLogger } from '../../config/logger.js';
import { Recorder, readRecording } from '../../api/remote/recording.js';
import { AuditEventSchema, RemoteSessionSchema, UserSchema, HostSchema } from '../../db/entities/index.js';
import type { recordingRetention } from '../../workflows/recording-retention.workflow.js';

describe('recording retention (Temporal workflow + Schedule)', () => {
  let p: TestPlatform;
  let dir: string;
  let worker: Worker;
  let run: Promise<void>;
  let conn: NativeConnection;
  const taskQueue = `recording-retention-${randomUUID()}`;

  beforeAll(async () => {
    p = await startTestPlatform({ worker: false });
    dir = await mkdtemp(join(tmpdir(), 'hf-recordings-'));
    installWorkerRuntime('WARN');
    conn = await NativeConnection.connect({ address: inject('temporalAddress') });
    worker = await createWorker({
      connection: conn,
      namespace: 'default',
      taskQueue,
      activities: createActivities({ em: p.db.em, vault: p.vault, logger: createLogger({ level: 'silent' }), ssh: p.ssh, winrm: p.winrm, mailer: null, mailFrom: 'x <x@test>', baseDomain: 'hosts.test', recordingArchiveDir: join(dir, 'archive') }),
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

  /** A session row with a real encrypted recording, ended `daysAgo` days ago (null: still live). */
  async function session(daysAgo: number | null, text: string): Promise<{ id: string; path: string }> {
    const em = p.db.em.fork();
    const user = await em.findOneOrFail(UserSchema, { username: 'admin' });
    let host = await em.findOne(HostSchema, { slug: 'rec-host' });
    host ??= em.create(HostSchema, { slug: 'rec-host', name: 'rec', address: '127.0.0.1', port: 22, os: 'linux', username: 'admin', status: 'online' });
    const started = new Date(Date.now() - (daysAgo ?? 0) * 86_400_000 - 3600_000);
    const row = em.create(RemoteSessionSchema, { userId: user.id, username: 'admin', staff: true, hostId: host.id, osUsername: 'u', protocol: 'ssh', sourceIp: '127.0.0.1', startedAt: started, lastActivityAt: started, ...(daysAgo === null ? {} : { endedAt: new Date(Date.now() - daysAgo * 86_400_000), status: 'closed' as const, endReason: 'user_close' as const }) });
    row.recordingPath = join(dir, 'live', `${row.id}.cast.enc`);
    await em.flush();
    const rec = new Recorder(p.vault, row.recordingPath, row.id, { width: 80, height: 24 });
    rec.output(text);
    await rec.flush();
    return { id: row.id, path: row.recordingPath };
  }
  const row = (id: string) => p.db.em.fork().findOneOrFail(RemoteSessionSchema, { id });
  const exec = (retentionDays: number, mode: 'delete' | 'archive') =>
    p.client.workflow.execute<typeof recordingRetention>('recordingRetention', { taskQueue, workflowId: `recording-retention/test-${randomUUID()}`, args: [{ retentionDays, mode }] });

  it('delete: old recordings go (row kept, link gone, audited); recent and live ones stay; a second run does nothing', async () => {
    const old = await session(200, 'old-output');
    const recent = await session(10, 'recent-output');
    const live = await session(null, 'live-output');
    expect(await exec(90, 'delete')).toEqual({ deleted: 1, archived: 0, missing: 0 });
    expect(existsSync(old.path)).toBe(false);
    expect((await row(old.id)).recordingPath).toBeNull();
    expect((await row(old.id)).endReason).toBe('user_close');
    for (const s of [recent, live]) {
      expect(existsSync(s.path)).toBe(true);
      expect((await row(s.id)).recordingPath).toBe(s.path);
    }
    const audit = await p.db.em.fork().find(AuditEventSchema, { action: 'remote_session.recording.deleted' });
    expect(audit.map((a) => [a.targetId, (a.detail as { retention_days: number }).retention_days, (a.detail as { file_existed: boolean }).file_existed])).toEqual([[old.id, 90, true]]);
    // The API answers 404 for a deleted recording.
    expect((await p.api('GET', `/api/v1/remote-sessions/${old.id}/recording`)).status).toBe(404);
    expect(await exec(90, 'delete')).toEqual({ deleted: 0, archived: 0, missing: 0 });
  });

  it('archive: old recordings move to the archive (still decryptable and playable through the API), audited; archived ones are not moved again', async () => {
    const old = await session(400, 'archived-output');
    expect(await exec(90, 'archive')).toEqual({ deleted: 0, archived: 1, missing: 0 });
    const r = await row(old.id);
    expect(r.recordingPath).toMatch(new RegExp(`^${join(dir, 'archive')}/\\d{4}-\\d{2}/${old.id}\\.cast\\.enc$`));
    expect(existsSync(old.path)).toBe(false);
    expect(await readRecording(p.vault, r.recordingPath!, old.id)).toContain('archived-output');
    const res = await fetch(`${p.baseUrl}/api/v1/remote-sessions/${old.id}/recording`, { headers: { authorization: `Bearer ${p.tokens.admin}` } });
    expect(await res.text()).toContain('archived-output');
    const audit = await p.db.em.fork().find(AuditEventSchema, { action: 'remote_session.recording.archived' });
    expect(audit.map((a) => a.targetId)).toEqual([old.id]);
    expect(await exec(90, 'archive')).toEqual({ deleted: 0, archived: 0, missing: 0 });
  });

  it('the Schedule starts the workflow with the configured retention and mode', async () => {
    const scheduleId = `recording-retention-${randomUUID()}`;
    await ensureRecordingRetentionSchedule(p.client, { taskQueue, interval: '1d', retentionDays: 30, mode: 'archive', scheduleId });
    // Idempotent: a restart updates it instead of failing.
    await ensureRecordingRetentionSchedule(p.client, { taskQueue, interval: '1d', retentionDays: 45, mode: 'delete', scheduleId });
    const h = p.client.schedule.getHandle(scheduleId);
    try {
      const d = await h.describe();
      expect(d.action).toMatchObject({ type: 'startWorkflow', workflowType: 'recordingRetention', args: [{ retentionDays: 45, mode: 'delete' }] });
      // Triggered now: the workflow runs on the worker and completes.
      await h.trigger();
      let done = false;
      for (let i = 0; i < 100 && !done; i++) {
        const info = await h.describe();
        const started = info.info.recentActions.at(-1)?.action;
        if (started) {
          await p.client.workflow.getHandle(started.workflow.workflowId, started.workflow.firstExecutionRunId).result();
          done = true;
        } else await new Promise((r) => setTimeout(r, 200));
      }
      expect(done).toBe(true);
    } finally {
      await h.delete();
    }
  });
});
