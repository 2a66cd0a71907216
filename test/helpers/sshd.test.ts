import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminConnectConfig, execOn, fingerprintSha256, sshConnect, sshExec, startSshd, type SshTestHost } from './sshd.js';

function refusesTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

describe('startSshd', () => {
  let h: SshTestHost;

  beforeAll(async () => {
    h = await startSshd({ users: [{ name: `hfusr${Math.random().toString(36).slice(2, 7)}`, password: 'pw-Secret1' }] });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('runs commands as the admin user via key auth', async () => {
    const r = await sshExec(h, 'id -un');
    expect(r).toMatchObject({ code: 0, stdout: `${h.adminUser}\n` });
    expect(h.adminUser).toMatch(/^hfadm[a-z0-9]{5}$/);
    expect(h.adminPrivateKey).toContain('BEGIN OPENSSH PRIVATE KEY');
  });

  it('admin has passwordless sudo; asUser runs via sudo', async () => {
    expect((await sshExec(h, 'sudo -n true')).code).toBe(0);
    expect(await sshExec(h, 'id -un', 'root')).toMatchObject({ code: 0, stdout: 'root\n' });
  });

  it('password login works for the admin and extra users', async () => {
    const c = await sshConnect({ host: h.host, port: h.port, username: h.adminUser, password: h.adminPassword });
    try {
      expect((await execOn(c, 'id -un')).stdout.trim()).toBe(h.adminUser);
    } finally {
      c.end();
    }
    const user = (await sshExec(h, `getent passwd | grep -o '^hfusr[a-z0-9]*'`)).stdout.trim();
    const c2 = await sshConnect({ host: h.host, port: h.port, username: user, password: 'pw-Secret1' });
    try {
      expect((await execOn(c2, 'id -un')).stdout.trim()).toBe(user);
    } finally {
      c2.end();
    }
    await expect(sshConnect({ host: h.host, port: h.port, username: h.adminUser, password: 'wrong' })).rejects.toThrow(/authentication/i);
  });

  it('reports the host key fingerprint ssh2 sees, and regenerateHostKey() replaces it', async () => {
    const seen: string[] = [];
    const connectAndRecord = async () => {
      const c = await sshConnect({
        ...adminConnectConfig(h),
        hostVerifier: (key: Buffer) => {
          seen.push(fingerprintSha256(key));
          return true;
        },
      });
      c.end();
    };
    await connectAndRecord();
    const before = h.hostKeyFingerprintSha256;
    const beforePub = h.hostPublicKey;
    expect(before).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(seen.at(-1)).toBe(before);
    expect(fingerprintSha256(Buffer.from(beforePub.split(' ')[1]!, 'base64'))).toBe(before);

    const port = h.port;
    await h.regenerateHostKey();
    expect(h.port).toBe(port);
    expect(h.hostKeyFingerprintSha256).not.toBe(before);
    expect(h.hostPublicKey).not.toBe(beforePub);
    await connectAndRecord();
    expect(seen.at(-1)).toBe(h.hostKeyFingerprintSha256);
    expect((await sshExec(h, 'id -un')).stdout.trim()).toBe(h.adminUser);
  });

  it('stop() closes the port and removes the users', async () => {
    const host = await startSshd();
    expect((await sshExec(host, 'true')).code).toBe(0);
    await host.stop();
    expect(await refusesTcp(host.port)).toBe(true);
    expect(spawnSync('getent', ['passwd', host.adminUser]).status).toBe(2);
    expect(existsSync(`/etc/sudoers.d/${host.adminUser}`)).toBe(false);
    expect(existsSync(host.dir)).toBe(false);
    await host.stop(); // idempotent
  });
});
