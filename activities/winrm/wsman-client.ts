/**
 * A minimal WS-Management (WinRM) client for the Windows Remote Shell: Create shell → Command →
 * Send (stdin) → Receive (until CommandState Done) → Signal → Delete, with Basic, NTLM (./ntlm.ts)
 * or Kerberos auth; NTLM/Kerberos bind a security context to each TCP connection (up to 8 per
 * endpoint) and, over plain HTTP, seal every body ([MS-WSMV] 2.2.9.1, ./wsman-encryption.ts).
 * Protocol reference: [MS-WSMV] 3.1.4 (Shell, Command, Receive, Send, Signal).
 *
 * Why not the `winrm-client` package (0.0.11, still a dependency): read in node_modules, it
 * cannot do what a RemoteExecutor must do:
 *  - no exit code: Receive never reads rsp:CommandState/rsp:ExitCode, and `runCommand` returns
 *    stdout *or* (if stdout is empty) stderr, trimmed, decoded as ASCII;
 *  - one Receive only: no loop until CommandState Done, and a Receive that hits the server's
 *    OperationTimeout (HTTP 500 + w:TimedOut fault, normal for commands quiet for 60 s) rejects
 *    as "Failed to process the request: 500";
 *  - stdin: `doSendInput` never sets End="true", so a process reading stdin to the end hangs;
 *  - no Signal (terminate) and no cancellation, so a timed-out command keeps running;
 *  - HTTPS only with `rejectUnauthorized` true/false: no CA, no certificate pinning, so a WinRM
 *    listener's self-signed certificate means trusting anyone;
 *  - no connect timeout, no keep-alive for Basic (a TCP + TLS handshake per SOAP message), the
 *    same MessageID on every message (uuid v5 of a constant), shell code page 437, commands run
 *    through cmd.exe (8191-character command line);
 *  - NTLM is used for DOMAIN\user and user@domain names, but without message sealing, so it only
 *    works over HTTPS or with AllowUnencrypted=true, and it re-handshakes on every message.
 * The SOAP messages below follow the same shapes (and pywinrm/pypsrp's), so swapping back later is
 * a local change. fast-xml-parser (the parser winrm-client uses, present through it) reads the
 * responses; if winrm-client is ever removed, declare fast-xml-parser in package.json.
 *
 * Transport: one keep-alive agent per endpoint; sockets are created by the agent itself so that
 * (a) the connect timeout covers TCP + TLS, and (b) on HTTPS the server certificate is checked by
 * `verifyCertificate` *before* the first byte of a request (and its Authorization header) is sent.
 */
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { XMLParser } from 'fast-xml-parser';
import { createSecurityContext, type SecurityContext } from './wsman-auth.js';
import { encryptedContentType, frameEncrypted, parseEncrypted } from './wsman-encryption.js';

const NS = {
  s: 'http://www.w3.org/2003/05/soap-envelope',
  a: 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
  w: 'http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd',
  p: 'http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd',
  rsp: 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell',
} as const;
const RESOURCE_CMD = 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd';
const ANONYMOUS = 'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous';
export const WSMAN_ACTIONS = {
  create: 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Create',
  delete: 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete',
  command: `${NS.rsp}/Command`,
  send: `${NS.rsp}/Send`,
  receive: `${NS.rsp}/Receive`,
  signal: `${NS.rsp}/Signal`,
} as const;
const SIGNAL_TERMINATE = `${NS.rsp}/signal/terminate`;
const STATE_DONE = `${NS.rsp}/CommandState/Done`;
/** WSManFault code for "the operation did not complete within OperationTimeout" (a Receive with nothing new). */
const WSMAN_TIMED_OUT = '2150858793';

export type WsManErrorKind = 'auth' | 'fault' | 'http' | 'network' | 'connect-timeout' | 'response-timeout' | 'aborted' | 'protocol';

/** A failure talking WS-Man; the executor maps it to a RemoteError. */
export class WsManError extends Error {
  override name = 'WsManError';
  constructor(
    public readonly kind: WsManErrorKind,
    message: string,
    public readonly info: { statusCode?: number; faultSubcode?: string; wsmanCode?: string; code?: string; staleSocket?: boolean } = {},
  ) {
    super(message);
  }
}

