// Identity end to end over HTTP against the real app on PGlite and PostgreSQL, a real SMTP server,
// real argon2id and real TOTP computations; the clock of the identity layer is injected.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { simpleParser } from 'mailparser';
import { Secret, TOTP } from 'otpauth';
import { DB_KINDS, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startSmtp } from '../helpers/smtp.js';
import { createLogger } from '../../config/logger.js';
import { LoginEventSchema, UserSchema } from '../../db/entities/index.js';
import { hashPasswordScrypt, PasswordHasher } from '../../db/password-hash.js';
import { issuePasswordToken } from '../../api/routes/auth/password-tokens.js';

interface Res {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read loosely typed JSON
  body: { code: number; message: string; data: any; errors?: Array<{ field: string; message: string }> };
}

describe.each(DB_KINDS)('identity on %s', (kind) => {
  let p: TestPlatform;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  const logLines: string[] = [];
  /** Every secret the tests see: none may appear in a log line or a later response. */
  const secrets: string[] = [];
  let n = 0;
  const uniq = (s: string) => `${s}${++n}${kind[0]}`;

  beforeAll(async () => {
    smtp = await startSmtp();
    const sink = new Writable({ write: (c, _e, cb) => (logLines.push(String(c)), cb()) });
    p = await startTestPlatform({ db: kind, worker: false, smtpUrl: smtp.url, logger: createLogger({ level: 'trace', destination: sink }) });
  });
  afterAll(async () => {
    await p?.close();
    await smtp?.stop();
  });

  async function call(method: string, path: string, o: { body?: unknown; token?: string; ip?: string; ua?: string } = {}): Promise<Res> {
    const res = await fetch(p.baseUrl + path, {
      method,
      headers: {
        ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
        ...(o.ip ? { 'x-forwarded-for': o.ip } : {}),
        'user-agent': o.ua ?? 'vitest',
      },
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
    });
    return { status: res.status, body: (await res.json()) as Res['body'] };
  }
  const login = (username: string, password: string, o: { ip?: string; ua?: string; extra?: object } = {}) =>
    call('POST', '/api/v1/auth/login', { body: { username, password, ...o.extra }, ip: o.ip ?? '10.9.9.9', ua: o.ua });

  /** A user with a known password that need not be changed, via the API (initial password → change). */
  async function makeUser(roles: string[] = ['requester'], email?: string): Promise<{ id: string; username: string; password: string }> {
    const username = uniq('u');
    const made = await p.api('POST', '/api/v1/users', { body: { username, roles, ...(email ? { email } : {}) } });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const initial = made.body.data.initial_password as string;
    secrets.push(initial);
    const first = await login(username, initial, { ip: `10.1.${n}.1` });
    expect(first.body.data.restricted).toBe('password_change');
    const password = `Pw-${n}-${kind}-Zq9!`;
    const ch = await call('POST', '/api/v1/auth/password/change', { token: first.body.data.access_token, body: { current_password: initial, new_password: password } });
    expect(ch.status, JSON.stringify(ch.body)).toBe(200);
    expect((await call('POST', '/api/v1/auth/logout', { token: first.body.data.access_token })).status).toBe(200);
    secrets.push(password);
    return { id: made.body.data.id, username, password };
  }
  const tokensOf = (r: Res) => {
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    secrets.push(r.body.data.access_token, r.body.data.refresh_token);
    return r.body.data as { access_token: string; refresh_token: string; session_id: string };
  };

  it('brute force: the (N+1)th attempt is refused even with the right password; the lock ends after 30 min', async () => {
    const u = await makeUser();
    for (let i = 0; i < 5; i++) {
      const r = await login(u.username, 'Wrong-password-1!', { ip: `10.2.0.${i + 1}` });
      expect([r.status, r.body.code]).toEqual([401, 40101]);
    }
    const locked = await login(u.username, u.password, { ip: '10.2.0.99' });
    expect([locked.status, locked.body.code]).toEqual([429, 42901]);
    expect(locked.body.data.retry_after_seconds).toBeGreaterThan(29 * 60);
    expect(locked.body.data.retry_after_seconds).toBeLessThanOrEqual(30 * 60);
    p.clock.advance(29 * 60_000);
    const raw = await fetch(`${p.baseUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': '10.2.0.99' }, body: JSON.stringify({ username: u.username, password: u.password }) });
    expect(raw.status).toBe(429);
    const retryAfter = Number(raw.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    p.clock.advance(2 * 60_000);
    tokensOf(await login(u.username, u.password, { ip: '10.2.0.99' }));
    const events = await p.db.em.fork().find(LoginEventSchema, { userId: u.id }, { orderBy: { createdAt: 'asc' } });
    expect(events.map((e) => e.kind)).toEqual(expect.arrayContaining(['login_failure', 'login_success']));
    const lockedEvents = await p.db.em.fork().find(LoginEventSchema, { username: u.username, kind: 'login_locked' });
    expect(lockedEvents.length).toBe(2);
  });

  it('IP lock and account lock are separate: one IP spraying accounts is stopped; others are not', async () => {
    const victim = await makeUser();
    const other = await makeUser();
    // One source address, five different (unknown) usernames: that address is locked.
    for (let i = 0; i < 5; i++) expect((await login(uniq('ghost'), 'Nope-nope-1!', { ip: '10.3.0.1' })).status).toBe(401);
    expect((await login(victim.username, victim.password, { ip: '10.3.0.1' })).status).toBe(429);
    // The same account from another address is not locked (its own counter saw no failure).
    tokensOf(await login(victim.username, victim.password, { ip: '10.3.0.2' }));
    // One account sprayed from five addresses: that account is locked, from any address...
    for (let i = 0; i < 5; i++) expect((await login(other.username, 'Nope-nope-1!', { ip: `10.4.0.${i + 1}` })).status).toBe(401);
    expect((await login(other.username, other.password, { ip: '10.4.1.1' })).status).toBe(429);
    // ...while another user on one of those addresses is fine (one failure there, below the IP threshold).
    tokensOf(await login(victim.username, victim.password, { ip: '10.4.0.1' }));
    // An admin unlocks the account.
    const un = await p.api('POST', `/api/v1/users/${other.id}/unlock`);
    expect(un.status, JSON.stringify(un.body)).toBe(200);
    expect(un.body.data.was_locked).toBe(true);
    tokensOf(await login(other.username, other.password, { ip: '10.4.1.1' }));
    // Lock answers say nothing about whether the account exists.
    const ghost = uniq('ghost');
    for (let i = 0; i < 5; i++) await login(ghost, 'Nope-nope-1!', { ip: `10.5.0.${i + 1}` });
    const ghostLocked = await login(ghost, 'Nope-nope-1!', { ip: '10.5.1.1' });
    expect(ghostLocked.body).toMatchObject({ code: 42901 });
    expect((await login(other.username, 'Nope-nope-1!', { ip: '10.5.2.1' })).body.message).toBe((await login(uniq('ghost'), 'Nope-nope-1!', { ip: '10.5.2.2' })).body.message);
  });

  it('a missing user costs the same argon2id verification as a wrong password, with the same answer', async () => {
    const u = await makeUser();
    const seen: string[] = [];
    const hasher = p.identity.hasher;
    const orig = hasher.verify.bind(hasher);
    hasher.verify = async (pw, stored) => {
      seen.push(stored.split('$').slice(0, 4).join('$'));
      return orig(pw, stored);
    };
    try {
      const wrong = await login(u.username, 'Wrong-password-1!', { ip: '10.6.0.1' });
      const wrongParams = seen.splice(0);
      const missing = await login(uniq('nobody'), 'Wrong-password-1!', { ip: '10.6.0.2' });
      const missingParams = seen.splice(0);
      expect(wrong.body).toEqual({ ...missing.body, request_id: wrong.body && (wrong.body as { request_id?: string }).request_id });
      expect(wrongParams).toHaveLength(1);
      expect(missingParams).toEqual(wrongParams);
      expect(wrongParams[0]).toBe('$argon2id$v=19$m=19456,t=2,p=1');
    } finally {
      hasher.verify = orig;
    }
  });

  it('scrypt hashes from before verify and are rehashed to argon2id at login', async () => {
    const u = await makeUser();
    const em = p.db.em.fork();
    const row = await em.findOneOrFail(UserSchema, { id: u.id });
    row.passwordHash = await hashPasswordScrypt(u.password);
    await em.flush();
    tokensOf(await login(u.username, u.password, { ip: '10.7.0.1' }));
    const after = await p.db.em.fork().findOneOrFail(UserSchema, { id: u.id });
    expect(after.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    tokensOf(await login(u.username, u.password, { ip: '10.7.0.1' }));
  });

  it('changed argon2id parameters upgrade the hash at the next login; a password older than the max age forces a change', async () => {
    const u = await makeUser();
    const orig = p.identity.hasher;
    p.identity.hasher = new PasswordHasher({ memoryCost: 8192, timeCost: 3, parallelism: 1 });
    try {
      tokensOf(await login(u.username, u.password, { ip: '10.7.1.1' }));
      expect((await p.db.em.fork().findOneOrFail(UserSchema, { id: u.id })).passwordHash).toMatch(/^\$argon2id\$v=19\$m=8192,t=3,p=1\$/);
    } finally {
      p.identity.hasher = orig;
    }
    tokensOf(await login(u.username, u.password, { ip: '10.7.1.1' }));
    expect((await p.db.em.fork().findOneOrFail(UserSchema, { id: u.id })).passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);

    const policy = p.identity.settings.password;
    p.identity.settings.password = { ...policy, maxAgeDays: 90 };
    try {
      expect((await login(u.username, u.password, { ip: '10.7.1.1' })).body.data.restricted).toBeNull();
      p.clock.advance(91 * 86_400_000);
      const old = tokensOf(await login(u.username, u.password, { ip: '10.7.1.1' }));
      expect((await login(u.username, u.password, { ip: '10.7.1.1' })).body.data.restricted).toBe('password_change');
      expect((await call('GET', '/api/v1/hosts', { token: old.access_token })).body.code).toBe(40302);
      const ch = await call('POST', '/api/v1/auth/password/change', { token: old.access_token, body: { current_password: u.password, new_password: 'Aged-out-Passw0rd!' } });
      expect(ch.status, JSON.stringify(ch.body)).toBe(200);
      secrets.push('Aged-out-Passw0rd!');
      expect((await login(u.username, 'Aged-out-Passw0rd!', { ip: '10.7.1.1' })).body.data.restricted).toBeNull();
    } finally {
      p.identity.settings.password = policy;
    }
  });

  it('refresh tokens rotate on every use; reusing one revokes the whole session and records a security event', async () => {
    const u = await makeUser();
    const t1 = tokensOf(await login(u.username, u.password, { ip: '10.8.0.1' }));
    const t2 = tokensOf(await call('POST', '/api/v1/auth/refresh', { body: { refresh_token: t1.refresh_token } }));
    expect(t2.refresh_token).not.toBe(t1.refresh_token);
    expect(t2.session_id).toBe(t1.session_id);
    expect((await call('GET', '/api/v1/auth/me', { token: t2.access_token })).body.data.username).toBe(u.username);
    // The old refresh token again: refused, and the session family ends.
    const reuse = await call('POST', '/api/v1/auth/refresh', { body: { refresh_token: t1.refresh_token } });
    expect([reuse.status, reuse.body.code]).toEqual([401, 40101]);
    expect((await call('POST', '/api/v1/auth/refresh', { body: { refresh_token: t2.refresh_token } })).status).toBe(401);
    expect((await call('GET', '/api/v1/auth/me', { token: t2.access_token })).status).toBe(401);
    const ev = await p.db.em.fork().find(LoginEventSchema, { sessionId: t1.session_id, kind: 'refresh_reuse' });
    expect(ev).toHaveLength(1);
    expect(ev[0]!.securityEvent).toBe(true);
  });

  it('logout and an admin kick-out take effect on the next request; online users are listed', async () => {
    const u = await makeUser();
    const a = tokensOf(await login(u.username, u.password, { ip: '10.10.0.1', ua: 'laptop' }));
    const b = tokensOf(await login(u.username, u.password, { ip: '10.10.0.2', ua: 'phone' }));
    const mine = await call('GET', '/api/v1/auth/sessions', { token: a.access_token });
    expect(mine.body.data.items.map((s: { user_agent: string }) => s.user_agent).sort()).toEqual(['laptop', 'phone']);
    expect((await call('POST', '/api/v1/auth/logout', { token: a.access_token })).status).toBe(200);
    expect((await call('GET', '/api/v1/auth/me', { token: a.access_token })).status).toBe(401);
    const online = await p.api('GET', `/api/v1/sessions?user_id=${u.id}`);
    expect(online.body.data.items.map((s: { id: string; username: string }) => [s.id, s.username])).toEqual([[b.session_id, u.username]]);
    expect((await call('GET', '/api/v1/sessions', { token: b.access_token })).status).toBe(403);
    expect((await p.api('DELETE', `/api/v1/sessions/${b.session_id}`)).status).toBe(200);
    const kicked = await call('GET', '/api/v1/auth/me', { token: b.access_token });
    expect([kicked.status, kicked.body.code]).toEqual([401, 40101]);
    expect((await call('POST', '/api/v1/auth/refresh', { body: { refresh_token: b.refresh_token } })).status).toBe(401);
  });

  it('a 4th session evicts the oldest (default) or is refused (policy); idle sessions end after 30 min', async () => {
    const u = await makeUser();
    const s = [];
    for (let i = 0; i < 4; i++) s.push(tokensOf(await login(u.username, u.password, { ip: '10.11.0.1', ua: `dev${i}` })));
    expect((await call('GET', '/api/v1/auth/me', { token: s[0]!.access_token })).status).toBe(401);
    for (const t of s.slice(1)) expect((await call('GET', '/api/v1/auth/me', { token: t.access_token })).status).toBe(200);
    p.identity.settings.sessionLimitPolicy = 'refuse';
    try {
      const refused = await login(u.username, u.password, { ip: '10.11.0.1' });
      expect([refused.status, refused.body.code]).toEqual([409, 40901]);
    } finally {
      p.identity.settings.sessionLimitPolicy = 'evict-oldest';
    }
    // Idle: s[1] is used at 14 min; s[2] and s[3] are not. At 34 min they have ended, s[1] has not.
    p.clock.advance(14 * 60_000);
    expect((await call('GET', '/api/v1/auth/me', { token: s[1]!.access_token })).status).toBe(200);
    p.clock.advance(20 * 60_000);
    const idle = await call('POST', '/api/v1/auth/refresh', { body: { refresh_token: s[2]!.refresh_token } });
    expect([idle.status, idle.body.message]).toEqual([401, 'session ended (idle timeout)']);
    expect((await call('POST', '/api/v1/auth/refresh', { body: { refresh_token: s[3]!.refresh_token } })).status).toBe(401);
    const listed = await p.api('GET', `/api/v1/sessions?user_id=${u.id}`);
    expect(listed.body.data.items.map((x: { id: string }) => x.id)).toEqual([s[1]!.session_id]);
    // s[1]'s access token expired (15 min), but its refresh token renews it.
    expect((await call('GET', '/api/v1/auth/me', { token: s[1]!.access_token })).status).toBe(401);
    const renewed = tokensOf(await call('POST', '/api/v1/auth/refresh', { body: { refresh_token: s[1]!.refresh_token } }));
    expect((await call('GET', '/api/v1/auth/me', { token: renewed.access_token })).status).toBe(200);
  });

  it('TOTP: enrol with a real TOTP computation, log in with a code, recovery codes work once, step-up is required then satisfied', async () => {
    const u = await makeUser(['admin']);
    const t = tokensOf(await login(u.username, u.password, { ip: '10.12.0.1' }));
    const en = await call('POST', '/api/v1/auth/mfa/totp/enroll', { token: t.access_token });
    expect(en.status, JSON.stringify(en.body)).toBe(200);
    expect(en.body.data.otpauth_uri).toMatch(/^otpauth:\/\/totp\/Hostflow:/);
    expect(en.body.data.qr_data_url).toMatch(/^data:image\/png;base64,/);
    const seed = en.body.data.secret as string;
    secrets.push(seed);
    const totp = new TOTP({ secret: Secret.fromBase32(seed), digits: 6, period: 30, algorithm: 'SHA1' });
    const code = () => totp.generate({ timestamp: p.clock.now().getTime() });
    expect((await call('POST', '/api/v1/auth/mfa/totp/confirm', { token: t.access_token, body: { code: '000000' === code() ? '111111' : '000000' } })).status).toBe(400);
    const conf = await call('POST', '/api/v1/auth/mfa/totp/confirm', { token: t.access_token, body: { code: code() } });
    expect(conf.status, JSON.stringify(conf.body)).toBe(200);
    const recovery = conf.body.data.recovery_codes as string[];
    expect(recovery).toHaveLength(10);
    secrets.push(...recovery);

    // Password alone is not enough now.
    const need = await login(u.username, u.password, { ip: '10.12.0.1' });
    expect([need.status, need.body.code, need.body.data.methods]).toEqual([401, 40102, ['totp', 'recovery']]);
    // The code just used for confirmation cannot be replayed; the next one works.
    expect((await login(u.username, u.password, { ip: '10.12.0.1', extra: { totp_code: code() } })).status).toBe(401);
    p.clock.advance(30_000);
    const withTotp = tokensOf(await login(u.username, u.password, { ip: '10.12.0.1', extra: { totp_code: code() } }));
    expect((await call('GET', '/api/v1/auth/me', { token: withTotp.access_token })).body.data.mfa).toMatchObject({ totp: true, recovery_codes_left: 10 });

    // A recovery code works once.
    tokensOf(await login(u.username, u.password, { ip: '10.12.0.1', extra: { recovery_code: recovery[0] } }));
    expect((await login(u.username, u.password, { ip: '10.12.0.1', extra: { recovery_code: recovery[0] } })).status).toBe(401);

    // Step-up: fresh from the TOTP login, unlock passes; 6 minutes later it needs a new check.
    const target = await makeUser();
    expect((await call('POST', `/api/v1/users/${target.id}/unlock`, { token: withTotp.access_token })).status).toBe(200);
    p.clock.advance(6 * 60_000);
    const stale = await call('POST', `/api/v1/users/${target.id}/unlock`, { token: withTotp.access_token });
    expect([stale.status, stale.body.code]).toEqual([401, 40103]);
    expect(stale.body.message).toContain('/api/v1/auth/mfa/verify');
    const v = await call('POST', '/api/v1/auth/mfa/verify', { token: withTotp.access_token, body: { totp_code: code() } });
    expect(v.status, JSON.stringify(v.body)).toBe(200);
    expect((await call('POST', `/api/v1/users/${target.id}/unlock`, { token: withTotp.access_token })).status).toBe(200);
    // An API key of an MFA user cannot pass step-up routes.
    const key = await call('POST', '/api/v1/api-keys', { token: withTotp.access_token, body: { name: 'ci' } });
    secrets.push(key.body.data.key);
    expect((await call('POST', `/api/v1/users/${target.id}/unlock`, { token: key.body.data.key })).body.code).toBe(40103);
  });

  it('email codes as a second factor, through SMTP', async () => {
    const email = `${uniq('mail')}@example.test`;
    const u = await makeUser(['requester'], email);
    const t = tokensOf(await login(u.username, u.password, { ip: '10.13.0.1' }));
    const before = smtp.messages.length;
    expect((await call('POST', '/api/v1/auth/mfa/email/enroll', { token: t.access_token })).status).toBe(200);
    const codeFrom = async (after: number) => {
      await expect.poll(() => smtp.messages.slice(after).filter((m) => m.to.includes(email)).length, { timeout: 10_000 }).toBeGreaterThan(0);
      const m = smtp.messages.slice(after).filter((x) => x.to.includes(email)).at(-1)!;
      const text = (await simpleParser(m.raw)).text ?? '';
      const c = /code is (\d{6})/.exec(text)![1]!;
      secrets.push(c);
      return c;
    };
    const c1 = await codeFrom(before);
    expect((await call('POST', '/api/v1/auth/mfa/email/confirm', { token: t.access_token, body: { code: c1 } })).status).toBe(200);
    const mark = smtp.messages.length;
    const need = await login(u.username, u.password, { ip: '10.13.0.1' });
    expect([need.body.code, need.body.data.methods]).toEqual([40102, ['email']]);
    const c2 = await codeFrom(mark);
    tokensOf(await login(u.username, u.password, { ip: '10.13.0.1', extra: { email_code: c2 } }));
    expect((await login(u.username, u.password, { ip: '10.13.0.1', extra: { email_code: c2 } })).status).toBe(401);
  });

  it('password policy (naming the rule) and history', async () => {
    const u = await makeUser();
    const t = tokensOf(await login(u.username, u.password, { ip: '10.14.0.1' }));
    const change = (np: string, cur = u.password) => call('POST', '/api/v1/auth/password/change', { token: t.access_token, body: { current_password: cur, new_password: np } });
    const cases: Array<[string, string]> = [
      ['Sh0rt!', 'min_length'],
      ['alllowercase-123', 'character_classes'],
      [`Xx1!${u.username}`, 'not_username'],
      [u.password, 'history'],
    ];
    for (const [pw, rule] of cases) {
      const r = await change(pw);
      expect([r.status, r.body.code], pw).toEqual([400, 40001]);
      expect(r.body.errors?.[0]?.field).toBe('new_password');
      expect(r.body.errors?.[0]?.message).toContain(rule);
    }
    expect((await change('Next-pass-42!', 'Wrong-current-1!')).body.errors?.[0]?.field).toBe('current_password');
    let cur = u.password;
    for (const np of ['Second-pass-1!', 'Third-pass-2!']) {
      expect((await change(np, cur)).status).toBe(200);
      cur = np;
    }
    const back = await change(u.password, cur);
    expect(back.body.errors?.[0]?.message).toContain('history');
    secrets.push('Second-pass-1!', 'Third-pass-2!');
  });

  it('password reset by email: same answer for unknown addresses, a working single-use token; activation tokens work too', async () => {
    const email = `${uniq('reset')}@example.test`;
    const u = await makeUser(['requester'], email);
    const unknown = await call('POST', '/api/v1/auth/password/reset', { body: { email: 'nobody@example.test' } });
    const before = smtp.messages.length;
    const known = await call('POST', '/api/v1/auth/password/reset', { body: { email } });
    expect(known.status).toBe(200);
    expect(known.body.data).toEqual(unknown.body.data);
    await expect.poll(() => smtp.messages.slice(before).filter((m) => m.to.includes(email)).length, { timeout: 10_000 }).toBe(1);
    const mail = await simpleParser(smtp.messages.slice(before).find((m) => m.to.includes(email))!.raw);
    const token = /token=([A-Za-z0-9_%-]+)/.exec(mail.text ?? '')![1]!;
    secrets.push(decodeURIComponent(token));
    expect(mail.text).toContain(`${p.baseUrl}/reset-password?token=`);
    // A refused password leaves the token usable.
    const weak = await call('POST', '/api/v1/auth/password/reset/confirm', { body: { token: decodeURIComponent(token), new_password: 'weak' } });
    expect(weak.body.errors?.[0]?.field).toBe('new_password');
    const ok = await call('POST', '/api/v1/auth/password/reset/confirm', { body: { token: decodeURIComponent(token), new_password: 'Reset-pass-77!' } });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    secrets.push('Reset-pass-77!');
    tokensOf(await login(u.username, 'Reset-pass-77!', { ip: '10.15.0.1' }));
    const again = await call('POST', '/api/v1/auth/password/reset/confirm', { body: { token: decodeURIComponent(token), new_password: 'Reset-pass-78!' } });
    expect([again.status, again.body.errors?.[0]?.field]).toEqual([400, 'token']);
    // An activation token (what the registration workflow issues) is accepted by the same endpoint.
    const act = await issuePasswordToken(p.db.em, { userId: u.id, purpose: 'activation', ttlMinutes: 60, now: p.clock.now() });
    secrets.push(act.token);
    expect((await call('POST', '/api/v1/auth/password/reset/confirm', { body: { token: act.token, new_password: 'Activated-pass-9!' } })).status).toBe(200);
    secrets.push('Activated-pass-9!');
    tokensOf(await login(u.username, 'Activated-pass-9!', { ip: '10.15.0.1' }));
  });

  it('API keys: shown once, a subset of the owner roles, last use recorded, revocable, expiring', async () => {
    const u = await makeUser(['requester', 'operator']);
    const t = tokensOf(await login(u.username, u.password, { ip: '10.16.0.1' }));
    const tooMuch = await call('POST', '/api/v1/api-keys', { token: t.access_token, body: { name: 'x', roles: ['admin'] } });
    expect([tooMuch.status, tooMuch.body.errors?.[0]?.field]).toEqual([400, 'roles']);
    const made = await call('POST', '/api/v1/api-keys', { token: t.access_token, body: { name: 'ci', roles: ['requester'] } });
    expect(made.status).toBe(201);
    const key = made.body.data.key as string;
    secrets.push(key);
    const me = await call('GET', '/api/v1/auth/me', { token: key, ip: '10.16.0.7' });
    expect(me.body.data.roles).toEqual(['requester']);
    expect((await call('POST', '/api/v1/customers', { token: key, ip: '10.16.0.7', body: { name: 'N', code: 'nope' } })).status).toBe(403);
    const list = await call('GET', '/api/v1/api-keys', { token: t.access_token });
    expect(list.body.data.items[0]).toMatchObject({ name: 'ci', last_used_ip: '10.16.0.7', revoked_at: null });
    expect(JSON.stringify(list.body)).not.toContain(key);
    expect((await call('DELETE', `/api/v1/api-keys/${made.body.data.id}`, { token: t.access_token })).status).toBe(200);
    expect((await call('GET', '/api/v1/auth/me', { token: key })).status).toBe(401);
    const soon = await call('POST', '/api/v1/api-keys', { token: t.access_token, body: { name: 'short', expires_at: new Date(p.clock.now().getTime() + 60_000).toISOString() } });
    secrets.push(soon.body.data.key);
    expect((await call('GET', '/api/v1/auth/me', { token: soon.body.data.key })).status).toBe(200);
    p.clock.advance(2 * 60_000);
    expect((await call('GET', '/api/v1/auth/me', { token: soon.body.data.key })).status).toBe(401);
  });

  it('the public registration submit is rate-limited per source address: 429 with Retry-After, other addresses unaffected, the window ends', async () => {
    const dept = await p.api('POST', '/api/v1/departments', { body: { name: uniq('Rate dept') } });
    expect(dept.status, JSON.stringify(dept.body)).toBe(201);
    const submit = async (ip: string, i: number) => {
      const res = await fetch(`${p.baseUrl}/api/v1/registrations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
        body: JSON.stringify({ email: `${uniq('rl')}-${i}@example.test`, full_name: 'Rate Limited', department_id: dept.body.data.id, requested_roles: ['requester'], reason: 'rate limit test' }),
      });
      return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Res['body'] };
    };
    const limit = p.identity.settings.registrationRateLimit;
    expect(limit).toEqual({ max: 5, windowMinutes: 60 });
    p.clock.advance(60 * 60_000); // a window of its own (earlier tests' clock moves are not aligned to it)
    for (let i = 0; i < 5; i++) expect((await submit('10.18.0.1', i)).status).toBe(202);
    p.clock.advance(10 * 60_000);
    const over = await submit('10.18.0.1', 6);
    expect([over.status, over.body.code]).toEqual([429, 42902]);
    // The window began at the first submit (a few real seconds before the 6th): 50 minutes left, less those seconds.
    expect(Number(over.retryAfter)).toBeGreaterThan(49 * 60);
    expect(Number(over.retryAfter)).toBeLessThanOrEqual(50 * 60);
    expect(over.body.data.retry_after_seconds).toBe(Number(over.retryAfter));
    // Refused before any work: no registration row for it.
    const rows = await p.db.em.getConnection().execute<Array<{ n: number }>>(`select count(*)::int as n from registrations where email like ?`, [`%-6@example.test`]);
    expect(rows[0]!.n).toBe(0);
    // Another address is not affected; after the window the first one may submit again.
    expect((await submit('10.18.0.2', 7)).status).toBe(202);
    p.clock.advance(50 * 60_000 + 1000);
    expect((await submit('10.18.0.1', 8)).status).toBe(202);
    // Configurable: 0 turns it off.
    p.identity.settings.registrationRateLimit = { max: 0, windowMinutes: 60 };
    try {
      for (let i = 0; i < 6; i++) expect((await submit('10.18.0.3', 10 + i)).status).toBe(202);
    } finally {
      p.identity.settings.registrationRateLimit = limit;
    }
  });

  it('must-change sessions can only change the password; no secret appears in logs or later responses', async () => {
    const made = await p.api('POST', '/api/v1/users', { body: { username: uniq('fresh'), roles: ['requester'] } });
    secrets.push(made.body.data.initial_password);
    const r = tokensOf(await login(made.body.data.username, made.body.data.initial_password, { ip: '10.17.0.1' }));
    expect((await call('GET', '/api/v1/hosts', { token: r.access_token })).body.code).toBe(40302);
    expect((await call('GET', '/api/v1/auth/me', { token: r.access_token })).body.data.restricted).toBe('password_change');

    const later = JSON.stringify([(await p.api('GET', '/api/v1/users?page_size=200')).body, (await p.api('GET', '/api/v1/sessions?page_size=200')).body, (await p.api('GET', '/api/v1/api-keys')).body]);
    const logs = logLines.join('');
    expect(logLines.length).toBeGreaterThan(0);
    expect(secrets.length).toBeGreaterThan(20);
    for (const s of secrets) {
      expect(logs.includes(s), 'secret in logs').toBe(false);
      expect(later.includes(s), 'secret in a later response').toBe(false);
    }
    const em = p.db.em.fork();
    const rows = JSON.stringify(await em.getConnection().execute('select * from users')) + JSON.stringify(await em.getConnection().execute('select * from login_events'));
    for (const s of secrets) expect(rows.includes(s), 'secret stored in plain text').toBe(false);
  });
});
