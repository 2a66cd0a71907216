import type WebSocket from 'ws';
import { vncAuthResponse } from '../../activities/remote/vnc.js';

/** Reads exactly what an RFB client needs next from a WebSocket byte stream (the API's VNC proxy). */
export class Rfb {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiters.splice(0).forEach((w) => w());
    });
    ws.on('close', () => {
      this.closed = true;
      this.waiters.splice(0).forEach((w) => w());
    });
  }
  async read(n: number, ms = 10_000): Promise<Buffer> {
    const until = Date.now() + ms;
    while (this.buf.length < n) {
      if (this.closed || Date.now() > until) throw new Error(`wanted ${n} bytes, have ${this.buf.length}${this.closed ? ' (closed)' : ''}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
  send(b: Buffer) {
    this.ws.send(b, { binary: true });
  }

  /**
   * RFB 3.8 handshake with VNC Authentication (security type 2) using `password`: returns the
   * SecurityResult (0 = OK, 1 = failed) and, on success, the ServerInit's framebuffer size.
   */
  async vncAuth(password: string): Promise<{ types: number[]; result: number; width?: number; height?: number }> {
    const version = (await this.read(12)).toString();
    if (!/^RFB 003\.00[3-8]\n$/.test(version)) throw new Error(`not an RFB server: ${JSON.stringify(version)}`);
    this.send(Buffer.from('RFB 003.008\n'));
    const n = (await this.read(1))[0]!;
    if (n === 0) throw new Error(`server refused: ${(await this.read((await this.read(4)).readUInt32BE(0))).toString()}`);
    const types = [...(await this.read(n))];
    if (!types.includes(2)) return { types, result: -1 };
    this.send(Buffer.from([2]));
    const challenge = await this.read(16);
    this.send(vncAuthResponse(password, challenge));
    const result = (await this.read(4)).readUInt32BE(0);
    if (result !== 0) return { types, result };
    this.send(Buffer.from([1])); // ClientInit: shared
    const init = await this.read(24);
    await this.read(init.readUInt32BE(20)); // desktop name
    return { types, result, width: init.readUInt16BE(0), height: init.readUInt16BE(2) };
  }
}
