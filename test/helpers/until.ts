// Polls until a condition holds, for tests that wait on a workflow through the API: on timeout the
// error says what was awaited and, when `explain` is given, the state that explains why.
export async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 60_000, explain?: () => Promise<unknown>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) {
      const state = explain ? await explain().catch((err: Error) => `(could not explain: ${err.message})`) : undefined;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${state ? `\n${JSON.stringify(state, null, 2)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}
