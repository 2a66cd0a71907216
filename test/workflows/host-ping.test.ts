import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startSshd, type SshTestHost } from '../helpers/sshd.js';
import { HostSchema, HostCredentialSchema } from '../../db/entities/index.js';
import { Vault, generateKeyring, parseKeyring, formatKeyring } from '../../db/vault.js';
import { rotateSecrets } from '../../db/rotate-secrets.js';
import { SshExecutor } from '../../activities/ssh/ssh-executor.js';

describe('host-ping: API → workflow → SSH activity against a real sshd', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  beforeAll(async () => {
    [p, sshd] = await Promise.all([startTestPlatform(), startSshd()]);
  });
  afterAll(async () => {
    await p?.close();
    await sshd?.stop();
  });

  const register = async (name: string, extra: Record<string, unknown>) => {
    const r = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name, address: sshd.host, port: sshd.port, username: sshd.adminUser, ...extra } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.data.id as string;
  };

  it('pings with a private key, pins the host key, and is findable by HostId in Temporal', async () => {
    const id = await register('ping-key', { private_key: sshd.adminPrivateKey });
    const r = await p.api('POST', `/api/v1/hosts/${id}/ping`);
    expect(r.body.data).toMatchObject({ reachable: true, error: null });
    expect(r.body.data.workflow_id).toMatch(new RegExp(`^host-ping/${id}/`));
    const host = await p.db.em.fork().findOneOrFail(HostSchema, { id });
    expect(host.hostKeyFingerprint).toBe(sshd.hostKeyFingerprintSha256);
    expect(host.lastSeenAt).toBeInstanceOf(Date);
    const desc = await p.client.workflow.getHandle(r.body.data.workflow_id).describe();
    expect(desc.status.name).toBe('COMPLETED');
    expect(desc.typedSearchAttributes.get({ name: 'HostId', type: 'KEYWORD' } as never)).toBe(id);
  });

  it('pings with a password', async () => {
    const id = await register('ping-pw', { password: sshd.adminPassword });
    const r = await p.api('POST', `/api/v1/hosts/${id}/ping`);
    expect(r.body.data.reachable).toBe(true);
  });

  it('reports wrong credentials as AuthenticationFailed without retrying', async () => {
    const id = await register('ping-bad', { password: 'definitely-wrong' });
    const r = await p.api('POST', `/api/v1/hosts/${id}/ping`);
    expect(r.body.data).toMatchObject({ reachable: false, error: { type: 'AuthenticationFailed' } });
    const hist = await p.client.workflow.getHandle(r.body.data.workflow_id).fetchHistory();
    const attempts = hist.events!.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt);
    expect(attempts).toEqual([1]);
  });

  it('key rotation re-encrypts every credential and keeps hosts reachable', async () => {
    const id = await register('ping-rotate', { password: sshd.adminPassword });
    const rotated = new Vault(parseKeyring(`${formatKeyring(generateKeyring('k2'))},${formatKeyring(p.keyring)}`));
    const r = await rotateSecrets(p.db.em, rotated);
    expect(r.hostCredentials).toBeGreaterThanOrEqual(1);
    const rows = await p.db.em.fork().find(HostCredentialSchema, {});
    expect(new Set(rows.map((c) => c.keyId))).toEqual(new Set(['k2']));
    const exec = new SshExecutor({ em: p.db.em, vault: rotated });
    try {
      expect((await exec.exec(id, 'echo ok')).stdout.trim()).toBe('ok');
    } finally {
      await exec.close();
    }
    expect((await rotateSecrets(p.db.em, rotated)).hostCredentials).toBe(0);
  });

  it('refuses a host whose key changed after pinning (HostKeyMismatch)', async () => {
    const id = await register('ping-mitm', { private_key: sshd.adminPrivateKey });
    expect((await p.api('POST', `/api/v1/hosts/${id}/ping`)).body.data.reachable).toBe(true);
    await sshd.regenerateHostKey();
    p.ssh.evict(id);
    const r = await p.api('POST', `/api/v1/hosts/${id}/ping`);
    expect(r.body.data).toMatchObject({ reachable: false, error: { type: 'HostKeyMismatch' } });
    expect(r.body.data.error.message).toContain('changed');
  });
});

describe('host-ping as `npm start` wires it: the API client on the worker NativeConnection, eager start', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  beforeAll(async () => {
    [p, sshd] = await Promise.all([startTestPlatform({ eagerStart: true }), startSshd()]);
  });
  afterAll(async () => {
    await p?.close();
    await sshd?.stop();
  });

  it('the ping workflow starts eagerly on the in-process worker and answers', async () => {
    const r0 = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: 'ping-eager', address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
    expect(r0.status, JSON.stringify(r0.body)).toBe(201);
    const r = await p.api('POST', `/api/v1/hosts/${r0.body.data.id}/ping`);
    expect(r.body.data).toMatchObject({ reachable: true, error: null });
    const events = (await p.client.workflow.getHandle(r.body.data.workflow_id).fetchHistory()).events!;
    // The server accepted the eager request: the first workflow task went back in the start
    // response (started in the same batch as the start), not through matching.
    expect(events[0]!.workflowExecutionStartedEventAttributes?.eagerExecutionAccepted).toBe(true);
    expect(events[2]!.workflowTaskStartedEventAttributes).toBeTruthy();
    expect(events.some((e) => e.activityTaskCompletedEventAttributes)).toBe(true);
  });
});
