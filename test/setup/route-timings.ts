// Per test file (vitest setupFiles): after the file's tests, write what the platform's own
// request histogram (config/metrics.ts `hostflow_http_request_duration_seconds`) saw in this
// file's process to the run's route-timings folder. test/global-setup.ts merges the files at the
// end of the run and prints the slowest routes by p99 (issue 17: "the slowest 5 routes by p99 in
// the test suite's own run, taken from the /metrics histograms").
import { afterAll, inject } from 'vitest';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { httpDuration } from '../../config/metrics.js';

afterAll(async () => {
  const dir = inject('routeTimingsDir');
  if (!dir) return;
  const { values } = await httpDuration.get();
  if (values.length === 0) return;
  await writeFile(join(dir, `${randomUUID()}.json`), JSON.stringify(values));
});
