import { z } from '../../openapi.js';
import { NOTIFY_CHANNELS, MESSAGE_STATUSES } from '../../../db/entities/index.js';
import { LANGUAGES } from '../../../activities/notify/events.js';
import { pii } from '../../authz/mask.js';

export const Channel = z.enum([...NOTIFY_CHANNELS]);
export const Language = z.enum([...LANGUAGES]);

export const Message = z.object({
  id: z.string().uuid(),
  event: z.string().nullable(),
  subject: z.string(),
  body: z.string(),
  created_at: z.string(),
  read_at: z.string().nullable(),
});

export const EndpointCreate = z.object({
  name: z.string().trim().min(1).max(100),
  kind: z.enum(['webhook', 'slack', 'dingtalk', 'wecom', 'feishu']),
  url: z.string().url().max(2000).regex(/^https?:\/\//, 'must be an http(s) URL').openapi({ description: 'Webhook URL; Slack: the Web API base (https://slack.com/api/); DingTalk: the robot URL with access_token; Feishu: the hook URL; WeCom: https://qyapi.weixin.qq.com/cgi-bin/webhook/send' }),
  secret: z.string().min(8).max(500).optional().openapi({ description: 'Webhook HMAC secret (generated when absent), Slack bot token, DingTalk / Feishu signing secret, WeCom robot key. Never returned.' }),
  channel: z.string().min(1).max(100).optional().openapi({ description: 'Slack: the channel id to post to; `@email`: the workspace bot that sends people their Slack messages as DMs (users.lookupByEmail with the user\'s email, needs users:read.email)' }),
  language: Language.optional(),
});

export const Endpoint = z.object({
  id: z.string().uuid(),
  name: z.string(),
  kind: z.string(),
  url: z.string().openapi({ description: 'Scheme, host and path only: the query (robot tokens) is never shown' }),
  channel: z.string().nullable(),
  language: z.string().nullable(),
  has_secret: z.boolean(),
  created_at: z.string(),
  rotated_at: z.string().nullable(),
  previous_secret_valid_until: z.string().nullable(),
});

export const EndpointCreated = Endpoint.extend({ secret: z.string().optional().openapi({ description: 'The generated webhook secret: shown once, here' }) });

export const RotateSecret = z.object({
  secret: z.string().min(8).max(500).optional(),
  grace_hours: z.coerce.number().min(0).max(24 * 30).default(24).openapi({ description: 'How long the previous secret still signs (webhooks send both signatures)' }),
});

export const SubscriptionCreate = z.object({
  event: z.string().min(1).max(100).openapi({ description: 'A catalogue event, or * for every event' }),
  channel: Channel.optional().openapi({ description: 'email, inbox or sms for people; endpoints take their own kind' }),
  subject_type: z.enum(['user', 'role', 'customer', 'endpoint']),
  subject_id: z.string().min(1).max(100).openapi({ description: 'User id, role name, customer id or endpoint id' }),
});

export const Subscription = z.object({ id: z.string().uuid(), event: z.string(), channel: z.string(), subject_type: z.string(), subject_id: z.string(), created_at: z.string() });

export const TemplateCreate = z.object({
  event: z.string().min(1).max(100),
  channel: Channel,
  language: Language,
  subject: z.string().min(1).max(300),
  body: z.string().min(1).max(20_000).openapi({ description: '${var} placeholders from the event; email bodies are HTML (values are escaped), Slack mrkdwn, robots markdown' }),
});

export const Template = z.object({ id: z.string().uuid(), event: z.string(), channel: z.string(), language: z.string(), version: z.number().int(), subject: z.string(), body: z.string(), created_by: z.string().nullable(), created_at: z.string() });

export const LogEntry = z.object({
  id: z.string().uuid(),
  event: z.string().nullable(),
  event_key: z.string(),
  recipient: pii(z.string(), 'recipient'),
  channel: z.string(),
  status: z.enum([...MESSAGE_STATUSES]),
  detail: z.string().nullable(),
  attempts: z.number().int(),
  duplicates: z.number().int(),
  language: z.string(),
  template_version: z.number().int(),
  provider_response: z.string().nullable(),
  latency_ms: z.number().int().nullable(),
  created_at: z.string(),
  sent_at: z.string().nullable(),
  log: z.array(z.object({ attempt: z.number().int(), status: z.string(), response: z.string().nullable(), latency_ms: z.number().int().nullable(), at: z.string() })).optional(),
});

export const Stats = z.object({
  since: z.string(),
  items: z.array(z.object({
    channel: z.string(), event: z.string(), total: z.number().int(), sent: z.number().int(), failed: z.number().int(), suppressed: z.number().int(), queued: z.number().int(), deduplicated: z.number().int(),
    retry_rate: z.number(), latency_p50_ms: z.number().nullable(), latency_p95_ms: z.number().nullable(),
  })),
});

export const TestSend = z.object({
  note: z.string().max(500).default(''),
  user_id: z.string().uuid().optional().openapi({ description: 'Send to this user (email + inbox); default: you' }),
});
