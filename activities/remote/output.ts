import type { ExecResult } from './executor.js';

/**
 * What a failure message may say about a remote command's output. Messages go into workflow
 * history, heartbeat details, step rows and the customer-visible `error` field, and command output
 * can carry anything a script printed (a token, a password, a key). So a message never quotes the
 * output: it names the exit code, causes recognised from a fixed vocabulary, and the size of what
 * was withheld. Bounded by construction (the vocabulary is short).
 */
const HINTS: ReadonlyArray<readonly [RegExp, string]> = [
  [/sudo: .*(password is required|terminal is required)/i, 'sudo asked for a password'],
  [/permission denied|operation not permitted/i, 'permission denied'],
  [/no such file or directory/i, 'no such file or directory'],
  [/command not found/i, 'command not found'],
  [/already exists/i, 'already exists'],
  [/does not exist|unknown user|no such user|not found/i, 'something does not exist'],
  [/no space left on device|disk quota exceeded/i, 'no space left'],
  [/could not get lock|unable to lock|resource temporarily unavailable/i, 'a lock is held'],
  [/timed? ?out/i, 'timed out'],
  [/network is unreachable|could not resolve|name resolution|connection refused|connection timed out/i, 'network error'],
  [/killed|out of memory/i, 'killed or out of memory'],
];

export function outputSummary(r: Pick<ExecResult, 'exitCode' | 'stdout' | 'stderr'>): string {
  const text = `${r.stderr ?? ''}\n${r.stdout ?? ''}`;
  const hints = HINTS.filter(([re]) => re.test(text)).map(([, h]) => h);
  const bytes = Buffer.byteLength(r.stderr ?? '') + Buffer.byteLength(r.stdout ?? '');
  return `exit ${r.exitCode}${hints.length ? `; ${hints.join(', ')}` : ''}${bytes ? `; ${bytes} bytes of output withheld` : ''}`;
}
