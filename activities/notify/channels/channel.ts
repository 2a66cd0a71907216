// One interface for every channel: a sender takes a rendered message and its destination and
// either resolves with the provider's answer or throws a ChannelError saying whether a retry can
// help. Adding a channel (an SMS provider, say) is one file implementing ChannelSender.
import type { NotifyChannel } from '../../../db/entities/index.js';

export interface OutgoingMessage {
  /** The message row id. */
  id: string;
  event: string;
  eventKey: string;
  /** Stable across retries: `<sha256(message key)@hostflow>`. */
  messageId: string;
  subject: string;
  /** Rendered for the channel (text, mrkdwn or markdown). */
  body: string;
  html?: string | null;
  payload: Record<string, unknown>;
  createdAt: Date;
  /** Email address, Slack channel / user id, or the endpoint's URL (decrypted in the activity, never logged). */
  to: string;
  /** Endpoint secret(s), newest first (webhook HMAC secret, Slack token, robot secret, WeCom key). */
  secrets?: string[];
  unsubscribeUrl?: string;
  /** Approve / reject links or buttons, for approval requests. */
  actions?: Array<{ id: 'approve' | 'reject'; label: string; url: string; value: string }>;
}

export interface ChannelResult {
  /** What the provider answered (message id, ts, errcode 0…), kept in the send log. */
  response: string;
}

export class ChannelError extends Error {
  override name = 'ChannelError';
  constructor(message: string, readonly retryable: boolean) {
    super(message);
  }
}

export interface ChannelSender {
  readonly channel: NotifyChannel;
  send(msg: OutgoingMessage): Promise<ChannelResult>;
}

/** A POST with JSON, a timeout, and the answer classified: 5xx / 429 / network → retryable. */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<{ status: number; text: string; json: unknown }> {
  let res: Response;
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: raw, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new ChannelError(`request failed: ${(err as Error).message}`, true);
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  if (res.status >= 500 || res.status === 429) throw new ChannelError(`HTTP ${res.status}: ${text.slice(0, 200)}`, true);
  return { status: res.status, text, json };
}
