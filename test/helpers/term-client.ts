// A node `ws` client of the web terminal (api/remote/terminal.ts), as the console's page speaks it.
import WebSocket from 'ws';

/** A node `ws` client of the web terminal: collects output, exposes close code/reason. */
export class TermClient {
  out = '';
  sessionId = '';
  closed: { code: number; reason: string; at: number } | null = null;
  messages: Array<Record<string, unknown>> = [];
  constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer, binary: boolean) => {
      if (binary) this.out += d.toString('utf8');
      else {
        const m = JSON.parse(d.toString('utf8')) as Record<string, unknown>;
        this.messages.push(m);
        if (m.type === 'ready') {
          this.sessionId = String(m.session_id);
          this.resumeToken = String(m.resume_token ?? '');
        }
      }
    });
    ws.on('close', (code, reason) => (this.closed = { code, reason: reason.toString(), at: Date.now() }));
  }
  resumeToken = '';
  static open(baseUrl: string, ticket: string, cols = 100, rows = 30, resume?: { sessionId: string; token: string }): Promise<TermClient> {
    return new Promise((resolve, reject) => {
      const q = resume ? `&resume=${resume.sessionId}` : '';
      const ws = new WebSocket(`${baseUrl.replace('http', 'ws')}/api/v1/terminal?cols=${cols}&rows=${rows}${q}`, ['hostflow.terminal', `ticket.${ticket}`, ...(resume ? [`resume.${resume.token}`] : [])]);
      const c = new TermClient(ws);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`refused: ${res.statusCode}`)));
      ws.once('error', reject);
      const t = setInterval(() => {
        if (c.sessionId) {
          clearInterval(t);
          resolve(c);
        }
        if (c.closed) {
          clearInterval(t);
          reject(new Error(`closed ${c.closed.code} ${JSON.stringify(c.messages)}`));
        }
      }, 20);
    });
  }
  send(s: string) {
    this.ws.send(Buffer.from(s), { binary: true });
  }
  async waitFor(re: RegExp, ms = 10_000): Promise<void> {
    const until = Date.now() + ms;
    while (!re.test(this.out)) {
      if (Date.now() > until) throw new Error(`no ${re} in terminal output: ${JSON.stringify(this.out.slice(-500))}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  async waitClosed(ms = 5000): Promise<{ code: number; reason: string; at: number }> {
    const until = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > until) throw new Error('websocket not closed');
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.closed;
  }
}
