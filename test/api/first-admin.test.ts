// The embedded default's first start (ensureFirstAdmin, called by scripts/start.ts) and the
// "MFA required for roles" policy, against the real app on PGlite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret, TOTP } from 'otpauth';
import { openTestDb, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { ensureFirstAdmin } from '../../api/routes/users/service.js';
import { identityDefaults } from '../../api/deps.js';
import { UserSchema } from '../../db/entities/index.js';

describe('first admin', () => {
  it('is created once, on an empty database, with a one-time must-change password', async () => {
    const db = await openTestDb('pglite');
    try {
      const d = { em: db.em, identity: identityDefaults() };
      const first = await ensureFirstAdmin(d);
      expect(first?.username).toBe('admin');
      expect(first!.password.length).toBeGreaterThanOrEqual(20);
      expect(await ensureFirstAdmin(d)).toBeNull();
      const row = await db.em.fork().findOneOrFail(UserSchema, { username: 'admin' });
      expect(row.mustChangePassword).toBe(true);
      expect(row.roles).toEqual(['admin', 'approver', 'operator']);
      expect(row.passwordHash).toMatch(/^\$argon2id\$/);
      expect(await d.identity.hasher.verify(first!.password, row.passwordHash!)).toBe(true);
    } finally {
      await db.close();
    }
  });
});

describe('MFA required for roles (policy)', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await startTestPlatform({ worker: false, auth: { mfaRequiredRoles: ['auditor'] } });
  });
  afterAll(() => p?.close());

  it('a user with such a role can only enrol until a second factor is confirmed', async () => {
    const made = await p.api('POST', '/api/v1/users', { body: { username: 'opsy', roles: ['auditor', 'requester'] } });
    const login = async (password: string, extra: object = {}) =>
      (await p.api('POST', '/api/v1/auth/login', { token: null, body: { username: 'opsy', password, ...extra } })).body;
    const first = await login(made.body.data.initial_password);
    const change = await p.api('POST', '/api/v1/auth/password/change', { token: first.data.access_token, body: { current_password: made.body.data.initial_password, new_password: 'Second-factor-9!' } });
    expect(change.status).toBe(200);
    const t = first.data.access_token as string;
    const blocked = await p.api('GET', '/api/v1/hosts', { token: t });
    expect([blocked.status, blocked.body.code]).toEqual([403, 40302]);
    expect(blocked.body.message).toContain('MFA');
    expect((await p.api('GET', '/api/v1/auth/me', { token: t })).body.data.restricted).toBe('mfa_enrollment');
    const en = await p.api('POST', '/api/v1/auth/mfa/totp/enroll', { token: t });
    const totp = new TOTP({ secret: Secret.fromBase32(en.body.data.secret), digits: 6, period: 30 });
    expect((await p.api('POST', '/api/v1/auth/mfa/totp/confirm', { token: t, body: { code: totp.generate({ timestamp: p.clock.now().getTime() }) } })).status).toBe(200);
    expect((await p.api('GET', '/api/v1/hosts', { token: t })).status).toBe(200);
  });
});
