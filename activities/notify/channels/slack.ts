// Slack through @slack/web-api: chat.postMessage with Block Kit (header + mrkdwn section, and
// Approve / Reject buttons on approval requests, answered at POST /api/v1/integrations/slack/actions).
// The destination is the endpoint's channel (a channel per event type = one endpoint per channel,
// subscribed to those events). A 429 is waited out for its Retry-After by the client itself
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

export function slackSender(): ChannelSender {
  return {
    channel: 'slack',
    async send(msg) {
      const token = msg.secrets?.[0];
      if (!token) throw new ChannelError('slack endpoint has no bot token', false);
      const [url, channel] = msg.to.split('\n');
      try {
        const r = await client(url!, token).chat.postMessage({
          channel: channel!,
          text: `${msg.subject}\n${msg.body}`.slice(0, 3000),
          blocks: slackBlocks(msg) as never,
          metadata: { event_type: 'hostflow_message', event_payload: { message_id: msg.id, event: msg.event } },
        });
        return { response: `ok ts=${r.ts} channel=${r.channel}` };
      } catch (err) {
        const e = err as { code?: string; data?: { error?: string }; message: string };
        const permanent = e.code === 'slack_webapi_platform_error' && ['channel_not_found', 'not_in_channel', 'invalid_auth', 'account_inactive', 'token_revoked', 'invalid_blocks'].includes(e.data?.error ?? '');
        throw new ChannelError(`slack: ${e.data?.error ?? e.message}`, !permanent);
      }
    },
  };
}
