import { describe, expect, it } from 'vitest';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import { bundleWorkflows, installWorkerRuntime } from '../../worker/create-worker.js';
import { workflowTracingSinks } from '../../config/tracing.js';
import { ACTIVITY_SUMMARIES, type RunMemo } from '../../workflows/shared/activity-summary.js';
import { testDataConverter } from '../helpers/temporal.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HISTORIES = `${ROOT}test/replay/histories/`;
const CHECKER = fileURLToPath(new URL('../replay/summary-check-interceptors.ts', import.meta.url));

const memo = (fields: Record<string, string>): RunMemo => ({ get: (n) => fields[n] });
const describe1 = <K extends keyof typeof ACTIVITY_SUMMARIES>(type: K, args: unknown[], m: RunMemo) => (ACTIVITY_SUMMARIES[type] as (a: unknown[], m: RunMemo) => string)(args, m);

/** Every activity type a workflow file proxies (`Pick<Activities, 'a' | 'b'>`), by file. */
async function proxiedActivities(): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const dirs = ['workflows/', 'workflows/shared/'];
  for (const d of dirs) {
    for (const f of (await readdir(ROOT + d)).filter((x) => x.endsWith('.ts'))) {
      const src = await readFile(ROOT + d + f, 'utf8');
      const names = [...src.matchAll(/Pick<\s*Activities\s*,([^>]+)>/g)].flatMap((m) => [...m[1]!.matchAll(/'(\w+)'/g)].map((n) => n[1]!));
      if (names.length) out.set(d + f, [...new Set(names)]);
    }
  }
  return out;
}

describe('activity summaries: every activity a workflow schedules reads as a sentence in the Web UI', () => {
  it('every activity a workflow file proxies has an entry in ACTIVITY_SUMMARIES (a new activity without one fails here)', async () => {
    const files = await proxiedActivities();
    expect(files.size).toBeGreaterThan(10);
    const missing = [...files].flatMap(([f, names]) => names.filter((n) => !(n in ACTIVITY_SUMMARIES)).map((n) => `${n} (${f})`));
    expect(missing, 'add a describer to workflows/shared/activity-summary.ts').toEqual([]);
  });

  it('reclaim, lease and allocation steps name the account and host from the memo; ids stand in when the memo has no names; no notification data or task sample leaks in', () => {
    const m = memo({ host: 'gpu-07', username: 'alice', customer: 'acme' });
    expect(describe1('stopCustomerTasks', ['a1'], m)).toBe('stop processes of alice on gpu-07');
    expect(describe1('deleteCustomerAccount', ['a1'], m)).toBe('delete account alice on gpu-07');
    expect(describe1('revokeCustomerKeys', ['a1'], m)).toBe('revoke SSH keys of alice on gpu-07');
    expect(describe1('createCustomerAccount', ['a1'], m)).toBe('create account alice on gpu-07 for acme');
    expect(describe1('deleteCustomerAccount', ['a1'], memo({}))).toBe('delete account the tenant of allocation a1');
    expect(describe1('recordLeaseEvent', [{ allocationId: 'a1', kind: 'reminder-3d', dueAtMs: 0, firedAtMs: 0, endsAtMs: Date.UTC(2026, 11, 10, 8) }], m)).toBe('send the 3d reminder to alice on gpu-07 (ends 2026-12-10 08:00)');
    expect(describe1('recordLeaseEvent', [{ allocationId: 'a1', kind: 'ended', dueAtMs: 0, firedAtMs: 0, endsAtMs: 0, bufferEndsAtMs: Date.UTC(2026, 11, 11) }], m)).toBe('send end-of-term notice to alice on gpu-07, buffer until 2026-12-11 00:00');
    const tasks = describe1('notifyRunningTasks', ['a1', ['1234 python train.py --token=s3cr3t-value'], 0], m);
    expect(tasks).toBe('tell alice about 1 running task(s), grace until 1970-01-01 00:00');
    const n = describe1('notify', [{ event: 'reclaim.done', key: 'reclaim/a1/r/done', data: { password: 's3cr3t-value' } }], m);
    expect(n).toBe('notify reclaim.done');
    expect(describe1('collectHostFacts', ['h1'], memo({}))).toBe('collect facts of host h1');
    expect(describe1('collectHostFacts', ['h1'], memo({ slug: 'gpu-07' }))).toBe('collect facts of gpu-07');
  });

  it('replaying every recorded history through the platform bundle: each activity and local activity it schedules has a summary of its own', { timeout: 300_000 }, async () => {
    installWorkerRuntime('ERROR');
    const bundle = await bundleWorkflows([CHECKER]);
    const files = (await readdir(HISTORIES)).filter((f) => f.endsWith('.json')).sort();
    expect(files.length).toBeGreaterThan(30);
    const problems: string[] = [];
    let total = 0;
    for (const file of files) {
      const history = JSON.parse(await readFile(HISTORIES + file, 'utf8')) as { events: Array<{ activityTaskScheduledEventAttributes?: { activityType?: { name?: string } } }> };
      const seen: Array<{ kind: string; type: string; summary: string | null }> = [];
      await Worker.runReplayHistory(
        {
          workflowBundle: { code: bundle.code },
          replayName: file,
          dataConverter: testDataConverter(),
          sinks: { ...workflowTracingSinks(), summaryCheck: { scheduled: { fn: (_info: unknown, kind: string, type: string, summary: string | null) => void seen.push({ kind, type, summary }), callDuringReplay: true } } } as never,
        },
        history,
        file.replace(/\.json$/, ''),
      );
      // What the recorded run scheduled, today's code schedules too (the sink saw every one).
      const scheduled = history.events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType!.name!] : []));
      const remote = seen.filter((s) => s.kind === 'activity').map((s) => s.type);
      for (const t of new Set(scheduled)) if (!remote.includes(t)) problems.push(`${file}: ${t} scheduled in history, not seen on replay`);
      for (const s of seen) {
        total++;
        if (!s.summary) problems.push(`${file}: ${s.kind} ${s.type} has no summary`);
        else if (s.summary === s.type) problems.push(`${file}: ${s.type}'s describer threw (summary fell back to the type name)`);
        else if (s.summary.length > 200 || /\n/.test(s.summary)) problems.push(`${file}: ${s.type}'s summary is not one short line`);
      }
    }
    expect(problems).toEqual([]);
    expect(total).toBeGreaterThan(200);
  });
});
