// GET /metrics after real traffic: HTTP series per route template and status, workflow starts per
// type, activity durations and failures per type, and no ids in any label.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import express from 'express';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { metricsEndpoint } from '../../api/middleware/metrics.js';

describe('/metrics', { timeout: 120_000 }, () => {
  let p: TestPlatform;
  const hostId = randomUUID();
  beforeAll(async () => {
    p = await startTestPlatform();
  });
  afterAll(() => p?.close());

  it('shows HTTP, workflow-start and activity series from a walkthrough, labelled by templates and types only', async () => {
    expect((await p.api('GET', `/api/v1/hosts/${hostId}`)).status).toBe(404);
    expect((await p.api('GET', '/api/v1/hosts')).status).toBe(200);
    const h = await p.client.workflow.start('hostPing', { workflowId: `host-ping/${hostId}/${Date.now()}`, taskQueue: p.taskQueue, args: [{ hostId }], workflowExecutionTimeout: '60s' });
    await expect(h.result()).rejects.toThrow();

    const res = await fetch(`${p.baseUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(/hostflow_http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/hosts\/:id",status="404"\} [1-9]/);
    expect(text).toMatch(/hostflow_http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/hosts",status="200"\} [1-9]/);
    expect(text).toMatch(/hostflow_http_requests_in_flight \d/);
    expect(text).toMatch(/hostflow_workflow_starts_total\{workflow_type="hostPing",outcome="started"\} [1-9]/);
    expect(text).toMatch(/hostflow_activity_duration_seconds_count\{activity_type="pingHost",outcome="failed"\} [1-9]/);
    expect(text).toMatch(/hostflow_activity_failures_total\{activity_type="pingHost",failure_type="HostNotFound"\} [1-9]/);
    expect(text, 'an id in a label').not.toContain(hostId);
  });

  it('with a scrape token: 401 without it, 200 with it (timing-safe compare)', async () => {
    const app = express();
    app.get('/metrics', metricsEndpoint({ token: 'scrape-token-0123456789' }));
    const server = await new Promise<Server>((r) => {
      const s = app.listen(0, '127.0.0.1', () => r(s));
    });
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/metrics`;
      expect((await fetch(url)).status).toBe(401);
      expect((await fetch(url, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      const ok = await fetch(url, { headers: { authorization: 'Bearer scrape-token-0123456789' } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('hostflow_process_');
    } finally {
      server.close();
    }
  });
});
