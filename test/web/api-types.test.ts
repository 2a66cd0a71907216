// The console's typed client must match the API: regenerate web/src/api/schema.d.ts from the
// OpenAPI document a live app serves and compare with the committed file, then type-check the
// console (vue-tsc) against it. Either fails when the API and the console drift apart.
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { generateApiTypes, SCHEMA_FILE } from '../../scripts/gen-api.js';

describe('console API types', () => {
  it('web/src/api/schema.d.ts is what `npm run gen:api` writes for the current API', async () => {
    const fresh = await generateApiTypes();
    const committed = await readFile(SCHEMA_FILE, 'utf8');
    expect(committed === fresh, 'web/src/api/schema.d.ts is stale: run `npm run gen:api` and commit it').toBe(true);
  });

  it('the console type-checks against it (vue-tsc --noEmit -p web/tsconfig.json)', { timeout: 180_000 }, async () => {
    const r = await promisify(execFile)(process.execPath, ['node_modules/vue-tsc/bin/vue-tsc.js', '--noEmit', '-p', 'web/tsconfig.json'], { maxBuffer: 10 * 1024 * 1024 }).then(
      () => ({ ok: true, out: '' }),
      (err: { stdout?: string; stderr?: string }) => ({ ok: false, out: `${err.stdout ?? ''}${err.stderr ?? ''}` }),
    );
    expect(r.ok, r.out).toBe(true);
  });
});
