import type { Client } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { AesGcmPayloadCodec, decryptPayloadsInJson } from '../../config/payload-codec.js';

/** The client's payload codec (every test client has one: test/helpers/temporal.ts). */
export function codecOf(client: Client): AesGcmPayloadCodec {
  const codec = client.options.loadedDataConverter.payloadCodecs.find((c): c is AesGcmPayloadCodec => c instanceof AesGcmPayloadCodec);
  if (!codec) throw new Error('this Temporal client has no payload codec: build it with testClient() / createTemporalClient()');
  return codec;
}

/** A history's proto3 JSON with the codec's payloads decrypted (what a replay fixture stores, what secret scans read). */
export function decryptHistoryJson(json: string | Buffer, client: Client): string {
  return JSON.stringify(decryptPayloadsInJson(JSON.parse(json.toString()), codecOf(client)), null, 2);
}

/**
 * Every event of every workflow run on a task queue, as one JSON string per run: for asserting
 * that no secret ever entered Temporal history (arguments, results, updates, heartbeats, failures).
 */
export async function allHistories(client: Client, taskQueue: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const wf of client.workflow.list({ query: `TaskQueue = "${taskQueue}"` })) {
    const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    out.set(`${wf.workflowId}/${wf.runId}`, JSON.stringify(history));
  }
  return out;
}

/** Payloads in history are base64 protobuf JSON: decode them so a plain-text search sees their content. */
export function decodedHistoryText(json: string): string {
  return json.replace(/"data":\s*"([A-Za-z0-9+/=]+)"/g, (_m, b64: string) => `"data":${JSON.stringify(Buffer.from(b64, 'base64').toString('utf8'))}`);
}

export async function assertNoSecretsInHistory(client: Client, taskQueue: string, secrets: string[]): Promise<number> {
  const histories = await allHistories(client, taskQueue);
  for (const [id, json] of histories) {
    // Stored payloads are ciphertext: scan the raw history and, above all, what it decrypts to.
    const plain = decryptHistoryJson(json, client);
    const text = json + decodedHistoryText(json) + plain + decodedHistoryText(plain);
    for (const s of secrets) {
      if (s && text.includes(s)) throw new Error(`secret found in history of ${id}`);
    }
  }
  return histories.size;
}

/**
 * Saves one history per (workflow type, final phase) from a task queue into `dir`, for replay
 * tests, unless one of that name exists (run a suite with CAPTURE_HISTORIES=1 to add histories of
 * new code; `npm run replay:record` records every workflow type).
 */
export async function captureHistories(client: Client, taskQueue: string, dir: string): Promise<string[]> {
  const { writeFile, mkdir } = await import('node:fs/promises');
  const { execFileSync } = await import('node:child_process');
  const { temporalCliPath } = await import('../../scripts/temporal-cli.js');
  const { inject } = await import('vitest');
  await mkdir(dir, { recursive: true });
  const seen = new Set<string>();
  const written: string[] = [];
  for await (const wf of client.workflow.list({ query: `TaskQueue = "${taskQueue}" AND ExecutionStatus = "Completed"` })) {
    const handle = client.workflow.getHandle(wf.workflowId, wf.runId);
    const result = (await handle.result().catch(() => undefined)) as { phase?: string } | undefined;
    const key = `${wf.type}-${result?.phase ?? 'completed'}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const file = `${dir}/${key}.json`;
    // Never overwrite a recorded history: it is an older run, which replay must keep accepting.
    const { existsSync } = await import('node:fs');
    if (existsSync(file)) continue;
    // The CLI writes the canonical proto3 JSON that Worker.runReplayHistory reads.
    // Stored decrypted: fixtures stay readable and need no key (the data converter passes plaintext through).
    const json = execFileSync(temporalCliPath(), ['workflow', 'show', '--address', inject('temporalAddress'), '-w', wf.workflowId, '-r', wf.runId, '--output', 'json']);
    await writeFile(file, decryptHistoryJson(json, client));
    written.push(file);
  }
  return written;
}

/** Writes one run's history (decrypted, as captureHistories does) unless the fixture exists. */
export async function saveHistory(client: Client, file: string, workflowId: string, runId?: string): Promise<boolean> {
  const { writeFile } = await import('node:fs/promises');
  const { existsSync } = await import('node:fs');
  const { execFileSync } = await import('node:child_process');
  const { temporalCliPath } = await import('../../scripts/temporal-cli.js');
  const { inject } = await import('vitest');
  if (existsSync(file)) return false;
  const json = execFileSync(temporalCliPath(), ['workflow', 'show', '--address', inject('temporalAddress'), '-w', workflowId, ...(runId ? ['-r', runId] : []), '--output', 'json']);
  await writeFile(file, decryptHistoryJson(json, client));
  return true;
}

/** A run as the Web UI's timeline shows it: each scheduled activity with its summary, each child start with its memo, all decoded through the client's codec. */
export interface ReadableRun {
  /** The stored history's JSON (ciphertext payloads), for plaintext scans. */
  raw: string;
  activities: Array<{ type: string; summary: string | null; encrypted: boolean }>;
  children: Array<{ workflowId: string; type: string; memo: Record<string, unknown>; summary: string | null; encrypted: boolean }>;
  timers: Array<{ summary: string | null; encrypted: boolean }>;
}

export async function readableRun(client: Client, workflowId: string, runId?: string): Promise<ReadableRun> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const dc = client.options.loadedDataConverter;
  const decode = async (p: Payload | null | undefined): Promise<unknown> => {
    if (!p) return null;
    let decoded = [p];
    for (const codec of [...dc.payloadCodecs].reverse()) decoded = await codec.decode(decoded);
    return dc.payloadConverter.fromPayload(decoded[0]!);
  };
  const encrypted = (p: { metadata?: Record<string, Uint8Array> | null } | null | undefined) => !!p && Buffer.from(p.metadata?.encoding ?? []).toString() === 'binary/encrypted';
  const run: ReadableRun = { raw: JSON.stringify(history), activities: [], children: [], timers: [] };
  for (const e of history.events ?? []) {
    const a = e.activityTaskScheduledEventAttributes;
    if (a) run.activities.push({ type: a.activityType!.name!, summary: (await decode(e.userMetadata?.summary)) as string | null, encrypted: encrypted(e.userMetadata?.summary) });
    if (e.timerStartedEventAttributes) run.timers.push({ summary: (await decode(e.userMetadata?.summary)) as string | null, encrypted: encrypted(e.userMetadata?.summary) });
    const c = e.startChildWorkflowExecutionInitiatedEventAttributes;
    if (c) {
      const memo: Record<string, unknown> = {};
      let allEncrypted = true;
      for (const [k, v] of Object.entries(c.memo?.fields ?? {})) {
        memo[k] = await decode(v);
        allEncrypted &&= encrypted(v);
      }
      run.children.push({ workflowId: c.workflowId!, type: c.workflowType!.name!, memo, summary: (await decode(e.userMetadata?.summary)) as string | null, encrypted: allEncrypted && (!e.userMetadata?.summary || encrypted(e.userMetadata.summary)) });
    }
  }
  return run;
}

/** True when `text` (e.g. a decoded summary) appears in the stored history as plaintext or base64 JSON. */
export function inPlaintext(raw: string, text: string): boolean {
  return raw.includes(text) || raw.includes(Buffer.from(JSON.stringify(text)).toString('base64'));
}
