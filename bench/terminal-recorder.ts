/**
 * The web terminal's recorder alone (api/remote/recording.ts), as `cat` of a big file drives it:
 * BENCH_REC_MB (default 50) MB of base64 text in 32 KiB chunks (ssh2's packet size), a flush every
 * 500 ms of wall time as the terminal's tick does, then the final flush. Prints the main thread's
 * CPU time per MB, the longest event-loop stall (what a keystroke waits behind) and the recording's
 * size. No network, no Temporal: what the recording costs the event loop that carries the terminal.
 *
 *   npx tsx bench/terminal-recorder.ts
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Recorder, readRecording } from '../api/remote/recording.js';
import { Vault, generateKeyring } from '../db/vault.js';

const MB = Number(process.env.BENCH_REC_MB ?? 50);
const CHUNK = 32 * 1024;

async function main() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hf-bench-recorder-'));
  const vault = new Vault(generateKeyring('bench'));
  const text = Buffer.from(randomBytes(Math.round((MB * 1e6 * 3) / 4)).toString('base64').replace(/(.{76})/g, '$1\r\n'));
  const rec = new Recorder(vault, path.join(dir, 's.cast.enc'), 's', { width: 120, height: 40 });
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let lastFlush = t0;
  const flushes: Promise<void>[] = [];
  for (let off = 0; off < text.length; off += CHUNK) {
    rec.output(text.subarray(off, off + CHUNK));
    if (performance.now() - lastFlush >= 500) {
      flushes.push(rec.flush());
      lastFlush = performance.now();
      await new Promise((r) => setImmediate(r));
    }
    // Let timers and I/O run between packets, as they do between SSH reads.
    if ((off / CHUNK) % 16 === 0) await new Promise((r) => setImmediate(r));
  }
  await rec.flush();
  await Promise.all(flushes);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  h.disable();
  const size = (await stat(path.join(dir, 's.cast.enc'))).size;
  const back = await readRecording(vault, path.join(dir, 's.cast.enc'), 's');
  const events = back.trim().split('\n').slice(1).map((l) => JSON.parse(l) as [number, string, string]);
  const replayed = events.map((e) => e[2]).join('');
  if (replayed !== text.toString('utf8')) throw new Error('the recording does not replay the output exactly');
  const mb = text.length / 1e6;
  console.log(`recorder: ${mb.toFixed(1)} MB of output in ${Math.ceil(text.length / CHUNK)} chunks of 32 KiB`);
  console.log(`  wall ${wall.toFixed(0)} ms; main-thread CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms (${((cpu.user + cpu.system) / 1000 / mb).toFixed(1)} ms/MB; user+system, the thread pool's gzip included)`);
  console.log(`  event-loop delay: p50 ${(h.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms, max ${(h.max / 1e6).toFixed(1)} ms`);
  console.log(`  recording ${(size / 1e6).toFixed(1)} MB on disk (${(size / text.length).toFixed(2)}× the output), ${events.length} events; replays byte for byte`);
  await rm(dir, { recursive: true, force: true });
}

void main().catch((err: Error) => {
  console.error(err);
  process.exit(1);
});
