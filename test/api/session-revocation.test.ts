// A kick-out (or logout) made through one API process is refused on the very next request to another
// API process sharing the PostgreSQL database: authentication reads the session row on every request
// (one primary-key lookup joined with the user), so there is no per-process cache to go stale.
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { createDatabase } from '../helpers/postgres.js';
import { SessionSchema, UserSchema } from '../../db/entities/index.js';
import { signAccessToken } from '../../api/routes/auth/tokens.js';

describe('session revocation across API processes (PostgreSQL)', () => {
  let p: TestPlatform;
  let child: ChildProcess;
  let second: string;

  beforeAll(async () => {
    const url = await createDatabase(inject('postgresUrl'), `hf_${randomBytes(6).toString('hex')}`);
    p = await startTestPlatform({ databaseUrl: url, worker: false });
    child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/api-process.ts'], {
      env: { ...process.env, HF_DATABASE_URL: url, HF_JWT_KEY_HEX: Buffer.from(p.identity.jwtKey).toString('hex'), HF_TEMPORAL: inject('temporalAddress') },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout! });
    const [line] = (await once(lines, 'line')) as [string];
    second = `http://127.0.0.1:${/^port (\d+)$/.exec(line)![1]}`;
  }, 120_000);
  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    await p?.close();
  });

  const me = async (base: string, token: string) => {
    const res = await fetch(`${base}/api/v1/auth/me`, { headers: { authorization: `Bearer ${token}` } });
    return [res.status, ((await res.json()) as { code: number }).code];
  };

  it('a session kicked out through process A is refused by process B on the next request', async () => {
    const em = p.db.em.fork();
    const user = em.create(UserSchema, { username: 'roaming', roles: ['operator'] });
    const session = em.create(SessionSchema, { userId: user.id, lastSeenAt: new Date(), userAgent: 'test', ip: '127.0.0.1' });
    await em.flush();
    const { token } = await signAccessToken(p.identity, { userId: user.id, sessionId: session.id });
    // Both processes accept it, B several times (warm: any cache it had would now hold the session).
    expect(await me(p.baseUrl, token)).toEqual([200, 0]);
    for (let i = 0; i < 3; i++) expect(await me(second, token)).toEqual([200, 0]);

    const kick = await p.api('DELETE', `/api/v1/sessions/${session.id}`);
    expect(kick.status).toBe(200);
    expect(await me(second, token)).toEqual([401, 40101]);
    expect(await me(p.baseUrl, token)).toEqual([401, 40101]);
  });

  it('a disabled user is refused by the other process on the next request too', async () => {
    const em = p.db.em.fork();
    const user = em.create(UserSchema, { username: 'leaver', roles: ['operator'] });
    const session = em.create(SessionSchema, { userId: user.id, lastSeenAt: new Date(), userAgent: 'test', ip: '127.0.0.1' });
    await em.flush();
    const { token } = await signAccessToken(p.identity, { userId: user.id, sessionId: session.id });
    expect(await me(second, token)).toEqual([200, 0]);
    await p.db.em.fork().nativeUpdate(UserSchema, { id: user.id }, { disabledAt: new Date() });
    expect(await me(second, token)).toEqual([401, 40101]);
  });
});
