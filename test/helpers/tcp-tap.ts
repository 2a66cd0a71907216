/**
 * A loopback TCP relay between a client and a server that records the bytes each way and can
 * tamper with them: flip a byte inside the next encrypted request, or replay a recorded request on
 * the same upstream connection (its answer is kept from the client and recorded instead).
 */
import net from 'node:net';

export interface TcpTap {
  port: number;
  /** Everything the client sent / the server answered, per connection. */
  toServer: Buffer[];
  toClient: Buffer[];
  /** Flip one byte of the sealed data in the next client chunk holding an encrypted body. */
  tamperNext(): void;
  /** Re-send `request` on the most recent upstream connection; resolves with the server's raw answer. */
  replay(request: Buffer): Promise<Buffer>;
  close(): Promise<void>;
}

export async function startTcpTap(targetPort: number): Promise<TcpTap> {
  const toServer: Buffer[] = [];
  const toClient: Buffer[] = [];
  let tamper = false;
  let last: { upstream: net.Socket; capture?: (b: Buffer) => void } | undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    const conn: { upstream: net.Socket; capture?: (b: Buffer) => void } = { upstream };
    last = conn;
    client.on('data', (d: Buffer) => {
      let chunk = d;
      const end = chunk.indexOf('--Encrypted Boundary--');
      if (tamper && end > 0) {
        tamper = false;
        chunk = Buffer.from(chunk);
        chunk[end - 1]! ^= 0x01;
      }
      toServer.push(chunk);
      upstream.write(chunk);
    });
    upstream.on('data', (d: Buffer) => {
      if (conn.capture) return conn.capture(d);
      toClient.push(d);
      client.write(d);
    });
    const done = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', done).on('error', done);
    upstream.on('close', done).on('error', done);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    toServer,
    toClient,
    tamperNext: () => void (tamper = true),
    replay(request) {
      const conn = last!;
      return new Promise((resolve) => {
        const parts: Buffer[] = [];
        const timer = setTimeout(() => resolve(Buffer.concat(parts)), 3000);
        conn.capture = (b) => {
          parts.push(b);
          if (/\r\n\r\n/.test(Buffer.concat(parts).toString('latin1'))) {
            clearTimeout(timer);
            setTimeout(() => resolve(Buffer.concat(parts)), 100);
          }
        };
        conn.upstream.write(request);
      });
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
