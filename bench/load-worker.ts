// The load generator of bench/api.ts, run in a worker thread: plain keep-alive sockets with prebuilt
// requests, one per connection, closed loop or evenly spaced at a rate. Only node built-ins, so the
// worker starts in milliseconds.
import net from 'node:net';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

export interface LoadJob {
  port: number;
  path: string;
  /** One per connection, reused round-robin when there are fewer tokens than connections; '' = no header. */
  tokens: string[];
  connections: number;
  /** Offered req/s over all connections, evenly spaced per connection; undefined = closed loop. */
  rate?: number;
  duration: number;
}

export interface LoadResult {
  /** ms, 2xx responses only. */
  latencies: Float64Array;
  completed: number;
  non2xx: number;
  status5xx: number;
  errors: number;
  duration: number;
}

const REQUEST_TIMEOUT_MS = 10_000;
const HEADER_END = Buffer.from('\r\n\r\n');

export function runLoad(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve) => {
    const latencies: number[] = [];
    let completed = 0;
    let non2xx = 0;
    let status5xx = 0;
    let errors = 0;
    let open = job.connections;
    const started = performance.now();
    const endAt = started + job.duration * 1000;
    const interval = job.rate ? (1000 * job.connections) / job.rate : 0;

    const conn = (i: number) => {
      const token = job.tokens.length ? job.tokens[i % job.tokens.length]! : '';
      const request = Buffer.from(`GET ${job.path} HTTP/1.1\r\nHost: 127.0.0.1:${job.port}\r\n${token ? `Authorization: Bearer ${token}\r\n` : ''}Connection: keep-alive\r\n\r\n`);
      let socket: net.Socket;
      let buf: Buffer = Buffer.alloc(0);
      let sentAt = 0;
      let timer: NodeJS.Timeout | undefined;
      let next = started + Math.random() * interval;
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        socket.destroy();
        if (--open === 0) resolve({ latencies: Float64Array.from(latencies), completed, non2xx, status5xx, errors, duration: (performance.now() - started) / 1000 });
      };
      const send = () => {
        if (performance.now() >= endAt) return finish();
        sentAt = performance.now();
        socket.write(request);
        timer = setTimeout(() => {
          errors++;
          reconnect();
        }, REQUEST_TIMEOUT_MS);
      };
      const schedule = () => {
        if (!interval) return send();
        next += interval;
        const wait = next - performance.now();
        if (wait <= 0) {
          next = performance.now(); // behind: do not burst to catch up
          return send();
        }
        setTimeout(send, wait);
      };
      const onData = (chunk: Buffer) => {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        const he = buf.indexOf(HEADER_END);
        if (he < 0) return;
        const head = buf.subarray(0, he).toString('latin1');
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        const length = m ? Number(m[1]) : 0;
        if (buf.length < he + 4 + length) return;
        clearTimeout(timer);
        const status = Number(head.slice(9, 12));
        buf = Buffer.alloc(0);
        completed++;
        if (status >= 200 && status < 300) latencies.push(performance.now() - sentAt);
        else {
          non2xx++;
          if (status >= 500) status5xx++;
        }
        schedule();
      };
      const connect = () => {
        socket = net.connect(job.port, '127.0.0.1');
        socket.setNoDelay(true);
        socket.on('data', onData);
        socket.on('error', () => undefined);
        socket.on('close', () => {
          if (!done && sentAt && timer) {
            // closed under a request: count it and reconnect
            clearTimeout(timer);
            timer = undefined;
            errors++;
            reconnect();
          }
        });
        socket.once('connect', () => (interval ? setTimeout(send, Math.max(0, next - performance.now())) : send()));
      };
      const reconnect = () => {
        socket.removeAllListeners('close');
        socket.destroy();
        buf = Buffer.alloc(0);
        if (performance.now() >= endAt) return finish();
        connect();
      };
      connect();
    };
    for (let i = 0; i < job.connections; i++) conn(i);
  });
}


if (!isMainThread) parentPort!.postMessage(await runLoad(workerData as LoadJob));
