// A workflow bundle in which one workflow file is replaced by other source text (a scratch copy):
// for the replay test's deliberately non-deterministic edit, and for recording histories of code
// as it was before a change (e.g. `git show <commit>^:workflows/lease.workflow.ts`).
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WORKFLOWS = path.join(ROOT, 'workflows');

/**
 * Bundles workflows/index.ts with `file` (e.g. 'lease.workflow.ts') swapped for `source`; the
 * copy's relative imports point back at the real tree. The scratch copy lives under `.data/`
 * (ignored by git and ESLint) while it is bundled, and is removed afterwards.
 */
export async function bundleWithScratchWorkflow(file: string, exportName: string, source: string): Promise<string> {
  const dir = path.join(ROOT, '.data', `scratch-${randomBytes(4).toString('hex')}`);
  await mkdir(dir, { recursive: true });
  try {
    const rewritten = source.replace(/from '(\.\.?\/[^']+)'/g, (_m, spec: string) => `from '${path.join(WORKFLOWS, spec)}'`);
    await writeFile(path.join(dir, file), rewritten);
    // A named export wins over `export *`: every other workflow comes from the real tree.
    await writeFile(path.join(dir, 'index.ts'), `export * from '${path.join(WORKFLOWS, 'index.js')}';\nexport { ${exportName} } from './${file.replace(/\.ts$/, '.js')}';\n`);
    const noop = () => undefined;
    const bundle = await bundleWorkflowCode({
      workflowsPath: path.join(dir, 'index.ts'),
      logger: { trace: noop, debug: noop, info: noop, warn: noop, error: (m: string) => console.error(m), log: noop },
    });
    return bundle.code;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
