/**
 * The client side of bench/terminal.ts's concurrent-sessions figure, in its own process (forked by
 * it over IPC) so that the API process's RSS and CPU are the API's alone. It asks the API for
 * terminal tickets as the tenant (POST /allocations/:id/terminal/ticket), opens the sessions 5 at
 * a time, then types one key every 500 ms in each session (offsets spread) and reports every
 * echo's latency. Messages: {cmd:'open', n} → {type:'opened', opened, error, secs};
 * {cmd:'type', ms} → {type:'typed', lat, rss}; {cmd:'close'} → exits.
 */
import { TermClient } from '../test/helpers/term-client.js';
import { echoOnce, prepare, sleep, termShell, type Shell } from './terminal-shell.js';

const [baseUrl, allocationId, token] = process.argv.slice(2) as [string, string, string];
const shells: Shell[] = [];
const clients: TermClient[] = [];

async function openOne(): Promise<Shell> {
  const res = await fetch(`${baseUrl}/api/v1/allocations/${allocationId}/terminal/ticket`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json()) as { data?: { ticket?: string } };
  if (res.status !== 200 || !body.data?.ticket) throw new Error(`ticket: ${res.status} ${JSON.stringify(body)}`);
  const c = await TermClient.open(baseUrl, body.data.ticket);
  clients.push(c);
  const sh = termShell(c);
  await prepare(sh);
  return sh;
}

process.on('message', (m: { cmd: 'open'; n: number } | { cmd: 'type'; ms: number } | { cmd: 'close' }) => {
  void (async () => {
    if (m.cmd === 'open') {
      const t0 = performance.now();
      let error = '';
      try {
        for (let i = 0; i < m.n; i += 5) shells.push(...(await Promise.all(Array.from({ length: Math.min(5, m.n - i) }, openOne))));
      } catch (err) {
        error = (err as Error).message;
      }
      process.send!({ type: 'opened', opened: shells.length, error, secs: (performance.now() - t0) / 1000 });
    } else if (m.cmd === 'type') {
      const lat: number[] = [];
      const t0 = performance.now();
      await Promise.all(
        shells.map(async (sh, i) => {
          const counter = { n: 0 };
          await sleep((500 * i) / shells.length);
          while (performance.now() < t0 + m.ms) {
            const t = performance.now();
            lat.push(await echoOnce(sh, counter));
            await sleep(Math.max(0, 500 - (performance.now() - t)));
          }
        }),
      );
      process.send!({ type: 'typed', lat, rss: process.memoryUsage().rss });
    } else {
      for (const c of clients) c.ws.close();
      await sleep(300);
      process.exit(0);
    }
  })().catch((err: unknown) => {
    process.send!({ type: 'error', error: (err as Error).message });
  });
});
process.send!({ type: 'up' });
