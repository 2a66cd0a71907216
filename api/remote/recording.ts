import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { constants, gunzipSync, gzipSync } from 'node:zlib';
import type { Vault } from '../../db/vault.js';

/** Output chunks closer together than this are one asciicast event (a `cat` arrives as thousands of 32 KiB chunks). */
const COALESCE_SECONDS = 0.01;

/** Prompts after which typed input is a secret and is recorded as `*` (seed: "password prompts are not stored"). */
export const SECRET_PROMPT = /(password|passphrase|passcode|verification code|token)[^\n]*:\s*$/i;

const context = (sessionId: string) => `recording:${sessionId}`;

/**
 * An asciicast v2 recording (header line, then `[t, "o"|"i"|"r", data]` events), written
 * incrementally: every flush (each second, and on close) appends one frame — the new lines,
 * gzip-compressed and encrypted by the vault (AES-256-GCM under the active key, bound to the
 * session id) — as one base64 line. A crash loses at most the unflushed second; a frame is never
 * rewritten, so earlier ones stay readable. Input typed after a password prompt is masked.
 *
 * Throughput (bench/terminal, `cat` of 50 MB): bytes are decoded with a streaming UTF-8 decoder
 * (a character split across two SSH packets stays one character), output chunks within 10 ms are
 * one event (one JSON string per burst, not per 32 KiB packet), and each frame is compressed at
 * gzip level 1 (shorter event-loop stalls than the default level 6 at a slightly larger file).
 */
export class Recorder {
  private pending: string[] = [];
  /** The output event being coalesced: its time and its text so far (not yet in `pending`). */
  private open: { t: number; parts: string[] } | null = null;
  private readonly t0 = process.hrtime.bigint();
  private readonly outDecoder = new StringDecoder('utf8');
  private readonly inDecoder = new StringDecoder('utf8');
  private secretInput = false;
  private lastOutputTail = '';
  private writing: Promise<void> = Promise.resolve();
  bytes = 0;

  constructor(
    private readonly vault: Vault,
    readonly path: string,
    private readonly sessionId: string,
    header: { width: number; height: number; title?: string },
  ) {
    this.pending.push(JSON.stringify({ version: 2, width: header.width, height: header.height, timestamp: Math.floor(Date.now() / 1000), env: { TERM: 'xterm-256color' }, ...(header.title ? { title: header.title } : {}) }));
  }

  private t(): number {
    return Math.round(Number(process.hrtime.bigint() - this.t0) / 1e3) / 1e6;
  }

  private closeOutput(): void {
    if (!this.open) return;
    this.pending.push(JSON.stringify([this.open.t, 'o', this.open.parts.join('')]));
    this.open = null;
  }

  /** Output bytes (a Buffer is decoded as a UTF-8 stream; a string is taken as is). */
  output(chunk: Buffer | string): void {
    const data = typeof chunk === 'string' ? chunk : this.outDecoder.write(chunk);
    if (!data) return;
    const t = this.t();
    if (this.open && t - this.open.t < COALESCE_SECONDS) this.open.parts.push(data);
    else {
      this.closeOutput();
      this.open = { t, parts: [data] };
    }
    this.lastOutputTail = data.length >= 200 ? data.slice(-200) : (this.lastOutputTail + data).slice(-200);
    this.secretInput = SECRET_PROMPT.test(this.lastOutputTail);
  }

  input(chunk: Buffer | string): void {
    const data = typeof chunk === 'string' ? chunk : this.inDecoder.write(chunk);
    if (!data) return;
    this.closeOutput();
    const masked = this.secretInput ? data.replace(/[^\r\n]/g, '*') : data;
    if (/[\r\n]/.test(data)) this.secretInput = false;
    this.pending.push(JSON.stringify([this.t(), 'i', masked]));
  }

  resize(cols: number, rows: number): void {
    this.closeOutput();
    this.pending.push(JSON.stringify([this.t(), 'r', `${cols}x${rows}`]));
  }

  /** Appends what is pending as one encrypted frame. Serialized: frames keep their order. */
  flush(): Promise<void> {
    this.closeOutput();
    if (!this.pending.length) return this.writing;
    const text = this.pending.join('\n') + '\n';
    this.pending = [];
    this.writing = this.writing.then(async () => {
      // Synchronous on purpose: a thread-pool gzip let frames queue up in memory behind a busy pool
      // (bench/terminal under load: the recording lagged the output by tens of MB); level 1 keeps the stall short.
      const gz = gzipSync(text, { level: constants.Z_BEST_SPEED });
      const frame = this.vault.encrypt(gz.toString('base64'), context(this.sessionId)).ciphertext;
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      await appendFile(this.path, frame + '\n', { mode: 0o600 });
      this.bytes += frame.length + 1;
    });
    return this.writing;
  }
}

/** The whole recording as asciicast v2 text (decrypts and decompresses every frame in order). */
export async function readRecording(vault: Vault, path: string, sessionId: string): Promise<string> {
  const frames = (await readFile(path, 'utf8')).split('\n').filter(Boolean);
  return frames.map((f) => gunzipSync(Buffer.from(vault.decrypt(f, context(sessionId)), 'base64')).toString('utf8')).join('');
}