export interface WsManEndpoint {
  host: string;
  port: number;
  https: boolean;
  username: string;
  password: string;
  /** TCP (+ TLS) connect timeout. */
  connectTimeoutMs: number;
  /**
   * HTTPS only: called with the server certificate after the TLS handshake and before any request
   * bytes are written. Throw (or reject) to refuse the connection. Without it, any certificate is
   * accepted (only sensible with an explicit pin supplied by the caller).
   */
  verifyCertificate?: (cert: tls.PeerCertificate) => void | Promise<void>;
  /** Server-side wait per Receive (w:OperationTimeout), in seconds. Default 20. */
  operationTimeoutS?: number;
  /**
   * `basic` (local accounts, HTTPS), `ntlm` (NTLMv2, ours: ./ntlm.ts) or `kerberos` (GSSAPI via the
   * `kerberos` binding). NTLM and Kerberos authenticate the TCP connection (HTTP.sys does it per
   * connection); over HTTP every body is then sealed ([MS-WSMV] 2.2.9.1 multipart/encrypted).
   * Default `basic`.
   */
  auth?: WsManAuth;
  /** Kerberos: the service principal's host part (`HTTP/<spnHost>`), default `host`. */
  spnHost?: string;
  /** Kerberos: the client principal (user@REALM) whose ticket in the credential cache is used. */
  principal?: string;
}

export type WsManAuth = 'basic' | 'ntlm' | 'kerberos';

export interface ReceivedChunk {
  stream: 'stdout' | 'stderr';
  data: Buffer;
}

export interface ReceiveResult {
  chunks: ReceivedChunk[];
  done: boolean;
  exitCode?: number;
}

interface CallOptions {
  signal?: AbortSignal;
  /** Client-side limit for the HTTP exchange (response included). */
  timeoutMs?: number;
  /** Timeout kind reported when timeoutMs fires. */
  timeoutKind?: 'connect-timeout' | 'response-timeout';
}

const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  textNodeName: '#text',
  isArray: (name) => name === 'Stream' || name === 'Selector',
});

type Node = Record<string, unknown>;
const obj = (v: unknown): Node => (v && typeof v === 'object' ? (v as Node) : {});
const text = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'object' && v ? String((v as Node)['#text'] ?? '') : '');
const localName = (qname: string) => qname.slice(qname.indexOf(':') + 1);

export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** A keep-alive agent whose sockets are verified before use (see the file comment). */
function createAgent(ep: WsManEndpoint, onCert?: (cert: tls.PeerCertificate) => void, maxSockets = 8): http.Agent {
  const connect = (done: (err: Error | null, stream: Duplex) => void): void => {
    const host = ep.host;
    const port = ep.port;
    let settled = false;
    const sock: net.Socket = ep.https
      ? tls.connect({ host, port, rejectUnauthorized: false, servername: net.isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'] })
      : net.connect({ host, port });
    sock.setNoDelay(true);
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.off('error', onError);
      if (err) sock.destroy();
      done(err, sock);
    };
    const onError = (err: NodeJS.ErrnoException) =>
      finish(err instanceof WsManError || err.name === 'RemoteError' ? err : new WsManError('network', `${host}:${port}: ${err.code ?? err.message}`, { code: err.code }));
    const timer = setTimeout(
      () => finish(new WsManError('connect-timeout', `no connection to ${host}:${port} within ${ep.connectTimeoutMs} ms`)),
      ep.connectTimeoutMs,
    );
    sock.once('error', onError);
    if (ep.https) {
      sock.once('secureConnect', () => {
        onCert?.((sock as tls.TLSSocket).getPeerCertificate());
        const verify = ep.verifyCertificate;
        if (!verify) return finish(null);
        Promise.resolve()
          .then(() => verify((sock as tls.TLSSocket).getPeerCertificate()))
          .then(() => finish(null), (err: Error) => finish(err));
      });
    } else {
      sock.once('connect', () => finish(null));
    }
  };
  // Idle pooled sockets close after 30 s, before HTTP.sys drops them (its idle limit is 120 s).
  const agentOpts = { keepAlive: true, keepAliveMsecs: 15_000, maxSockets, maxFreeSockets: Math.min(4, maxSockets), timeout: 30_000 };
  if (ep.https) {
    return new (class extends https.Agent {
      override createConnection(_options: http.ClientRequestArgs, cb?: (err: Error | null, stream: Duplex) => void) {
        connect(cb!);
        return undefined;
      }
    })(agentOpts);
  }
  return new (class extends http.Agent {
    override createConnection(_options: http.ClientRequestArgs, cb?: (err: Error | null, stream: Duplex) => void) {
      connect(cb!);
      return undefined;
    }
  })(agentOpts);
}

interface Channel {
  agent: http.Agent;
  /** The connection the context authenticated (HTTP.sys binds NTLM/Kerberos to the TCP connection). */
  socket?: net.Socket;
  ctx?: SecurityContext;
  /** HTTPS: the server certificate of the current connection (channel binding). */
  cert?: tls.PeerCertificate;
}

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  socket: net.Socket;
}

