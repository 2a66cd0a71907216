import { describe, expect, it, inject } from 'vitest';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import { installWorkerRuntime } from '../../worker/create-worker.js';

const dir = fileURLToPath(new URL('./histories/', import.meta.url));

/**
 * Workflow code must stay compatible with the histories of runs already in flight. These recorded
 * histories (refresh with CAPTURE_HISTORIES=1 npx vitest run test/workflows/account-opening.test.ts or allocation.test.ts
 * after an *intended* change, guarded by patched()) are replayed against today's bundle.
 */
describe('replay recorded histories against the current workflow code', async () => {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  it('has recorded histories', () => {
    expect(files.length).toBeGreaterThanOrEqual(3);
  });
  for (const file of files) {
    it(`replays ${file} deterministically`, async () => {
      installWorkerRuntime('ERROR');
      const history: unknown = JSON.parse(await readFile(dir + file, 'utf8'));
      await expect(
        Worker.runReplayHistory({ workflowBundle: { codePath: inject('workflowBundlePath') } }, history, file.replace(/\.json$/, '')),
      ).resolves.toBeUndefined();
    });
  }
});
