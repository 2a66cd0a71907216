// Step-up for sensitive operations, route by route: every route issue 13 names (revealing a
// password, force reclaim, terminating a lease, deleting a host, unlocking a user) and the others
// that change who may do what declare `stepUp`, and each of them answers 40103 to a user with MFA
// whose last check is older than AUTH_STEP_UP_MINUTES, and lets the request through after
// POST /auth/mfa/verify. Real app, PGlite, real argon2id and TOTP; the identity clock is injected.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret, TOTP } from 'otpauth';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { createLogger } from '../../config/logger.js';
import { createApp, routeTable } from '../../api/app.js';

/** The sensitive operations: every one must need step-up (more may). */
const SENSITIVE = [
  'POST /api/v1/allocations/:id/credentials/reveal',
  'POST /api/v1/account-openings/:id/credentials/reveal',
  'POST /api/v1/allocations/:id/reclaim/force',
  'POST /api/v1/allocations/:id/terminate',
  'DELETE /api/v1/hosts/:id',
  'POST /api/v1/users/:id/unlock',
  'PATCH /api/v1/users/:id',
  'POST /api/v1/hosts/:id/host-key/repin',
  'POST /api/v1/auth/mfa/recovery-codes',
  'DELETE /api/v1/auth/mfa',
];
const NO_ID = '00000000-0000-4000-8000-000000000000';

describe('step-up on every sensitive route', () => {
  let p: TestPlatform;
  let stepUpRoutes: string[];
  let token: string;
  let totp: TOTP;
  let plainToken: string;

  const call = async (method: string, path: string, tok: string, body?: unknown) => {
    const res = await fetch(p.baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${tok}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as { code: number; message: string; data: Record<string, unknown> } };
  };
  const login = async (username: string, password: string, extra: object = {}) => {
    const r = await fetch(`${p.baseUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': '10.77.0.1' }, body: JSON.stringify({ username, password, ...extra }) });
    return (await r.json()) as { code: number; data: { access_token: string } };
  };
  /** A user with a changed (known) password, logged in. */
  const userWithPassword = async (username: string, roles: string[]) => {
    const made = await p.api('POST', '/api/v1/users', { body: { username, roles } });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const first = await login(username, made.body.data.initial_password);
    const password = 'Step-up-Passw0rd!';
    const ch = await call('POST', '/api/v1/auth/password/change', first.data.access_token, { current_password: made.body.data.initial_password, new_password: password });
    expect(ch.status, JSON.stringify(ch.body)).toBe(200);
    return { password, token: (await login(username, password)).data.access_token };
  };
  const pathOf = (route: string) => route.split(' ')[1]!.replace(':id', NO_ID);
  const bodyOf = (route: string) => (route.startsWith('PATCH ') ? { full_name: 'x' } : route.endsWith('/repin') ? { fingerprint: 'SHA256:x', reason: 'x' } : route.startsWith('POST ') ? {} : undefined);

  beforeAll(async () => {
    p = await startTestPlatform({ db: 'pglite', worker: false, logger: createLogger({ level: 'silent' }) });
    const app = createApp({ em: p.db.em, vault: p.vault, logger: createLogger({ level: 'silent' }), temporal: { client: p.client, taskQueue: p.taskQueue }, settings: { accountOpeningExpiryDays: 7 }, checks: { db: async () => undefined, temporal: async () => undefined } });
    stepUpRoutes = routeTable(app).filter((r) => r.stepUp).map((r) => `${r.method.toUpperCase()} ${r.path}`);

    const admin = await userWithPassword('stepper', ['admin']);
    const en = await call('POST', '/api/v1/auth/mfa/totp/enroll', admin.token);
    totp = new TOTP({ secret: Secret.fromBase32(en.body.data.secret as string), digits: 6, period: 30, algorithm: 'SHA1' });
    expect((await call('POST', '/api/v1/auth/mfa/totp/confirm', admin.token, { code: totp.generate({ timestamp: p.clock.now().getTime() }) })).status).toBe(200);
    p.clock.advance(30_000);
    const withMfa = await login('stepper', admin.password, { totp_code: totp.generate({ timestamp: p.clock.now().getTime() }) });
    expect(withMfa.code).toBe(0);
    token = withMfa.data.access_token;
    plainToken = (await userWithPassword('nomfa', ['admin'])).token;
  });
  afterAll(() => p?.close());

  it('the route table marks every sensitive operation as needing step-up', () => {
    expect(stepUpRoutes).toEqual(expect.arrayContaining(SENSITIVE));
    // Encryption-key rotation has no API route: it is `hostflow keys rotate`, run where the keys are.
    expect(stepUpRoutes.concat(SENSITIVE).filter((r) => /rotate/.test(r) && !/notifications/.test(r))).toEqual([]);
  });

  it('each answers 40103 when the MFA check is older than 5 minutes, and passes the check after /auth/mfa/verify', async () => {
    p.clock.advance(6 * 60_000);
    const stale: string[] = [];
    for (const route of stepUpRoutes) {
      const [method] = route.split(' ');
      const r = await call(method!, pathOf(route), token, bodyOf(route));
      if (r.status !== 401 || r.body.code !== 40103) stale.push(`${route}: ${r.status} ${r.body.code}`);
    }
    expect(stale, 'step-up routes that let a stale session through').toEqual([]);

    const v = await call('POST', '/api/v1/auth/mfa/verify', token, { totp_code: totp.generate({ timestamp: p.clock.now().getTime() }) });
    expect(v.status, JSON.stringify(v.body)).toBe(200);
    const after: string[] = [];
    // The MFA-removal route would take the factor away; the others meet an id that does not exist (404) or bad input (400).
    for (const route of stepUpRoutes.filter((r) => r !== 'DELETE /api/v1/auth/mfa' && r !== 'POST /api/v1/auth/mfa/recovery-codes')) {
      const [method] = route.split(' ');
      const r = await call(method!, pathOf(route), token, bodyOf(route));
      if (r.body.code === 40103 || r.status === 401) after.push(`${route}: ${r.status} ${r.body.code}`);
    }
    expect(after, 'step-up routes still refusing after a fresh MFA check').toEqual([]);
    const codes = await call('POST', '/api/v1/auth/mfa/recovery-codes', token);
    expect(codes.status, JSON.stringify(codes.body)).toBe(200);
  });

  it('a user without MFA is not asked to step up', async () => {
    p.clock.advance(6 * 60_000);
    const r = await call('POST', `/api/v1/users/${NO_ID}/unlock`, plainToken);
    expect([r.status, r.body.code]).toEqual([404, 40401]);
  });
});