/** Most authenticated connections per endpoint (each carries its own security context). */
const MAX_CHANNELS = 8;

export class WsManClient {
  private readonly agent?: http.Agent;
  private readonly url: string;
  private readonly channels: Channel[] = [];
  private readonly idle: Channel[] = [];
  private readonly waiting: Array<(ch: Channel) => void> = [];
  readonly operationTimeoutS: number;
  readonly auth: WsManAuth;

  constructor(private readonly ep: WsManEndpoint) {
    this.auth = ep.auth ?? 'basic';
    if (this.auth === 'basic') this.agent = createAgent(ep);
    this.url = `${ep.https ? 'https' : 'http'}://${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${ep.port}/wsman`;
    this.operationTimeoutS = ep.operationTimeoutS ?? 20;
  }

  /** Whether bodies are sealed with the session key (NTLM/Kerberos over plain HTTP). */
  get encrypted(): boolean {
    return this.auth !== 'basic' && !this.ep.https;
  }

  /** Client-side limit for requests the server answers at once (everything but Receive). */
  private get requestTimeoutMs() {
    return this.operationTimeoutS * 1000 + 15_000;
  }

  /** Creates a cmd shell (UTF-8 code page, no user profile); returns its ShellId. */
  async createShell(opts: CallOptions & { codepage?: number; noProfile?: boolean } = {}): Promise<string> {
    const body = `<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>`;
    const res = await this.call(
      WSMAN_ACTIONS.create,
      body,
      { options: { WINRS_NOPROFILE: opts.noProfile === false ? 'FALSE' : 'TRUE', WINRS_CODEPAGE: String(opts.codepage ?? 65001) } },
      opts,
    );
    const created = obj(obj(res.ResourceCreated).ReferenceParameters);
    const selectors = (obj(created.SelectorSet).Selector as unknown[] | undefined) ?? [];
    const fromSelector = selectors.map(obj).find((s) => s['@_Name'] === 'ShellId');
    const shellId = fromSelector ? text(fromSelector) : text(obj(res.Shell).ShellId);
    if (!shellId) throw new WsManError('protocol', 'Create shell response carries no ShellId');
    return shellId;
  }

  /**
   * Starts a process in the shell. `skipCmdShell` runs it with CreateProcess directly instead of via
   * `cmd.exe /c` (no cmd metacharacter parsing, 32767- instead of 8191-character command line).
   * `consoleModeStdin` false makes stdin a pipe (needed when data is sent with `send`).
   */
  async command(
    shellId: string,
    command: string,
    args: string[],
    opts: CallOptions & { skipCmdShell?: boolean; consoleModeStdin?: boolean } = {},
  ): Promise<string> {
    const argXml = args.map((a) => `<rsp:Arguments>${xmlEscape(a)}</rsp:Arguments>`).join('');
    const body = `<rsp:CommandLine><rsp:Command>${xmlEscape(command)}</rsp:Command>${argXml}</rsp:CommandLine>`;
    const res = await this.call(
      WSMAN_ACTIONS.command,
      body,
      {
        shellId,
        options: {
          WINRS_CONSOLEMODE_STDIN: opts.consoleModeStdin === false ? 'FALSE' : 'TRUE',
          WINRS_SKIP_CMD_SHELL: opts.skipCmdShell ? 'TRUE' : 'FALSE',
        },
      },
      opts,
    );
    const commandId = text(obj(res.CommandResponse).CommandId);
    if (!commandId) throw new WsManError('protocol', 'Command response carries no CommandId');
    return commandId;
  }

