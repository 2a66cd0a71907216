// Schemathesis (from PyPI, in a venv under the cache dir: scripts/schemathesis.sh) fuzzes the API
// against its own OpenAPI document: stateless phases only, a bounded number of examples per
// operation, loopback only. No worker runs, so nothing the fuzzer submits ever reaches a host.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';

const repo = resolve(import.meta.dirname, '../..');
const script = join(repo, 'scripts/schemathesis.sh');
// 10 examples per operation: ~2-4 min here (20: 197 s idle, 436 s on a loaded 2-CPU machine). SCHEMATHESIS_MAX_EXAMPLES raises it.
const MAX_EXAMPLES = Number(process.env.SCHEMATHESIS_MAX_EXAMPLES ?? 10);

describe('schemathesis: the API keeps the promises of its OpenAPI document', { timeout: 600_000 }, () => {
  let p: TestPlatform;
  let dir: string;
  beforeAll(async () => {
    // Creates the venv on first use (pip from PyPI); a failure here fails the test, never skips it.
    execFileSync('bash', [script, '--install-only'], { stdio: 'inherit' });
    [p, dir] = await Promise.all([startTestPlatform({ worker: false }), mkdtemp(join(tmpdir(), 'hostflow-schemathesis-'))]);
  }, 600_000);
  afterAll(async () => {
    await p?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(`stateless phases, ${MAX_EXAMPLES} examples per operation: no failure`, async () => {
    const junit = join(dir, 'junit.xml');
    const args = [
      script,
      'run',
      `${p.baseUrl}/api/openapi.json`,
      '--url',
      p.baseUrl,
      '-H',
      `Authorization: Bearer ${p.tokens.admin}`,
      '--phases',
      'examples,coverage,fuzzing',
      '--max-examples',
      String(MAX_EXAMPLES),
      '--seed',
      '1',
      // One worker: hypothesis' lambda-source reader is not thread-safe (it crashed under 2).
      '--workers',
      '1',
      '--request-timeout',
      '10',
      '--no-shrink',
      '--generation-database',
      'none',
      '--no-color',
      '--report',
      'junit',
      '--report-junit-path',
      junit,
      // Valid-by-schema data the server still refuses for what a schema cannot say (a host_id that
      // does not exist, a name already taken) is not a defect: the rest of the checks all run.
      '--exclude-checks',
      'positive_data_acceptance',
      // These wait for a worker (ping's result, the onboarding workflow's query), and this run has
      // none on purpose: with one, a fuzzed host address would be dialled.
      '--exclude-path-regex',
      '^/api/v1/hosts/\\{id\\}/(ping|onboarding|onboarding/confirm-facts)$',
    ];
    const started = Date.now();
    const run = () => new Promise<{ code: number | null; out: string }>((res) => {
      const child = spawn('bash', args, { cwd: dir, env: { ...process.env, NO_COLOR: '1', SCHEMATHESIS_TELEMETRY: 'false' } });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('exit', (c) => res({ code: c, out }));
    });
    let { code, out } = await run();
    // Hypothesis' lambda-source reader (used only to describe a filter) sometimes crashes under
    // schemathesis' worker threads: a crash of the tool itself, with no request behind it. Only that
    // one traceback, with no failure reported, earns one re-run (said on stderr); anything else fails.
    const toolCrash = (o: string) => o.includes('hypothesis/internal/lambda_sources.py') && !/FAILURES/.test(o);
    if (code !== 0 && toolCrash(out)) {
      process.stderr.write('[schemathesis] the tool crashed inside hypothesis (lambda_sources), no API failure: running it once more\n');
      ({ code, out } = await run());
    }
    const seconds = Math.round((Date.now() - started) / 1000);
    process.stderr.write(`[schemathesis] ${seconds} s\n${out.split('\n').slice(-25).join('\n')}\n`);
    const report = await readFile(junit, 'utf8').catch(() => '');
    expect(report, 'schemathesis wrote no report').toContain('<testsuite');
    // The failures section first (a long fuzzed URL can fill the tail), then the tail.
    const failures = out.slice(Math.max(0, out.indexOf('FAILURES')), out.indexOf('WARNINGS') > 0 ? out.indexOf('WARNINGS') : undefined);
    if (code !== 0) process.stderr.write(`[schemathesis] failures:\n${failures.replace(/(%[0-9A-F]{2}){40,}/g, '…')}\n`);
    expect(code, failures.slice(0, 20_000)).toBe(0);
  });
});
