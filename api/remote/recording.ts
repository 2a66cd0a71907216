import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Vault } from '../../db/vault.js';

/** Prompts after which typed input is a secret and is recorded as `*` (seed: "password prompts are not stored"). */
export const SECRET_PROMPT = /(password|passphrase|passcode|verification code|token)[^\n]*:\s*$/i;

const context = (sessionId: string) => `recording:${sessionId}`;

/**
 * An asciicast v2 recording (header line, then `[t, "o"|"i"|"r", data]` events), written
 * incrementally: every flush (each second, and on close) appends one frame — the new lines,
 * gzip-compressed and encrypted by the vault (AES-256-GCM under the active key, bound to the
 * session id) — as one base64 line. A crash loses at most the unflushed second; a frame is never
 * rewritten, so earlier ones stay readable. Input typed after a password prompt is masked.
 */
export class Recorder {
  private pending: string[] = [];
  private readonly t0 = process.hrtime.bigint();
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

  output(data: string): void {
    this.pending.push(JSON.stringify([this.t(), 'o', data]));
    this.lastOutputTail = (this.lastOutputTail + data).slice(-200);
    this.secretInput = SECRET_PROMPT.test(this.lastOutputTail);
  }

  input(data: string): void {
    const masked = this.secretInput ? data.replace(/[^\r\n]/g, '*') : data;
    if (/[\r\n]/.test(data)) this.secretInput = false;
    this.pending.push(JSON.stringify([this.t(), 'i', masked]));
  }

  resize(cols: number, rows: number): void {
    this.pending.push(JSON.stringify([this.t(), 'r', `${cols}x${rows}`]));
  }

  /** Appends what is pending as one encrypted frame. Serialized: frames keep their order. */
  flush(): Promise<void> {
    if (!this.pending.length) return this.writing;
    const text = this.pending.join('\n') + '\n';
    this.pending = [];
    this.writing = this.writing.then(async () => {
      const frame = this.vault.encrypt(gzipSync(text).toString('base64'), context(this.sessionId)).ciphertext;
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
