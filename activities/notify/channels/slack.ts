// Slack through @slack/web-api: chat.postMessage with Block Kit (header + mrkdwn section, and
// Approve / Reject buttons on approval requests, answered at POST /api/v1/integrations/slack/actions).
// The destination is the endpoint's channel (a channel per event type = one endpoint per channel,
// subscribed to those events), or a person: `@email:<address>` is looked up with
// users.lookupByEmail (cached for an hour) and the message goes to that user id as a DM. A 429 is waited out for its Retry-After by the client itself
// (rejectRateLimitedCalls: false), then retried. `slackApiUrl` is the endpoint URL, so tests point
// it at a local stand-in of the Web API. Each post carries the message id in Slack message
// metadata; Slack has no idempotency key, so a crash between Slack's `ok` and our record can post
// twice (see README, honest limits).
import { WebClient, LogLevel } from '@slack/web-api';
import { ChannelError, type ChannelSender } from './channel.js';

const clients = new Map<string, WebClient>();
function client(url: string, token: string): WebClient {
  const k = `${url}\n${token}`;
  let c = clients.get(k);
  if (!c) {
    const apiUrl = url.endsWith('/') ? url : `${url}/`;
    c = new WebClient(token, { slackApiUrl: apiUrl, logLevel: LogLevel.ERROR, rejectRateLimitedCalls: false, retryConfig: { retries: 3, factor: 2, minTimeout: 200, maxTimeout: 5000 }, timeout: 10_000 });
    clients.set(k, c);
  }
  return c;
}

export function slackBlocks(msg: { subject: string; body: string; actions?: Array<{ id: string; label: string; value: string }> }) {
  const blocks: Array<Record<string, unknown>> = [
    { type: 'header', text: { type: 'plain_text', text: msg.subject.slice(0, 150) } },
    { type: 'section', text: { type: 'mrkdwn', text: msg.body.slice(0, 3000) } },
  ];
  if (msg.actions?.length) {
    blocks.push({
      type: 'actions',
      block_id: 'hostflow_decision',
      elements: msg.actions.map((a) => ({ type: 'button', action_id: a.id, text: { type: 'plain_text', text: a.label }, value: a.value, ...(a.id === 'approve' ? { style: 'primary' } : { style: 'danger' }) })),
    });
  }
  return blocks;
}

const DM_PREFIX = '@email:';
const LOOKUP_TTL_MS = 3_600_000;
const lookups = new Map<string, { id: string; at: number }>();

/** The Slack user id of an email address (users.lookupByEmail; 429 waited out by the client). */
async function slackUserId(c: WebClient, url: string, email: string): Promise<string> {
  const k = `${url}\n${email}`;
  const hit = lookups.get(k);
  if (hit && Date.now() - hit.at < LOOKUP_TTL_MS) return hit.id;
  const r = await c.users.lookupByEmail({ email });
  const id = r.user?.id;
  if (!id) throw new ChannelError('slack: users.lookupByEmail returned no user id', false);
  lookups.set(k, { id, at: Date.now() });
  return id;
}

export function slackSender(): ChannelSender {
  return {
    channel: 'slack',
    async send(msg) {
      const token = msg.secrets?.[0];
      if (!token) throw new ChannelError('slack endpoint has no bot token', false);
      const [url, to] = msg.to.split('\n');
      try {
        const c = client(url!, token);
        const channel = to!.startsWith(DM_PREFIX) ? await slackUserId(c, url!, to!.slice(DM_PREFIX.length)) : to!;
        const r = await c.chat.postMessage({
          channel,
          text: `${msg.subject}\n${msg.body}`.slice(0, 3000),
          blocks: slackBlocks(msg) as never,
          metadata: { event_type: 'hostflow_message', event_payload: { message_id: msg.id, event: msg.event } },
        });
        return { response: `ok ts=${r.ts} channel=${r.channel}` };
      } catch (err) {
        if (err instanceof ChannelError) throw err;
        const e = err as { code?: string; data?: { error?: string }; message: string };
        const permanent = e.code === 'slack_webapi_platform_error' && ['channel_not_found', 'not_in_channel', 'invalid_auth', 'account_inactive', 'token_revoked', 'invalid_blocks', 'users_not_found', 'missing_scope'].includes(e.data?.error ?? '');
        throw new ChannelError(`slack: ${e.data?.error ?? e.message}`, !permanent);
      }
    },
  };
}