  /** Writes to the command's stdin; `end` closes it (the process sees EOF). */
  async send(shellId: string, commandId: string, data: Buffer, end: boolean, opts: CallOptions = {}): Promise<void> {
    const body = `<rsp:Send><rsp:Stream Name="stdin" CommandId="${xmlEscape(commandId)}"${end ? ' End="true"' : ''}>${data.toString('base64')}</rsp:Stream></rsp:Send>`;
    await this.call(WSMAN_ACTIONS.send, body, { shellId }, opts);
  }

  /**
   * One Receive round: the server answers as soon as there is output or the command ends, or after
   * OperationTimeout with a w:TimedOut fault, which is returned here as "nothing yet".
   */
  async receive(shellId: string, commandId: string, opts: CallOptions = {}): Promise<ReceiveResult> {
    const body = `<rsp:Receive><rsp:DesiredStream CommandId="${xmlEscape(commandId)}">stdout stderr</rsp:DesiredStream></rsp:Receive>`;
    let res: Node;
    try {
      res = await this.call(
        WSMAN_ACTIONS.receive,
        body,
        { shellId, options: { WSMAN_CMDSHELL_OPTION_KEEPALIVE: 'TRUE' } },
        { ...opts, timeoutMs: opts.timeoutMs ?? this.requestTimeoutMs },
      );
    } catch (err) {
      if (err instanceof WsManError && err.kind === 'fault' && (err.info.wsmanCode === WSMAN_TIMED_OUT || err.info.faultSubcode === 'TimedOut')) {
        return { chunks: [], done: false };
      }
      throw err;
    }
    const rr = obj(res.ReceiveResponse);
    const chunks: ReceivedChunk[] = [];
    for (const s of ((rr.Stream as unknown[] | undefined) ?? []).map(obj)) {
      const name = s['@_Name'];
      const content = text(s);
      if ((name === 'stdout' || name === 'stderr') && content) chunks.push({ stream: name, data: Buffer.from(content, 'base64') });
    }
    const state = obj(rr.CommandState);
    const done = state['@_State'] === STATE_DONE;
    const exitRaw = text(state.ExitCode);
    return { chunks, done, exitCode: done && exitRaw !== '' ? Number(exitRaw) : undefined };
  }

  /** Asks the server to terminate the command's process. */
  async terminate(shellId: string, commandId: string, opts: CallOptions = {}): Promise<void> {
    const body = `<rsp:Signal CommandId="${xmlEscape(commandId)}"><rsp:Code>${SIGNAL_TERMINATE}</rsp:Code></rsp:Signal>`;
    await this.call(WSMAN_ACTIONS.signal, body, { shellId }, opts);
  }

  async deleteShell(shellId: string, opts: CallOptions = {}): Promise<void> {
    await this.call(WSMAN_ACTIONS.delete, '', { shellId }, opts);
  }

  /** Closes pooled sockets. */
  close(): void {
    this.agent?.destroy();
    for (const ch of this.channels) ch.agent.destroy();
    this.channels.length = 0;
    this.idle.length = 0;
  }

  private envelope(action: string, body: string, h: { shellId?: string; options?: Record<string, string> }, operationTimeoutS: number): string {
    const selector = h.shellId ? `<w:SelectorSet><w:Selector Name="ShellId">${xmlEscape(h.shellId)}</w:Selector></w:SelectorSet>` : '';
    const options = h.options
      ? `<w:OptionSet>${Object.entries(h.options)
          .map(([k, v]) => `<w:Option Name="${xmlEscape(k)}">${xmlEscape(v)}</w:Option>`)
          .join('')}</w:OptionSet>`
      : '';
    return (
      `<?xml version="1.0" encoding="utf-8"?>` +
      `<s:Envelope xmlns:s="${NS.s}" xmlns:a="${NS.a}" xmlns:w="${NS.w}" xmlns:p="${NS.p}" xmlns:rsp="${NS.rsp}">` +
      `<s:Header>` +
      `<a:To>${xmlEscape(this.url)}</a:To>` +
      `<w:ResourceURI s:mustUnderstand="true">${RESOURCE_CMD}</w:ResourceURI>` +
      `<a:ReplyTo><a:Address s:mustUnderstand="true">${ANONYMOUS}</a:Address></a:ReplyTo>` +
      `<a:Action s:mustUnderstand="true">${action}</a:Action>` +
      `<w:MaxEnvelopeSize s:mustUnderstand="true">512000</w:MaxEnvelopeSize>` +
      `<a:MessageID>uuid:${randomUUID().toUpperCase()}</a:MessageID>` +
      `<w:Locale xml:lang="en-US" s:mustUnderstand="false"/>` +
      `<p:DataLocale xml:lang="en-US" s:mustUnderstand="false"/>` +
      `<w:OperationTimeout>PT${operationTimeoutS}S</w:OperationTimeout>` +
      selector +
      options +
      `</s:Header>` +
      `<s:Body>${body}</s:Body>` +
      `</s:Envelope>`
    );
  }

