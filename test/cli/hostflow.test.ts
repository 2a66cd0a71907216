// The `hostflow` CLI as an operator runs it: the bin (bin/hostflow.mjs through tsx on Node 22) in
// a child process against a real PostgreSQL database, with the real API on the same database to
// check what each command did (logins, locks, keys). `npx hostflow --help` runs in a fresh
// `git clone` of this repository; its node_modules is a symlink to this checkout's, standing in
// for the `npm install` a newcomer's first command does (tests may not install packages here).
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Secret, TOTP } from 'otpauth';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { createDatabase } from '../helpers/postgres.js';
import { createLogger } from '../../config/logger.js';
import { UserSchema, userTotpContext } from '../../db/entities/index.js';
import { formatKeyring, parseKeyring, Vault } from '../../db/vault.js';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '../..');
/** A newcomer's PATH: no node_modules/.bin (npm adds it only inside npm scripts). */
const PATH = (process.env.PATH ?? '').split(':').filter((d) => !d.endsWith('node_modules/.bin')).join(':');

describe('hostflow CLI on PostgreSQL', { timeout: 400_000 }, () => {
  let p: TestPlatform;
  let dir: string;
  let cliEnv: NodeJS.ProcessEnv;

  const cli = async (...args: string[]) => {
    try {
      const r = await run('node', [join(repo, 'bin/hostflow.mjs'), ...args], { cwd: repo, env: cliEnv, timeout: 120_000 });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };
  const printedPassword = (out: string) => /password[^\n]*:\n\n\s+(\S+)\n/.exec(out)?.[1];
  const login = async (username: string, password: string, ip = '10.60.0.1') => {
    const r = await fetch(`${p.baseUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': ip }, body: JSON.stringify({ username, password }) });
    return { status: r.status, body: (await r.json()) as { code: number; data: { access_token: string; restricted: string | null } } };
  };
  const me = async (token: string) => (await fetch(`${p.baseUrl}/api/v1/auth/me`, { headers: { authorization: `Bearer ${token}` } })).status;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hostflow-cli-'));
    const url = await createDatabase(inject('postgresUrl'), `hf_cli_${randomBytes(4).toString('hex')}`);
    p = await startTestPlatform({ databaseUrl: url, worker: false, logger: createLogger({ level: 'silent' }) });
    const ring = formatKeyring(p.keyring);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!/^(VITEST|DATABASE_URL|NODE_OPTIONS|HOSTFLOW_|DATA_DIR)/.test(k)) env[k] = v;
    cliEnv = { ...env, PATH, DATABASE_URL: url, DATA_DIR: join(dir, 'data'), HOSTFLOW_ENCRYPTION_KEYS: ring, LOG_LEVEL: 'info' };
  });
  afterAll(async () => {
    await p?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('`npx hostflow --help` works from a fresh clone and lists every command group', async () => {
    const clone = join(dir, 'clone');
    await run('git', ['clone', '--quiet', '--no-hardlinks', repo, clone], { timeout: 120_000 });
    await symlink(join(repo, 'node_modules'), join(clone, 'node_modules'));
    const r = await run('npx', ['hostflow', '--help'], { cwd: clone, env: { ...cliEnv, npm_config_yes: 'false' }, timeout: 120_000 });
    expect(r.stdout).toMatch(/^Usage: hostflow/m);
    for (const group of ['admin', 'user', 'apikey', 'keys', 'audit']) expect(r.stdout).toMatch(new RegExp(`^\\s+${group}\\b`, 'm'));
    const sub = await run('npx', ['hostflow', 'user', '--help'], { cwd: clone, env: cliEnv, timeout: 120_000 });
    expect(sub.stdout).toMatch(/reset-password <username>/);
    expect(sub.stdout).toMatch(/unlock <username>/);
    expect(sub.stdout).toMatch(/disable <username>/);
  });

  it('on a clone without node_modules the bin installs the dependencies first (npm install in the project), then runs', async () => {
    const clone = join(dir, 'bare-clone');
    await run('git', ['clone', '--quiet', '--no-hardlinks', repo, clone], { timeout: 120_000 });
    // Stand-in for npm (tests may not install packages here): records its arguments and links
    // this checkout's node_modules, which is what a real `npm install` would leave.
    const fakeBin = join(dir, 'fake-npm-bin');
    await mkdir(fakeBin, { recursive: true });
    await writeFile(join(fakeBin, 'npm'), `#!/bin/sh\necho "$PWD $*" > ${join(dir, 'npm-args')}\nln -s ${join(repo, 'node_modules')} node_modules\n`);
    await chmod(join(fakeBin, 'npm'), 0o755);
    const r = await run('node', [join(clone, 'bin/hostflow.mjs'), '--help'], { cwd: clone, env: { ...cliEnv, PATH: `${fakeBin}:${PATH}` }, timeout: 120_000 });
    expect(r.stderr).toMatch(/dependencies are missing; installing them first/);
    expect((await readFile(join(dir, 'npm-args'), 'utf8')).trim()).toBe(`${clone} install --no-audit --no-fund`);
    expect(r.stdout).toMatch(/^Usage: hostflow/m);
  });

  it('admin create: a one-time password, printed once, that must be changed at the first login', async () => {
    const r = await cli('admin', 'create', '--username', 'root', '--email', 'root@example.test');
    expect(r.code, r.stderr).toBe(0);
    const pw = printedPassword(r.stdout)!;
    expect(pw).toBeTruthy();
    expect(r.stdout).toMatch(/created root \([0-9a-f-]{36}\) with roles admin/);
    const first = await login('root', pw);
    expect([first.status, first.body.data.restricted]).toEqual([200, 'password_change']);
    const row = await p.db.em.fork().findOneOrFail(UserSchema, { username: 'root' });
    expect(row.passwordHash).toMatch(/^\$argon2id\$/);
    expect(JSON.stringify(row)).not.toContain(pw);
    // A second admin create of the same name is refused, naming the field, and exits 1.
    const again = await cli('admin', 'create', '--username', 'root');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^hostflow: username/m);
  });

  it('user reset-password | unlock | disable', async () => {
    const reset = await cli('user', 'reset-password', 'root');
    expect(reset.code, reset.stderr).toBe(0);
    const pw = printedPassword(reset.stdout)!;
    const after = await login('root', pw, '10.60.1.1');
    expect([after.status, after.body.data.restricted]).toEqual([200, 'password_change']);
    const newPw = 'Second-Passw0rd-9!';
    const ch = await fetch(`${p.baseUrl}/api/v1/auth/password/change`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${after.body.data.access_token}` }, body: JSON.stringify({ current_password: pw, new_password: newPw }) });
    expect(ch.status).toBe(200);

    // Five failures from five addresses lock the account; the CLI unlocks it.
    for (let i = 0; i < 5; i++) expect((await login('root', 'Wrong-passw0rd!', `10.60.2.${i + 1}`)).status).toBe(401);
    expect((await login('root', newPw, '10.60.3.1')).status).toBe(429);
    const unlock = await cli('user', 'unlock', 'root');
    expect([unlock.code, unlock.stdout.trim()]).toEqual([0, 'unlocked root']);
    const ok = await login('root', newPw, '10.60.3.1');
    expect([ok.status, ok.body.data.restricted]).toEqual([200, null]);

    const dis = await cli('user', 'disable', 'root');
    expect([dis.code, dis.stdout.trim()]).toEqual([0, 'disabled root']);
    expect(await me(ok.body.data.access_token)).toBe(401);
    expect((await login('root', newPw, '10.60.3.2')).status).toBe(401);
  });

  it('apikey create | list | revoke: the key is printed once, works with the roles asked, and stops when revoked', async () => {
    const made = await cli('apikey', 'create', '--user', 'admin', '--name', 'ci', '--roles', 'operator');
    expect(made.code, made.stderr).toBe(0);
    const key = /key \(shown once\): (hf_\S+)/.exec(made.stdout)![1]!;
    const id = /^api key ([0-9a-f-]{36}) \(ci\) for admin, roles operator$/m.exec(made.stdout)![1]!;
    const r = await fetch(`${p.baseUrl}/api/v1/auth/me`, { headers: { authorization: `Bearer ${key}` } });
    expect(((await r.json()) as { data: { roles: string[] } }).data.roles).toEqual(['operator']);
    const list = await cli('apikey', 'list', '--user', 'admin');
    expect(list.stdout).toMatch(new RegExp(`^${id}  admin  ci  hf_\\S*…  operator  active  last used `, 'm'));
    expect(list.stdout).not.toContain(key);
    const bad = await cli('apikey', 'create', '--user', 'admin', '--name', 'x', '--roles', 'emperor');
    expect([bad.code, bad.stderr.trim()]).toEqual([1, 'hostflow: roles: unknown roles: emperor']);
    const rev = await cli('apikey', 'revoke', id);
    expect([rev.code, rev.stdout.trim()]).toEqual([0, `revoked ${id} (ci)`]);
    expect(await me(key)).toBe(401);
  });

  it('keys rotate: a TOTP seed stored under the old key is re-encrypted under the new active one (same seed), once', async () => {
    // A user with TOTP, enrolled through the API (seed encrypted under the platform's key).
    const made = await p.api('POST', '/api/v1/users', { body: { username: 'tina', roles: ['requester'] } });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const t = await login('tina', made.body.data.initial_password, '10.60.4.1');
    expect(t.status, JSON.stringify(t.body)).toBe(200);
    const auth = { 'content-type': 'application/json', authorization: `Bearer ${t.body.data.access_token}` };
    const ch = await fetch(`${p.baseUrl}/api/v1/auth/password/change`, { method: 'POST', headers: auth, body: JSON.stringify({ current_password: made.body.data.initial_password, new_password: 'Seed-rotation-Passw0rd!' }) });
    expect(ch.status).toBe(200);
    const t2 = await login('tina', 'Seed-rotation-Passw0rd!', '10.60.4.1');
    expect(t2.status, JSON.stringify(t2.body)).toBe(200);
    const auth2 = { 'content-type': 'application/json', authorization: `Bearer ${t2.body.data.access_token}` };
    const en = (await (await fetch(`${p.baseUrl}/api/v1/auth/mfa/totp/enroll`, { method: 'POST', headers: auth2 })).json()) as { data: { secret: string } };
    const totp = new TOTP({ secret: Secret.fromBase32(en.data.secret), digits: 6, period: 30, algorithm: 'SHA1' });
    const conf = await fetch(`${p.baseUrl}/api/v1/auth/mfa/totp/confirm`, { method: 'POST', headers: auth2, body: JSON.stringify({ code: totp.generate({ timestamp: p.clock.now().getTime() }) }) });
    expect(conf.status).toBe(200);
    const seedRow = async () => (await p.db.em.fork().findOneOrFail(UserSchema, { username: 'tina' })).totpSecretCiphertext!;
    expect((await seedRow()).split('.')[1]).toBe(p.keyring.activeKeyId);

    const fresh = `k${randomBytes(3).toString('hex')}:${randomBytes(32).toString('base64')}`;
    const ring = `${fresh},${cliEnv.HOSTFLOW_ENCRYPTION_KEYS}`;
    // With the platform's own keyring: everything is current already.
    const r = await cli('keys', 'rotate');
    expect(r.stdout, r.stderr).toMatch(/re-encrypted 0 host credentials, 0 account passwords and 0 TOTP seeds \(\d+ already current\)/);
    const rotated = await run('node', [join(repo, 'bin/hostflow.mjs'), 'keys', 'rotate'], { cwd: repo, env: { ...cliEnv, HOSTFLOW_ENCRYPTION_KEYS: ring }, timeout: 120_000 });
    expect(rotated.stdout).toMatch(new RegExp(`^active key ${fresh.split(':')[0]}: re-encrypted \\d+ host credentials, \\d+ account passwords and 1 TOTP seeds`, 'm'));
    const after = await seedRow();
    expect(after.split('.')[1]).toBe(fresh.split(':')[0]);
    const tina = await p.db.em.fork().findOneOrFail(UserSchema, { username: 'tina' });
    expect(new Vault(parseKeyring(ring)).decrypt(after, userTotpContext(tina.id))).toBe(en.data.secret);
    // Idempotent: a second run finds nothing to do.
    const again = await run('node', [join(repo, 'bin/hostflow.mjs'), 'keys', 'rotate'], { cwd: repo, env: { ...cliEnv, HOSTFLOW_ENCRYPTION_KEYS: ring }, timeout: 120_000 });
    expect(again.stdout).toMatch(/re-encrypted 0 host credentials, 0 account passwords and 0 TOTP seeds/);
  });
});
