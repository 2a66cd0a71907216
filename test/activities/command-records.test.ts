// Command records: the executor layer keeps the full (secret-redacted, 64 KiB-bounded) output of
// every remote command that changes a host; GET /api/v1/hosts/:id/commands reads it. Real sshd,
// PGlite, the platform's API.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { startSshd, type SshTestHost } from '../helpers/sshd.js';
import { createLogger } from '../../config/logger.js';
import { COMMAND_OUTPUT_LIMIT, CommandRecordSchema } from '../../db/entities/index.js';
import { boundOutput, recordedExecutor, redactOutput, stdinSecrets } from '../../activities/remote/command-records.js';
import { createApiKey } from '../../api/routes/api-keys/service.js';
import { UserSchema } from '../../db/entities/index.js';

describe('redaction and bounds of recorded output', () => {
  it('redacts stdin secrets (whole lines and the secret of user:secret), PEM private keys, secret assignments, bearer credentials and token shapes', () => {
    const secrets = stdinSecrets('alice:Wh1te-Rabbit-42\n');
    expect(secrets).toEqual(['alice:Wh1te-Rabbit-42', 'Wh1te-Rabbit-42']);
    const text = [
      'echoed: alice:Wh1te-Rabbit-42 and Wh1te-Rabbit-42',
      '-----BEGIN OPENSSH PRIVATE KEY-----',
      'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW',
      '-----END OPENSSH PRIVATE KEY-----',
      'DB_PASSWORD=hunter2-xyz api_key: "abc def" client_secret=s3cr3t;',
      'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
      'clone with ghp_abcdefghijklmnopqrstuvwxyz0123456789 then AKIAIOSFODNN7EXAMPLE',
      'ok: 3 packages installed',
    ].join('\n');
    const out = redactOutput(text, secrets);
    for (const leaked of ['Wh1te-Rabbit-42', 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmU', 'hunter2-xyz', 'abc def', 's3cr3t', 'eyJhbGciOiJIUzI1NiJ9', 'ghp_abcdefghij', 'AKIAIOSFODNN7EXAMPLE']) {
      expect(out, leaked).not.toContain(leaked);
    }
    expect(out).toContain('-----BEGIN OPENSSH PRIVATE KEY-----[redacted]-----END OPENSSH PRIVATE KEY-----');
    expect(out).toContain('DB_PASSWORD=[redacted]');
    expect(out).toContain('ok: 3 packages installed');
    // Nothing to redact: unchanged (sudo's own wording is not an assignment).
    expect(redactOutput('sudo: a password is required\n')).toBe('sudo: a password is required\n');
    expect(redactOutput('a\u0000b')).toBe('a\uFFFDb');
  });

  it('bounds each stream to 64 KiB: the first 16 KiB, a line saying how much was left out, the end', () => {
    const big = 'H'.repeat(20_000) + 'x'.repeat(200_000) + 'THE-END';
    const b = boundOutput(big);
    expect(b.truncated).toBe(true);
    expect(Buffer.byteLength(b.text)).toBeLessThanOrEqual(COMMAND_OUTPUT_LIMIT);
    expect(Buffer.byteLength(b.text)).toBeGreaterThan(COMMAND_OUTPUT_LIMIT - 100);
    expect(b.text.startsWith('H'.repeat(16 * 1024) + '\n[… ')).toBe(true);
    expect(b.text.endsWith('THE-END')).toBe(true);
    expect(b.text).toMatch(/\[… \d+ bytes omitted …\]/);
    // Multi-byte characters cut at a boundary still stay within the limit.
    expect(Buffer.byteLength(boundOutput('é'.repeat(100_000)).text)).toBeLessThanOrEqual(COMMAND_OUTPUT_LIMIT);
    expect(boundOutput('short')).toEqual({ text: 'short', truncated: false });
  });
});

describe('command records on a real host, read through the API', () => {
  let p: TestPlatform;
  let sshd: SshTestHost;
  let hostId: string;
  beforeAll(async () => {
    [p, sshd] = await Promise.all([startTestPlatform({ worker: false }), startSshd()]);
    const h = await p.api('POST', '/api/v1/hosts', { body: { allow_duplicate_address: true, name: `rec-${randomBytes(2).toString('hex')}`, address: sshd.host, port: sshd.port, username: sshd.adminUser, private_key: sshd.adminPrivateKey } });
    expect(h.status, JSON.stringify(h.body)).toBe(201);
    hostId = h.body.data.id;
  }, 120_000);
  afterAll(async () => {
    await p?.close();
    await sshd?.stop();
  });

  it('a changing command leaves a record with its full output (redacted, bounded); a read-only one none; the command text and stdin are never stored', async () => {
    const exec = recordedExecutor(p.ssh, { em: p.db.em, vault: p.vault, logger: createLogger({ level: 'silent' }) });
    // A template step: a token line, 200 000 bytes, a last line on stderr, exit 3.
    const step = await exec.exec(hostId, `echo 'GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789'; head -c 200000 /dev/zero | tr '\\0' 'a'; echo; echo 'step failed at the end' >&2; exit 3`);
    expect(step.exitCode).toBe(3);
    // Input on stdin that the command echoes back (as a careless script might).
    const echoed = await exec.exec(hostId, 'cat; echo " <- read from stdin"', { stdin: 'alice:Wh1te-Rabbit-42\n' });
    expect(echoed.stdout).toContain('Wh1te-Rabbit-42');
    // The host's own private key, printed by a step.
    await exec.exec(hostId, `cat <<'EOF'\n${sshd.adminPrivateKey.trim()}\nEOF`);
    // Read-only: no record.
    await exec.exec(hostId, 'true');

    const rows = await p.db.em.fork().find(CommandRecordSchema, { host: hostId }, { orderBy: { startedAt: 'asc' } });
    expect(rows).toHaveLength(3);
    const [a, b, c] = rows as [(typeof rows)[0], (typeof rows)[0], (typeof rows)[0]];
    expect(a).toMatchObject({ builder: 'command', exitCode: 3, stdin: false, truncated: true, stdoutBytes: 'GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n'.length + 200_000 + 1 });
    expect(Buffer.byteLength(a.stdout)).toBeLessThanOrEqual(COMMAND_OUTPUT_LIMIT);
    expect(a.stdout).toContain('GITHUB_TOKEN=[redacted]');
    expect(a.stdout).not.toContain('ghp_');
    expect(a.stderr).toBe('step failed at the end\n');
    expect(a.commandSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(b).toMatchObject({ stdin: true, exitCode: 0, stdout: '[redacted]\n <- read from stdin\n' });
    expect(c.stdout).not.toContain(sshd.adminPrivateKey.split('\n')[1]!);
    expect(c.stdout).toContain('[redacted]');
    // Nothing of the command text is stored anywhere in the rows.
    const all = JSON.stringify(rows);
    for (const leaked of ['head -c 200000', 'Wh1te-Rabbit-42', 'ghp_abcdef', 'read from stdin"']) expect(all, leaked).not.toContain(leaked);

    // The API: newest first, filter by failure, detail with the output; a permission of its own.
    const list = await p.api('GET', `/api/v1/hosts/${hostId}/commands`);
    expect(list.status, JSON.stringify(list.body)).toBe(200);
    expect(list.body.data.total).toBe(3);
    expect(list.body.data.items[0]).not.toHaveProperty('stdout');
    expect(list.body.data.items.map((i: { id: string }) => i.id)).toEqual([c.id, b.id, a.id]);
    const failed = await p.api('GET', `/api/v1/hosts/${hostId}/commands?failed=true`);
    expect(failed.body.data.items.map((i: { id: string }) => i.id)).toEqual([a.id]);
    const detail = await p.api('GET', `/api/v1/hosts/${hostId}/commands/${a.id}`);
    expect(detail.status).toBe(200);
    expect(detail.body.data).toMatchObject({ id: a.id, exit_code: 3, truncated: true, stdout_bytes: a.stdoutBytes, stderr: 'step failed at the end\n', builder: 'command' });
    expect(detail.body.data.stdout.endsWith('a\n')).toBe(true);
    expect((await p.api('GET', `/api/v1/hosts/${hostId}/commands/${a.id}`, { token: p.tokens.operator })).status).toBe(200);
    const denied = await p.api('GET', `/api/v1/hosts/${hostId}/commands`, { token: p.tokens.requester });
    expect([denied.status, denied.body.code]).toEqual([403, 40301]);
    // A viewer sees hosts but not command output.
    const em = p.db.em.fork();
    const viewer = em.create(UserSchema, { username: `viewer-${randomBytes(2).toString('hex')}`, roles: ['viewer'] });
    await em.flush();
    const vt = (await createApiKey(p.db.em, { userId: viewer.id, name: 't' })).key;
    expect((await p.api('GET', `/api/v1/hosts/${hostId}`, { token: vt })).status).toBe(200);
    expect((await p.api('GET', `/api/v1/hosts/${hostId}/commands`, { token: vt })).status).toBe(403);
    expect((await p.api('GET', `/api/v1/hosts/${hostId}/commands?page_size=0`)).body.code).toBe(40001);
  }, 60_000);
});