  /** POSTs one SOAP message; returns the parsed s:Body (namespace prefixes removed). */
  private async call(action: string, body: string, h: { shellId?: string; options?: Record<string, string> }, opts: CallOptions): Promise<Node> {
    const payload = Buffer.from(this.envelope(action, body, h, this.operationTimeoutS), 'utf8');
    const { status, text: resText } = this.auth === 'basic' ? await this.postBasic(payload, opts) : await this.postNegotiated(payload, opts);
    let parsed: Node;
    try {
      parsed = resText ? obj(xml.parse(resText)) : {};
    } catch (err) {
      throw new WsManError('protocol', `unparsable WS-Man response (HTTP ${status}): ${(err as Error).message}`, { statusCode: status });
    }
    const bodyNode = obj(obj(parsed.Envelope).Body);
    const fault = bodyNode.Fault;
    if (fault) throw faultError(obj(fault), status);
    if (status === 401) throw new WsManError('auth', `WinRM refused the credentials of ${this.ep.username} (HTTP 401)`, { statusCode: 401 });
    if (status < 200 || status > 299) throw new WsManError('http', `WinRM answered HTTP ${status}`, { statusCode: status });
    return bodyNode;
  }

  private async postBasic(payload: Buffer, opts: CallOptions): Promise<{ status: number; text: string }> {
    const headers = {
      Authorization: `Basic ${Buffer.from(`${this.ep.username}:${this.ep.password}`, 'utf8').toString('base64')}`,
      'Content-Type': 'application/soap+xml;charset=UTF-8',
    };
    let res: RawResponse;
    try {
      res = await this.post(this.agent!, headers, payload, opts);
    } catch (err) {
      // A pooled socket the server closed while idle fails before the request reached it: resend once.
      if (!(err instanceof WsManError && err.info.staleSocket)) throw err;
      res = await this.post(this.agent!, headers, payload, opts);
    }
    return { status: res.status, text: decodeBody(res) };
  }

  /** NTLM/Kerberos: on an authenticated connection, the body sealed (HTTP) or as is (HTTPS). */
  private async postNegotiated(payload: Buffer, opts: CallOptions): Promise<{ status: number; text: string }> {
    const ch = await this.acquireChannel();
    let healthy = false;
    try {
      for (let attempt = 0; ; attempt++) {
        if (!ch.ctx || !ch.socket || ch.socket.destroyed) await this.handshake(ch, opts);
        const r = await this.sendOnChannel(ch, payload, opts).catch((err: unknown) => {
          // The authenticated connection went away (idle close, server restart): authenticate anew once.
          if (attempt === 0 && err instanceof WsManError && (err.info.staleSocket || err.message === 'REAUTH')) return null;
          throw err;
        });
        if (r) {
          healthy = true;
          return r;
        }
        ch.ctx = undefined;
      }
    } finally {
      this.releaseChannel(ch, healthy);
    }
  }

