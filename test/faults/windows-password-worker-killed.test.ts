// Fault injection: a Windows password reset (hostAccountOperation reset-password) whose worker
// process is killed with SIGKILL after Set-LocalUser ran on the host and before the worker learnt
// it. The new password is pending in the vault; the activity's retry on a new worker reconciles
// (the pending password logs in) and promotes it. Real worker process, real PostgreSQL, real
// Temporal dev server; the Windows host is the WS-Man stand-in (Windows cannot run here).
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { startTestPlatform, startWorkerFor, type TestPlatform } from '../helpers/platform.js';
import { startWsManHost, type WsManHost } from '../helpers/wsman-host.js';
import { assertNoSecretsInHistory } from '../helpers/history.js';
import { formatKeyring } from '../../db/vault.js';
import { HostAccountSchema, HostCredentialSchema, HostSchema } from '../../db/entities/index.js';
import { credentialContext, hostAccountSecretContext } from '../../activities/remote/host-targets.js';
import type { hostAccountOperation } from '../../workflows/host-account.workflow.js';

describe('fault: worker killed in the middle of a Windows password change (real worker process, PostgreSQL, Temporal)', () => {
  let p: TestPlatform;
  let ws: WsManHost;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    [p, ws] = await Promise.all([startTestPlatform({ db: 'postgres', worker: false }), startWsManHost({ https: true })]);
  }, 120_000);
  afterAll(async () => {
    child?.kill('SIGKILL');
    await p?.close();
    await ws?.stop();
  });

  it('the change reached the host, the worker died before promoting it: the retry on a new worker finds the pending password logs in and keeps it', async () => {
    const oldPassword = 'Old-Pass#2026-x';
    ws.addUser('rentee', oldPassword, ['Remote Desktop Users']);
    const em = p.db.em.fork();
    const host = em.create(HostSchema, { slug: 'win-killed', name: 'win-killed', address: '127.0.0.1', port: ws.port, os: 'windows', username: ws.adminUser, winrmPort: ws.port, winrmHttps: true, winrmAuth: 'basic', status: 'online' });
    em.create(HostCredentialSchema, { host, kind: 'winrm-password', ...p.vault.encrypt(ws.adminPassword, credentialContext(host.id, 'winrm-password')) });
    const account = em.create(HostAccountSchema, { host, username: 'rentee', origin: 'platform-created', status: 'active', groups: ['Remote Desktop Users'], secretVersion: 1 });
    const enc = p.vault.encrypt(oldPassword, hostAccountSecretContext(account.id, 1));
    account.secretCiphertext = enc.ciphertext;
    account.secretKeyId = enc.keyId;
    await em.flush();

    child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../fixtures/worker-process.ts', import.meta.url))], {
      env: {
        ...process.env,
        HF_DATABASE_URL: p.db.orm.config.get('clientUrl') as string,
        HF_TEMPORAL: inject('temporalAddress'),
        HF_TASK_QUEUE: p.taskQueue,
        HF_KEYS: formatKeyring(p.keyring),
        HF_PAYLOAD_KEYS: formatKeyring(p.payloadKeys),
        HF_BUNDLE: inject('workflowBundlePath'),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child!.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child!.once('exit', (c) => reject(new Error(`worker exited ${c}`)));
    });
    const worker = child;
    let killed: (() => void) | undefined;
    const wasKilled = new Promise<void>((r) => (killed = r));
    // Set-LocalUser has run on the host: the worker dies before its answer arrives.
    ws.onCommandDone = async (rec) => {
      if (!rec.script.includes('Set-LocalUser') || !killed) return;
      const k = killed;
      killed = undefined;
      const exited = new Promise((r) => worker.once('exit', r));
      worker.kill('SIGKILL');
      await exited;
      k();
    };

    const workflowId = `host-account/${account.id}/reset-password/killed`;
    const handle = await p.client.workflow.start<typeof hostAccountOperation>('hostAccountOperation', {
      workflowId,
      taskQueue: p.taskQueue,
      args: [{ accountId: account.id, op: 'reset-password' }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      workflowExecutionTimeout: '5 minutes',
    });
    await wasKilled;
    ws.onCommandDone = null;

    // Between the kill and the retry: the host has the new password, the vault both.
    const mid = await p.db.em.fork().findOneOrFail(HostAccountSchema, { id: account.id });
    expect(mid.secretVersion).toBe(1);
    expect(mid.pendingOpId).toBe(workflowId);
    const pending = p.vault.decrypt(mid.pendingSecretCiphertext!, hostAccountSecretContext(account.id, 2));
    expect(p.vault.decrypt(mid.secretCiphertext!, hostAccountSecretContext(account.id, 1))).toBe(oldPassword);
    expect(ws.checkPassword('rentee', pending)).toBe(true);
    expect(ws.checkPassword('rentee', oldPassword)).toBe(false);
    const setsBefore = ws.commands.filter((c) => c.script.includes('Set-LocalUser')).length;

    const w = await startWorkerFor(p);
    try {
      const t0 = Date.now();
      expect(await handle.result()).toEqual({ accountId: account.id, op: 'reset-password', status: 'active' });
      console.log(`[faults] windows password: settled ${((Date.now() - t0) / 1000).toFixed(1)} s after the new worker started (heartbeat timeout 30 s)`);
    } finally {
      await w.stop();
    }
    const after = await p.db.em.fork().findOneOrFail(HostAccountSchema, { id: account.id });
    expect(after).toMatchObject({ secretVersion: 2, pendingSecretCiphertext: null, pendingOpId: null, lastResetOpId: workflowId, secretRevealedAt: null });
    expect(p.vault.decrypt(after.secretCiphertext!, hostAccountSecretContext(account.id, 2))).toBe(pending);
    expect(ws.checkPassword('rentee', pending)).toBe(true);
    // Settled by logging in with the pending password, not by another change.
    expect(ws.commands.filter((c) => c.script.includes('Set-LocalUser')).length).toBe(setsBefore);
    expect(await assertNoSecretsInHistory(p.client, p.taskQueue, [pending, oldPassword, ws.adminPassword])).toBeGreaterThan(0);
  }, 240_000);
});
