import { describe, expect, it, inject } from 'vitest';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { DeterminismViolationError } from '@temporalio/workflow';
import { Worker } from '@temporalio/worker';
import { installWorkerRuntime, workflowSinks } from '../../worker/create-worker.js';
import * as workflows from '../../workflows/index.js';
import { bundleWithScratchWorkflow } from './scratch-bundle.js';
import { testDataConverter } from '../helpers/temporal.js';

const dir = fileURLToPath(new URL('./histories/', import.meta.url));
const root = fileURLToPath(new URL('../../', import.meta.url));

interface Fixture {
  file: string;
  type: string;
  history: unknown;
}

/** The workflow type a history belongs to, read from its first event (not from the file name). */
function workflowTypeOf(history: unknown): string {
  const first = (history as { events?: Array<{ workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } } }> }).events?.[0];
  const name = first?.workflowExecutionStartedEventAttributes?.workflowType?.name;
  if (!name) throw new Error('history does not start with WorkflowExecutionStarted');
  return name;
}

// Through the platform's data converter, as a worker replays: fixtures are stored decrypted (and the
// older ones predate the codec), and the codec passes payloads without its encoding through.
const replay = (codePath: { codePath: string } | { code: string }, f: Fixture) =>
  Worker.runReplayHistory({ workflowBundle: codePath, replayName: f.file, dataConverter: testDataConverter(), sinks: workflowSinks() }, f.history, f.file.replace(/\.json$/, ''));

/**
 * Workflow code must stay compatible with the histories of runs already in flight (leases run for
 * months). Every history under histories/ — recorded from real runs by `npm run replay:record`,
 * older ones kept — is replayed against today's bundle. The rule (workflows/index.ts): a change
 * that alters a running workflow's command sequence goes behind `patched('<id>')`.
 */
describe('replay recorded histories against the current workflow code', async () => {
  const fixtures: Fixture[] = [];
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.json')).sort()) {
    const history: unknown = JSON.parse(await readFile(dir + file, 'utf8'));
    fixtures.push({ file, type: workflowTypeOf(history), history });
  }
  const types = Object.keys(workflows).sort();

  it('every workflow type the bundle exports has at least one recorded history', () => {
    // The bundle's exports are the list (a workflow added to workflows/index.ts needs a history too).
    expect(types).toEqual(
      expect.arrayContaining(['accountOpening', 'allocation', 'hostAccountOperation', 'hostChangeLock', 'hostLock', 'hostOnboarding', 'hostOnboardingBatch', 'hostPing', 'hostRecheck', 'lease', 'reclaim', 'sshKeyAdd', 'sshKeyRevoke']),
    );
    const missing = types.filter((t) => !fixtures.some((f) => f.type === t));
    expect(missing, `no replay history for ${missing.join(', ')}: run npm run replay:record`).toEqual([]);
  });

  for (const f of fixtures) {
    it(`replays ${f.file} (${f.type}) deterministically`, async () => {
      installWorkerRuntime('ERROR');
      await expect(replay({ codePath: inject('workflowBundlePath') }, f)).resolves.toBeUndefined();
    });
  }

  it('a deliberately non-deterministic edit (a scratch copy of the lease with an extra activity call) is caught', { timeout: 240_000 }, async () => {
    installWorkerRuntime('ERROR');
    const source = await readFile(`${root}workflows/lease.workflow.ts`, 'utf8');
    const anchor = '  for (;;) {\n    if (dirty) {';
    expect(source).toContain(anchor);
    const edited = source.replace(anchor, `  await db.setAllocationStatus(input.allocationId, 'active', { endsAtMs });\n${anchor}`);
    const code = await bundleWithScratchWorkflow('lease.workflow.ts', 'lease', edited);
    const leases = fixtures.filter((f) => f.type === 'lease');
    expect(leases.length).toBeGreaterThan(0);
    for (const f of leases) await expect(replay({ code }, f), f.file).rejects.toBeInstanceOf(DeterminismViolationError);
    // The unedited copy through the same scratch path replays: the failure is the edit's.
    const same = await bundleWithScratchWorkflow('lease.workflow.ts', 'lease', source);
    await expect(replay({ code: same }, leases[0]!)).resolves.toBeUndefined();
  });

  it('commit 6586da7 unguarded breaks the lease that skipped a reminder before it; behind patched() it replays', { timeout: 120_000 }, async () => {
    installWorkerRuntime('ERROR');
    const legacy = fixtures.find((f) => f.file.startsWith('lease-pre-6586da7-late-first-task'));
    expect(legacy, 'recorded by npm run replay:record -- --legacy').toBeDefined();
    // Today's lease with the guard taken out (6586da7 as committed): the reminder the old run skipped is sent on replay.
    const source = await readFile(`${root}workflows/lease.workflow.ts`, 'utf8');
    const guarded = "patched('lease-skip-from-start') ? workflowInfo().startTime.getTime() : Date.now()";
    expect(source).toContain(guarded);
    const unguarded = source.replace(guarded, 'workflowInfo().startTime.getTime()');
    const code = await bundleWithScratchWorkflow('lease.workflow.ts', 'lease', unguarded);
    await expect(replay({ code }, legacy!)).rejects.toBeInstanceOf(DeterminismViolationError);
    // Today's code (the change behind patched('lease-skip-from-start')) replays it and the new run.
    await expect(replay({ codePath: inject('workflowBundlePath') }, legacy!)).resolves.toBeUndefined();
    const late = fixtures.find((f) => f.file.startsWith('lease-late-first-task'));
    expect(late).toBeDefined();
    await expect(replay({ codePath: inject('workflowBundlePath') }, late!)).resolves.toBeUndefined();
  });
});
