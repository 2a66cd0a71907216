// verifyLogin sends a new account's credential to the host: only to a pinned host key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb } from '../helpers/platform.js';
import { startSshd, type SshTestHost } from '../helpers/sshd.js';
import { SshExecutor } from '../../activities/ssh/ssh-executor.js';
import { Vault, generateKeyring } from '../../db/vault.js';
import { createLogger } from '../../config/logger.js';
import { HostSchema } from '../../db/entities/index.js';
import type { Db } from '../../db/orm.js';

describe('SshExecutor.verifyLogin refuses an unpinned host key', () => {
  let db: Db;
  let sshd: SshTestHost;
  let ssh: SshExecutor;
  beforeAll(async () => {
    [db, sshd] = await Promise.all([openTestDb('pglite'), startSshd()]);
    ssh = new SshExecutor({ em: db.em, vault: new Vault(generateKeyring('t')), logger: createLogger({ level: 'silent' }), connectTimeoutMs: 5000 });
  });
  afterAll(async () => {
    await ssh?.close();
    await sshd?.stop();
    await db?.close();
  });

  const target = (pinnedFingerprint: string | null, hostId?: string) => ({ hostId, address: sshd.host, port: sshd.port, username: sshd.adminUser, privateKey: sshd.adminPrivateKey, pinnedFingerprint });

  it('no pin: HostKeyNotPinned, and nothing is sent', async () => {
    await expect(ssh.verifyLogin(target(null), 'id -un')).rejects.toMatchObject({ type: 'HostKeyNotPinned', retryable: false });
  });

  it('a wrong pin: HostKeyMismatch; the right pin logs in', async () => {
    await expect(ssh.verifyLogin(target('SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), 'true')).rejects.toMatchObject({ type: 'HostKeyMismatch' });
    const r = await ssh.verifyLogin(target(sshd.hostKeyFingerprintSha256), 'id -un');
    expect(r.stdout.trim()).toBe(sshd.adminUser);
  });

  it('reads a pin made since the caller loaded the host (by host id)', async () => {
    const em = db.em.fork();
    const h = em.create(HostSchema, { slug: 'pinned', name: 'pinned', address: sshd.host, port: sshd.port, os: 'linux', username: sshd.adminUser, hostKeyFingerprint: sshd.hostKeyFingerprintSha256 });
    await em.flush();
    const r = await ssh.verifyLogin(target(null, h.id), 'id -un');
    expect(r.stdout.trim()).toBe(sshd.adminUser);
  });
});
