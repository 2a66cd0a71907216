// Generic webhooks. POST JSON `{ id, event, event_key, occurred_at, data, subject, text }` with
//   X-Hostflow-Timestamp: <unix seconds>
//   X-Hostflow-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>[,v1=<…previous secret>]
//   X-Hostflow-Message-Id: <message id, the same on every retry: receivers dedupe on it>
// Receivers recompute the HMAC over the raw body, compare in constant time against any v1 value,
// and refuse timestamps more than 5 minutes from their clock (the replay window). While a rotated
// secret's grace period runs, the old secret's signature is sent too. Any non-2xx answer is
// retried with backoff (a 401 may be a rotation in progress); 410 Gone is final.
import { createHmac } from 'node:crypto';
import { ChannelError, postJson, type ChannelSender } from './channel.js';

export const WEBHOOK_REPLAY_WINDOW_SECONDS = 300;

export function signWebhook(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

export function webhookSender(clock: () => Date = () => new Date()): ChannelSender {
  return {
    channel: 'webhook',
    async send(msg) {
      const body = JSON.stringify({ id: msg.id, event: msg.event, event_key: msg.eventKey, occurred_at: msg.createdAt.toISOString(), data: msg.payload, subject: msg.subject, text: msg.body });
      const ts = Math.floor(clock().getTime() / 1000);
      const sig = (msg.secrets ?? []).map((s) => `v1=${signWebhook(s, ts, body)}`).join(',');
      const res = await postJson(msg.to, body, { 'x-hostflow-timestamp': String(ts), 'x-hostflow-signature': sig, 'x-hostflow-message-id': msg.id, 'x-hostflow-event': msg.event, 'user-agent': 'Hostflow-Webhook/1' });
      if (res.status >= 200 && res.status < 300) return { response: `HTTP ${res.status} ${res.text.slice(0, 200)}` };
      throw new ChannelError(`HTTP ${res.status}: ${res.text.slice(0, 200)}`, res.status !== 410);
    },
  };
}
