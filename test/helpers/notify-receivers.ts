// Stand-ins for Slack's Web API and the DingTalk / WeCom / Feishu robot endpoints (they cannot run
// here), plus a generic webhook receiver. Each checks requests the way the real service documents
// it (signatures, keys, timestamps), so a wrong secret is refused here exactly as it would be there.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  raw: string;
  body: Record<string, unknown>;
  at: number;
}

async function serve(handler: (r: Received, res: ServerResponse) => void) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: Record<string, unknown> = {};
      try {
        body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
      } catch {
        body = Object.fromEntries(new URLSearchParams(raw));
      }
      const r = { path: url.pathname, query: url.searchParams, headers: req.headers, raw, body, at: Date.now() };
      received.push(r);
      handler(r, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, received, stop: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

/**
 * Generic webhook receiver implementing the check the README documents: HMAC-SHA256 over
 * "<X-Hostflow-Timestamp>.<raw body>" against any v1= value, a 5-minute replay window, and
 * dedupe on X-Hostflow-Message-Id. `accepted` holds each message once.
 */
export async function startWebhookReceiver(secret: string) {
  const accepted: Received[] = [];
  const seen = new Set<string>();
  const state = { secret, refusals: 0, failNext: 0 };
  const s = await serve((r, res) => {
    if (state.failNext > 0) {
      state.failNext--;
      return json(res, 503, { error: 'temporarily down' });
    }
    const ts = Number(r.headers['x-hostflow-timestamp']);
    if (!Number.isFinite(ts) || Math.abs(Date.now() / 1000 - ts) > 300) {
      state.refusals++;
      return json(res, 401, { error: 'timestamp outside the replay window' });
    }
    const want = Buffer.from(createHmac('sha256', state.secret).update(`${ts}.${r.raw}`).digest('hex'));
    const sigs = String(r.headers['x-hostflow-signature'] ?? '').split(',').map((x) => x.trim()).filter((x) => x.startsWith('v1=')).map((x) => Buffer.from(x.slice(3)));
    if (!sigs.some((g) => g.length === want.length && timingSafeEqual(g, want))) {
      state.refusals++;
      return json(res, 401, { error: 'bad signature' });
    }
    const id = String(r.headers['x-hostflow-message-id']);
    if (!seen.has(id)) {
      seen.add(id);
      accepted.push(r);
    }
    json(res, 200, { ok: true });
  });
  return { ...s, accepted, state };
}

/** DingTalk custom robot: sign = urlEncode(base64(HmacSHA256(secret, "<timestamp>\n<secret>"))), timestamp within 1 hour. */
export async function startDingtalk(secret: string, accessToken: string) {
  const accepted: Received[] = [];
  const s = await serve((r, res) => {
    if (r.query.get('access_token') !== accessToken) return json(res, 200, { errcode: 300001, errmsg: 'token is not exist' });
    const ts = Number(r.query.get('timestamp'));
    const expected = createHmac('sha256', secret).update(`${ts}\n${secret}`).digest('base64');
    // URLSearchParams already decoded the urlEncoded sign once, as DingTalk's server does.
    if (!ts || Math.abs(Date.now() - ts) > 3_600_000 || r.query.get('sign') !== expected) return json(res, 200, { errcode: 310000, errmsg: 'sign not match' });
    accepted.push(r);
    json(res, 200, { errcode: 0, errmsg: 'ok' });
  });
  return { ...s, accepted, robotUrl: `${s.url}/robot/send?access_token=${accessToken}` };
}

/** Feishu custom bot: sign = base64(HmacSHA256(key = "<timestamp>\n<secret>", "")), timestamp (s) within 1 hour, in the body. */
export async function startFeishu(secret: string) {
  const accepted: Received[] = [];
  const s = await serve((r, res) => {
    const ts = Number(r.body.timestamp);
    const expected = createHmac('sha256', `${ts}\n${secret}`).update('').digest('base64');
    if (!ts || Math.abs(Date.now() / 1000 - ts) > 3600 || r.body.sign !== expected) return json(res, 200, { code: 19021, msg: 'sign match fail or timestamp is not within one hour from current time' });
    accepted.push(r);
    json(res, 200, { code: 0, msg: 'success', data: {} });
  });
  return { ...s, accepted, hookUrl: `${s.url}/open-apis/bot/v2/hook/abc` };
}

/** WeCom group robot: the key query parameter is the credential. */
export async function startWecom(key: string) {
  const accepted: Received[] = [];
  const s = await serve((r, res) => {
    if (r.query.get('key') !== key) return json(res, 200, { errcode: 93000, errmsg: 'invalid webhook url' });
    accepted.push(r);
    json(res, 200, { errcode: 0, errmsg: 'ok' });
  });
  return { ...s, accepted, sendUrl: `${s.url}/cgi-bin/webhook/send` };
}

/**
 * Slack Web API stand-in: chat.postMessage / chat.update / users.info / users.lookupByEmail with a
 * bearer token; answers 429 with Retry-After for the next `rateLimit` posts (`lookupRateLimit`
 * lookups). `users` maps Slack user ids to emails.
 */
export async function startSlackStandIn(token: string, users: Record<string, string> = {}) {
  const posts: Received[] = [];
  const updates: Received[] = [];
  const state = { rateLimit: 0, lookupRateLimit: 0, retryAfterSec: 1 };
  const lookups: Received[] = [];
  let ts = 1000;
  const s = await serve((r, res) => {
    if (r.headers.authorization !== `Bearer ${token}`) return json(res, 200, { ok: false, error: 'invalid_auth' });
    if (r.path === '/api/chat.postMessage') {
      if (state.rateLimit > 0) {
        state.rateLimit--;
        return json(res, 429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(state.retryAfterSec) });
      }
      posts.push(r);
      return json(res, 200, { ok: true, channel: r.body.channel, ts: `${++ts}.000100` });
    }
    if (r.path === '/api/chat.update') {
      updates.push(r);
      return json(res, 200, { ok: true, channel: r.body.channel, ts: r.body.ts });
    }
    if (r.path === '/api/users.lookupByEmail') {
      if (state.lookupRateLimit > 0) {
        state.lookupRateLimit--;
        return json(res, 429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(state.retryAfterSec) });
      }
      lookups.push(r);
      const id = Object.entries(users).find(([, e]) => e.toLowerCase() === String(r.body.email).toLowerCase())?.[0];
      return id ? json(res, 200, { ok: true, user: { id, profile: { email: users[id] } } }) : json(res, 200, { ok: false, error: 'users_not_found' });
    }
    if (r.path === '/api/users.info') {
      const id = String(r.body.user);
      return users[id] ? json(res, 200, { ok: true, user: { id, profile: { email: users[id] } } }) : json(res, 200, { ok: false, error: 'user_not_found' });
    }
    json(res, 200, { ok: false, error: 'unknown_method' });
  });
  return { ...s, posts, updates, lookups, state, apiUrl: `${s.url}/api/` };
}