  private async sendOnChannel(ch: Channel, payload: Buffer, opts: CallOptions): Promise<{ status: number; text: string }> {
    const ctx = ch.ctx!;
    let headers: Record<string, string>;
    let body: Buffer;
    if (this.encrypted) {
      const { header, sealed } = await ctx.wrap(payload);
      body = frameEncrypted(ctx.protocol, header, sealed, payload.length);
      headers = { 'Content-Type': encryptedContentType(ctx.protocol) };
    } else {
      body = payload;
      headers = { 'Content-Type': 'application/soap+xml;charset=UTF-8' };
    }
    const res = await this.post(ch.agent, headers, body, opts, ch.socket);
    if (res.status === 401) {
      // The server no longer knows this connection's context: nothing was processed.
      throw new WsManError('auth', 'REAUTH', { statusCode: 401 });
    }
    const type = String(res.headers['content-type'] ?? '');
    if (!this.encrypted) return { status: res.status, text: decodeBody(res) };
    if (!/^multipart\/encrypted/i.test(type)) {
      // Over HTTP every answer with a body must be sealed; an unsealed one is not from the peer we authenticated.
      if (res.body.length === 0) return { status: res.status, text: '' };
      throw new WsManError('protocol', `WinRM answered HTTP ${res.status} with an unencrypted ${type || 'body'} on an encrypted session`, { statusCode: res.status });
    }
    let parts: ReturnType<typeof parseEncrypted>;
    try {
      parts = parseEncrypted(res.body, ctx.protocol);
    } catch (err) {
      throw new WsManError('protocol', `WinRM encrypted response: ${(err as Error).message}`, { statusCode: res.status });
    }
    let plain: Buffer;
    try {
      plain = await ctx.unwrap(parts.header, parts.sealed);
    } catch (err) {
      throw new WsManError('protocol', `WinRM encrypted response does not verify: ${(err as Error).message}`, { statusCode: res.status });
    }
    if (plain.length !== parts.originalLength) {
      throw new WsManError('protocol', `WinRM encrypted response: ${plain.length} bytes, OriginalContent says ${parts.originalLength}`);
    }
    const charset = /charset=([\w-]+)/i.exec(parts.contentType)?.[1]?.toLowerCase();
    return { status: res.status, text: charset === 'utf-16' || charset === 'utf-16le' ? plain.toString('utf16le') : plain.toString('utf8') };
  }

  /** Runs the Negotiate exchange with empty bodies on the channel's connection (as pywinrm/Windows do). */
  private async handshake(ch: Channel, opts: CallOptions): Promise<void> {
    ch.ctx = undefined;
    const certHash = () => (ch.cert?.raw ? createHash('sha256').update(ch.cert.raw).digest() : undefined);
    let ctx: SecurityContext;
    try {
      ctx = await createSecurityContext(this.ep, certHash);
    } catch (err) {
      throw new WsManError('auth', (err as Error).message);
    }
    let token = await this.stepContext(ctx, null);
    let socket: net.Socket | undefined;
    for (let round = 0; round < 4; round++) {
      const res = await this.post(ch.agent, { Authorization: `Negotiate ${token!.toString('base64')}` }, Buffer.alloc(0), opts, socket);
      socket = res.socket;
      const serverToken = negotiateToken(res.headers['www-authenticate']);
      if (res.status >= 200 && res.status < 300) {
        if (serverToken) await this.stepContext(ctx, serverToken);
        if (!ctx.complete) throw new WsManError('auth', `WinRM accepted ${ctx.mechanism} before the context completed (no mutual authentication)`);
        ch.ctx = ctx;
        ch.socket = socket;
        const s = socket;
        s.once('close', () => {
          if (ch.socket === s) ch.ctx = undefined;
        });
        return;
      }
      if (res.status === 401 && serverToken && !ctx.complete) {
        token = await this.stepContext(ctx, serverToken);
        if (!token) throw new WsManError('auth', `${ctx.mechanism}: no token to answer the server with`);
        continue;
      }
      if (res.status === 401) {
        throw new WsManError('auth', `WinRM refused the ${ctx.mechanism === 'ntlm' ? 'NTLM' : 'Kerberos'} credentials of ${this.ep.username} (HTTP 401)`, { statusCode: 401 });
      }
      throw new WsManError('http', `WinRM answered HTTP ${res.status} during ${ctx.mechanism} authentication`, { statusCode: res.status });
    }
    throw new WsManError('auth', `${ctx.mechanism}: authentication did not finish in 4 rounds`);
  }

  private async stepContext(ctx: SecurityContext, input: Buffer | null): Promise<Buffer | null> {
    try {
      return await ctx.step(input);
    } catch (err) {
      throw new WsManError('auth', (err as Error).message);
    }
  }

