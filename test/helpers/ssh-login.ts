// Logs in to a test host as a customer or an account holder would (their own credential, not the
// platform's management login) and runs one command. Shared by the lifecycle tests.
import { Client as SshClient } from 'ssh2';
import type { SshTestHost } from './sshd.js';

export function loginAs(h: SshTestHost, username: string, credential: { privateKey: string } | { password: string }, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = new SshClient();
    c.on('ready', () => {
      c.exec(command, (err, stream) => {
        if (err) return reject(err);
        let out = '';
        stream.on('data', (d: Buffer) => (out += d.toString()));
        stream.stderr.on('data', () => undefined);
        stream.on('close', () => {
          c.end();
          resolve(out.trim());
        });
      });
    });
    c.on('error', reject);
    c.connect({ host: h.host, port: h.port, username, ...credential, readyTimeout: 5000 });
  });
}

/** Logs in with a private key and runs a command. */
export const loginWithKey = (h: SshTestHost, username: string, privateKey: string, command: string) => loginAs(h, username, { privateKey }, command);

/** Polls `fn` until it returns something truthy; on timeout the error carries `explain()`'s answer. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 45_000, explain?: () => Promise<unknown>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) {
      const state = explain ? await explain().catch((err: Error) => `(could not explain: ${err.message})`) : undefined;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${state ? `\n${JSON.stringify(state, null, 2)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
