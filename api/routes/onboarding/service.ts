// Batch onboarding, read side: the batch's progress lives only in its Temporal workflow, so the row
// scope is applied to the hosts the batch was started with (its input, read from the first
// history event through the client's data converter, codec included).
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Client } from '@temporalio/client';
import { HostSchema, OnboardingStepSchema, ONBOARDING_STEPS } from '../../../db/entities/index.js';
import { notFound } from '../../errors.js';
import type { Scope } from '../../authz/scope.js';
import { batchProgressQuery, type BatchInput, type BatchProgress } from '../../../workflows/host-onboarding-batch.workflow.js';

const GRPC_NOT_FOUND = 5;

/** The host ids a batch workflow was started with, or null when there is no such workflow. */
export async function batchHostIds(client: Client, workflowId: string): Promise<string[] | null> {
  let res;
  try {
    res = await client.workflowService.getWorkflowExecutionHistory({ namespace: client.options.namespace, execution: { workflowId }, maximumPageSize: 1 });
  } catch (err) {
    if ((err as { code?: number }).code === GRPC_NOT_FOUND) return null;
    throw err;
  }
  let payloads = res.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
  if (!payloads.length) return [];
  const dc = client.options.loadedDataConverter;
  for (const codec of [...dc.payloadCodecs].reverse()) payloads = await codec.decode(payloads);
  const input = dc.payloadConverter.fromPayload<BatchInput>(payloads[0]!);
  return [...new Set((input.hosts ?? []).map((h) => h.hostId))];
}

/**
 * GET /hosts/onboard/:batchId: the batch exists for a caller only when every host of it that still
 * exists is in their row scope (an East-region operator's batches are all East: POST /hosts/onboard
 * takes only hosts in scope); otherwise 404, like a batch id that never existed.
 */
/** One host of a batch as the console's batch page shows it: where it is in the batch, and its onboarding steps. */
export interface BatchHostView {
  id: string;
  slug: string;
  name: string;
  host_status: string;
  /** queued: the batch has not started it yet; running; online; failed (step and error from the batch). */
  state: 'queued' | 'running' | 'online' | 'failed';
  /** The step running now (or the last one that finished), null before the first. */
  current_step: string | null;
  steps: Array<{ step: string; status: string; attempts: number; started_at: string | null; finished_at: string | null; error: string | null }>;
  done_steps: number;
  total_steps: number;
  error: string | null;
}

/**
 * Each host of a batch, in the batch's order, with its onboarding step rows. The batch starts its
 * hosts first in, first out, so the started ones are the first `total - pending` of its input;
 * of those, the ones the batch lists as online or failed are finished, the rest run now. A queued
 * host shows no steps (rows left from an earlier onboarding are not this batch's).
 */
export async function batchHosts(em: SqlEntityManager, ids: string[], progress: BatchProgress): Promise<BatchHostView[]> {
  if (!ids.length) return [];
  const [hosts, rows] = await Promise.all([
    em.find(HostSchema, { id: { $in: ids } }, { fields: ['id', 'slug', 'name', 'status'] }),
    em.find(OnboardingStepSchema, { host: { $in: ids } }),
  ]);
  const started = new Set(ids.slice(0, Math.max(0, progress.total - progress.pending)));
  const online = new Set(progress.online);
  const failed = new Map(progress.failed.map((f) => [f.hostId, f]));
  const order = (s: string) => ONBOARDING_STEPS.indexOf(s as never);
  const byId = new Map(hosts.map((h) => [h.id, h]));
  return ids.flatMap((id) => {
    const h = byId.get(id);
    if (!h) return []; // deleted since the batch started
    const state: BatchHostView['state'] = online.has(id) ? 'online' : failed.has(id) ? 'failed' : started.has(id) ? 'running' : 'queued';
    const steps = state === 'queued' ? [] : rows.filter((r) => r.host.id === id).sort((a, b) => order(a.step) - order(b.step));
    const current = steps.find((s) => s.status === 'running' || s.status === 'waiting') ?? [...steps].reverse().find((s) => s.status !== 'pending');
    return [{
      id,
      slug: h.slug,
      name: h.name,
      host_status: h.status,
      state,
      current_step: current?.step ?? null,
      steps: steps.map((s) => ({ step: s.step, status: s.status, attempts: s.attempts, started_at: s.startedAt?.toISOString() ?? null, finished_at: s.finishedAt?.toISOString() ?? null, error: s.error ?? null })),
      done_steps: steps.filter((s) => s.status === 'done' || s.status === 'skipped').length,
      total_steps: ONBOARDING_STEPS.length,
      error: failed.get(id)?.error ?? steps.find((s) => s.status === 'failed')?.error ?? null,
    }];
  });
}

export async function batchView(deps: { em: SqlEntityManager; client: Client }, scope: Scope, batchId: string): Promise<BatchProgress & { done: boolean; hosts: BatchHostView[] }> {
  const workflowId = `host-onboarding-batch/${batchId}`;
  const ids = await batchHostIds(deps.client, workflowId);
  if (!ids) throw notFound('batch');
  if (ids.length) {
    const em = deps.em.fork();
    const [existing, visible] = await Promise.all([em.count(HostSchema, { id: { $in: ids } }), em.count(HostSchema, (await scope.where(em, HostSchema, { id: { $in: ids } })) as never)]);
    if (visible < existing) throw notFound('batch');
  }
  const handle = deps.client.workflow.getHandle(workflowId);
  try {
    const desc = await handle.describe();
    const p = desc.status.name === 'RUNNING' ? await handle.query(batchProgressQuery) : await handle.result();
    return { ...p, done: desc.status.name !== 'RUNNING', hosts: await batchHosts(deps.em.fork(), ids, p) };
  } catch (err) {
    if ((err as Error).name === 'WorkflowNotFoundError') throw notFound('batch');
    throw err;
  }
}
