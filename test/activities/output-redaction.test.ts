// Failure messages of remote commands reach workflow history and the customer-visible `error`
// field: they must never quote the command's output (a script may print a secret).
import { describe, expect, it } from 'vitest';
import { check } from '../../activities/remote/account-ops.js';
import { outputSummary } from '../../activities/remote/output.js';

const SECRET = 'tok_5e3f9a1c77d24b0e8f6a';

describe('remote command failures are bounded and carry no output', () => {
  it('check(): an unknown failure names the exit code and recognised causes, never the output', () => {
    let message = '';
    try {
      check({ exitCode: 2, stdout: `export API_TOKEN=${SECRET}\n`, stderr: `useradd: cannot open /etc/passwd: Permission denied\nkey=${SECRET}\n`, durationMs: 5 }, 'create user');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^create user failed \(exit 2; permission denied; \d+ bytes of output withheld\)$/);
    expect(message).not.toContain(SECRET);
  });

  it('check(): the sudo case stays classified (PermissionDenied) without quoting stderr', () => {
    let err: { message: string; type?: string } | undefined;
    try {
      check({ exitCode: 1, stdout: '', stderr: `sudo: a password is required ${SECRET}`, durationMs: 1 }, 'lock');
    } catch (e) {
      err = e as never;
    }
    expect(err?.type).toBe('PermissionDenied');
    expect(err?.message).not.toContain(SECRET);
  });

  it('outputSummary() is bounded whatever the output size', () => {
    const s = outputSummary({ exitCode: 1, stdout: SECRET.repeat(100_000), stderr: 'x'.repeat(1_000_000) });
    expect(s.length).toBeLessThan(300);
    expect(s).not.toContain(SECRET);
  });
});
