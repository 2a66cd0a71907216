// Slack interactivity: a click on Approve / Reject in a Hostflow message. The Slack user is mapped
// to a platform user by the email Slack knows (users.info, needs users:read.email), who then
// decides exactly as through the API (decideAccountOpening); the message is updated to say who
// decided. Errors are answered to the clicker as text (Slack shows it), never as a state change.
import { WebClient, LogLevel } from '@slack/web-api';
import { NotificationEndpointSchema, UserSchema } from '../../../db/entities/index.js';
import { ApiError } from '../../errors.js';
import { decideAccountOpening, principalOfUser, type DecideDeps } from './service.js';

interface SlackActionPayload {
  type: string;
  user: { id: string; username?: string };
  channel?: { id: string };
  message?: { ts: string };
  actions?: Array<{ action_id: string; value: string }>;
}

export async function handleSlackAction(deps: DecideDeps, raw: string, req: { ip?: string; requestId: string }): Promise<{ ok: boolean; text: string }> {
  const payloadText = new URLSearchParams(raw).get('payload');
  if (!payloadText) return { ok: false, text: 'no payload' };
  const payload = JSON.parse(payloadText) as SlackActionPayload;
  const action = payload.actions?.[0];
  if (payload.type !== 'block_actions' || !action || !['approve', 'reject'].includes(action.action_id)) return { ok: false, text: 'not a Hostflow decision' };
  const em = deps.em.fork();
  const endpoints = await em.find(NotificationEndpointSchema, { kind: 'slack' });
  const endpoint = endpoints.find((e) => e.config.channel === payload.channel?.id) ?? endpoints[0];
  if (!endpoint?.secretCiphertext) return { ok: false, text: 'no Slack endpoint is configured in Hostflow' };
  const url = deps.vault.decrypt(endpoint.urlCiphertext, `notify-endpoint:${endpoint.id}:url`);
  const token = deps.vault.decrypt(endpoint.secretCiphertext, `notify-endpoint:${endpoint.id}:secret`);
  const slack = new WebClient(token, { slackApiUrl: url.endsWith('/') ? url : `${url}/`, logLevel: LogLevel.ERROR, retryConfig: { retries: 1 } });
  const info = await slack.users.info({ user: payload.user.id });
  const email = (info.user as { profile?: { email?: string } } | undefined)?.profile?.email?.toLowerCase();
  const users = email ? (await em.find(UserSchema, { disabledAt: null })).filter((u) => u.email?.toLowerCase() === email) : [];
  if (users.length !== 1) return { ok: false, text: email ? `no single Hostflow user has the email ${email}` : 'your Slack profile shows no email address' };
  const principal = await principalOfUser(deps, users[0]!.id);
  if (!principal) return { ok: false, text: 'your Hostflow user is disabled' };
  const kind = action.action_id as 'approve' | 'reject';
  try {
    const state = await decideAccountOpening(deps, { principal, requestId: action.value, kind, reason: kind === 'reject' ? `rejected in Slack by ${principal.username}` : undefined, via: 'slack', ip: req.ip, requestIdHeader: req.requestId });
    const text = `${kind === 'approve' ? 'Approved' : 'Rejected'} by ${principal.username} (request ${action.value}, now ${state.phase})`;
    if (payload.channel?.id && payload.message?.ts) {
      await slack.chat.update({ channel: payload.channel.id, ts: payload.message.ts, text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] });
    }
    return { ok: true, text };
  } catch (err) {
    if (err instanceof ApiError) return { ok: false, text: err.message };
    throw err;
  }
}
