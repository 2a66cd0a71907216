// Shells the terminal benchmark types into (bench/terminal.ts and its client process
// bench/terminal-clients.ts): a web terminal session or a direct ssh2 shell, with event-driven
// waits for output (no polling), so a keystroke's echo is timed from the write to the chunk.
import type { TermClient } from '../test/helpers/term-client.js';

export const sleep = (t: number) => new Promise((r) => setTimeout(r, t));
export const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

/** A shell that can be typed into and whose output can be awaited, event-driven (no polling). */
export interface Shell {
  name: string;
  write(s: string): void;
  /** Resolves when `pred` holds for the output received since the call; returns ms elapsed and bytes. */
  until(pred: (tail: string) => boolean, timeoutMs?: number): { sent(): void; done: Promise<{ ms: number; bytes: number }> };
  close(): void;
}

export function shellOf(name: string, onData: (f: (chunk: Buffer) => void) => void, write: (s: string) => void, close: () => void): Shell {
  let waiter: ((chunk: Buffer) => void) | null = null;
  onData((chunk) => waiter?.(chunk));
  return {
    name,
    write,
    close,
    until(pred, timeoutMs = 30_000) {
      let t0 = 0;
      let bytes = 0;
      let tail = '';
      let resolve!: (v: { ms: number; bytes: number }) => void;
      let reject!: (e: Error) => void;
      const done = new Promise<{ ms: number; bytes: number }>((res, rej) => ((resolve = res), (reject = rej)));
      const timer = setTimeout(() => {
        waiter = null;
        reject(new Error(`${name}: timed out; tail ${JSON.stringify(tail.slice(-200))}`));
      }, timeoutMs);
      waiter = (chunk) => {
        bytes += chunk.length;
        tail = (tail + chunk.toString('latin1')).slice(-256);
        if (pred(tail)) {
          const elapsed = performance.now() - t0;
          waiter = null;
          clearTimeout(timer);
          resolve({ ms: elapsed, bytes });
        }
      };
      return { sent: () => void (t0 = performance.now()), done };
    },
  };
}

export function termShell(c: TermClient): Shell {
  return shellOf(
    `terminal ${c.sessionId.slice(0, 8)}`,
    (f) =>
      c.ws.on('message', (d: Buffer, binary: boolean) => {
        if (binary) {
          f(d);
          c.out = ''; // TermClient keeps all output; the bench reads it event by event instead
        }
      }),
    (s) => c.send(s),
    () => c.ws.close(),
  );
}

/** Prompt set, readline ready: `P> ` at the end of the output. */
export async function prepare(sh: Shell): Promise<void> {
  const w = sh.until((t) => /HF-READY-7\r?\n(\x1b\[\?2004h)?P> $/.test(t), 15_000);
  sh.write("export PS1='P> '; echo HF-READY-$((3+4))\n");
  w.sent();
  await w.done;
}

export async function echoOnce(sh: Shell, typed: { n: number }): Promise<number> {
  if (typed.n >= 60) {
    // Keep the line short: Ctrl-U clears it; wait for readline's redraw to settle.
    sh.write('\x15');
    await sleep(30);
    typed.n = 0;
  }
  const w = sh.until((t) => t.endsWith('a'), 5000);
  w.sent();
  sh.write('a');
  typed.n++;
  return (await w.done).ms;
}