  private acquireChannel(): Promise<Channel> {
    const free = this.idle.pop();
    if (free) return Promise.resolve(free);
    if (this.channels.length < MAX_CHANNELS) {
      const ch: Channel = { agent: undefined as unknown as http.Agent };
      ch.agent = createAgent(this.ep, (cert) => (ch.cert = cert), 1);
      this.channels.push(ch);
      return Promise.resolve(ch);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** An interrupted exchange leaves the context's sequence numbers unknown: such a channel is dropped. */
  private releaseChannel(ch: Channel, healthy: boolean): void {
    if (!healthy) {
      ch.agent.destroy();
      ch.ctx = undefined;
      ch.socket = undefined;
    }
    const next = this.waiting.shift();
    if (next) next(ch);
    else this.idle.push(ch);
  }

  private post(agent: http.Agent, headers: Record<string, string>, payload: Buffer, opts: CallOptions, expectSocket?: net.Socket): Promise<RawResponse> {
    const mod = this.ep.https ? https : http;
    const timeoutMs = opts.timeoutMs ?? this.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | null, value?: RawResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(value!);
      };
      const req = mod.request({
        agent,
        host: this.ep.host,
        port: this.ep.port,
        path: '/wsman',
        method: 'POST',
        headers: { ...headers, 'Content-Length': payload.length, 'User-Agent': 'hostflow-wsman' },
      });
      const onAbort = () => {
        const err = new WsManError('aborted', 'request aborted');
        settle(err);
        req.destroy(err);
      };
      const timer = setTimeout(() => {
        const kind = opts.timeoutKind ?? 'response-timeout';
        const err = new WsManError(kind, `no WS-Man response from ${this.ep.host}:${this.ep.port} within ${timeoutMs} ms`);
        settle(err);
        req.destroy(err);
      }, timeoutMs);
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      let usedSocket: net.Socket | undefined;
      req.on('socket', (s: net.Socket) => {
        usedSocket = s;
        // An authenticated exchange must stay on its connection; a new one means the server forgot us.
        if (expectSocket && s !== expectSocket) {
          const err = new WsManError('network', 'REAUTH', { staleSocket: true });
          settle(err);
          req.destroy(err);
        }
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        const stale = req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
        settle(
          err instanceof WsManError || err.name === 'RemoteError'
            ? err
            : new WsManError('network', `${this.ep.host}:${this.ep.port}: ${err.code ?? err.message}`, { code: err.code, staleSocket: stale }),
        );
      });
      req.on('response', (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('error', (err) => settle(new WsManError('network', err.message)));
        res.on('end', () => settle(null, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), socket: usedSocket! }));
      });
      req.end(payload);
    });
  }
}

function decodeBody(res: RawResponse): string {
  const charset = /charset=([\w-]+)/i.exec(String(res.headers['content-type'] ?? ''))?.[1]?.toLowerCase();
  return charset === 'utf-16' || charset === 'utf-16le' ? res.body.toString('utf16le') : res.body.toString('utf8');
}

/** The token of a `WWW-Authenticate: Negotiate <base64>` header, if any. */
function negotiateToken(h: string | string[] | undefined): Buffer | null {
  for (const v of Array.isArray(h) ? h : h ? h.split(/,\s*(?=[A-Za-z]+(?:\s|$))/) : []) {
    const m = /^\s*(?:Negotiate|Kerberos)\s+([A-Za-z0-9+/=]+)\s*$/i.exec(v);
    if (m) return Buffer.from(m[1]!, 'base64');
  }
  return null;
}

function faultError(fault: Node, status: number): WsManError {
  const code = obj(fault.Code);
  const subcode = localName(text(obj(code.Subcode).Value));
  const reason = text(obj(fault.Reason).Text).trim();
  const wsmanFault = obj(obj(fault.Detail).WSManFault);
  const wsmanCode = String(wsmanFault['@_Code'] ?? '');
  const detail = text(wsmanFault.Message).trim();
  return new WsManError('fault', `WS-Man fault ${subcode || localName(text(code.Value))}${wsmanCode ? ` (${wsmanCode})` : ''}: ${detail || reason || 'no reason given'}`, {
    statusCode: status,
    faultSubcode: subcode,
    wsmanCode: wsmanCode || undefined,
  });
}
