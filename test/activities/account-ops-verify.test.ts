// linuxAccountOps.verifyLogin against a real sshd: an unreachable host is retryable (the host may
// come back), only a refused login is the permanent LoginVerificationFailed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { freePort, startSshd, type SshTestHost } from '../helpers/sshd.js';
import { SshExecutor } from '../../activities/ssh/ssh-executor.js';
import { linuxAccountOps } from '../../activities/remote/account-ops.js';
import type { Host } from '../../db/entities/index.js';

describe('verifyLogin classification (real sshd)', () => {
  let sshd: SshTestHost;
  const user = { name: `vl${randomBytes(3).toString('hex')}`, password: `Pw-${randomBytes(8).toString('hex')}` };
  // verifyLogin opens a one-off session with explicit settings: no database involved.
  const ssh = new SshExecutor({ em: undefined as never, vault: undefined as never, connectTimeoutMs: 3000 });
  const ops = linuxAccountOps(ssh, 'unused');
  const host = (port: number, fp: string | null = null) => ({ address: '127.0.0.1', port, hostKeyFingerprint: fp }) as unknown as Host;
  const failure = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e as ApplicationFailure);

  beforeAll(async () => {
    sshd = await startSshd({ users: [user] });
  });
  afterAll(async () => {
    await ssh.close();
    await sshd?.stop();
  });

  it('logs in with the right password and reads the session user', async () => {
    const r = await ops.verifyLogin(host(sshd.port, sshd.hostKeyFingerprintSha256), user.name, user.password);
    expect(r.groups.length).toBeGreaterThan(0);
  });

  it('a refused login is the non-retryable LoginVerificationFailed', async () => {
    const e = await failure(ops.verifyLogin(host(sshd.port, sshd.hostKeyFingerprintSha256), user.name, 'wrong-password'));
    expect(e).toBeInstanceOf(ApplicationFailure);
    expect(e!.type).toBe('LoginVerificationFailed');
    expect(e!.nonRetryable).toBe(true);
  });

  it('ECONNREFUSED (sshd down) is retryable HostUnreachable', async () => {
    const closed = await freePort();
    // Pinned, so verifyLogin gets past its HostKeyNotPinned refusal and actually tries to connect.
    const e = await failure(ops.verifyLogin(host(closed, sshd.hostKeyFingerprintSha256), user.name, user.password));
    expect(e).toBeInstanceOf(ApplicationFailure);
    expect(e!.type).toBe('HostUnreachable');
    expect(e!.nonRetryable).toBe(false);
  });

  it('a host key mismatch stays non-retryable HostKeyMismatch', async () => {
    const e = await failure(ops.verifyLogin(host(sshd.port, 'SHA256:AAAAnotthekeyAAAA'), user.name, user.password));
    expect(e!.type).toBe('HostKeyMismatch');
    expect(e!.nonRetryable).toBe(true);
  });
});
