import { randomUUID } from 'node:crypto';
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/** Channels a message can go out on (activities/notify/channels/). */
export const NOTIFY_CHANNELS = ['email', 'inbox', 'slack', 'webhook', 'dingtalk', 'wecom', 'feishu', 'sms'] as const;
export type NotifyChannel = (typeof NOTIFY_CHANNELS)[number];

/**
 * Message status. `pending`/`skipped` are the values rows written before the notification center
 * carried (the migration maps them to `queued`/`suppressed`); `deduplicated` is a send-log status
 * (NotificationAttemptSchema): a second emit of the same message key finds this row.
 */
export const MESSAGE_STATUSES = ['queued', 'sent', 'failed', 'suppressed'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

/**
 * One message to one recipient on one channel. The unique (event key, recipient, channel) is the
 * message key and makes sending exactly-once: a retry finds the row and does not send again. The
 * subject and body are rendered when the row is queued, with the template version recorded, so a
 * retry after a template change still sends what was rendered first (the version is pinned).
 */
export const NotificationSchema = defineEntity({
  name: 'Notification',
  tableName: 'notifications',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    eventKey: p.string().length(200),
    recipient: p.string().length(255),
    channel: p.enum([...NOTIFY_CHANNELS]),
    /** Catalogue event (activities/notify/events.ts); null on rows from before the catalogue. */
    event: p.string().length(100).nullable().index(),
    /** The person the message is for (inbox owner, email/Slack recipient), when it is a person. */
    userId: p.uuid().nullable().index(),
    /** The endpoint (webhook, Slack channel, robot) when the recipient is one. */
    endpointId: p.uuid().nullable(),
    language: p.string().length(10).default('en'),
    /** Template version the message was rendered with (0: the built-in text of the catalogue). */
    templateVersion: p.integer().default(0),
    subject: p.string().length(300),
    body: p.text(),
    html: p.text().nullable(),
    /** The event's data (webhook body); never secrets. */
    payload: p.json<Record<string, unknown>>().nullable(),
    status: p.enum([...MESSAGE_STATUSES]).default('queued'),
    detail: p.string().length(1000).nullable(),
    attempts: p.integer().default(0),
    duplicates: p.integer().default(0),
    providerResponse: p.string().length(1000).nullable(),
    latencyMs: p.integer().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    sentAt: p.datetime().nullable(),
    readAt: p.datetime().nullable(),
  },
  uniques: [{ properties: ['eventKey', 'recipient', 'channel'] }],
  // The per-recipient rate limit's count (messages sent to a recipient on a channel in the last hour).
  indexes: [{ name: 'notifications_sent_rate_index', expression: `create index "notifications_sent_rate_index" on "notifications" ("recipient", "channel", "sent_at") where "status" = 'sent'` }],
});

export type Notification = InferEntity<typeof NotificationSchema>;

/** The send log: one row per delivery attempt (and per deduplicated emit) of a message. */
export const NotificationAttemptSchema = defineEntity({
  name: 'NotificationAttempt',
  tableName: 'notification_attempts',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    notificationId: p.uuid().index(),
    attempt: p.integer(),
    status: p.enum(['sent', 'failed', 'suppressed', 'deduplicated'] as const),
    response: p.string().length(1000).nullable(),
    latencyMs: p.integer().nullable(),
    at: p.datetime().onCreate(() => new Date()),
  },
});

export type NotificationAttempt = InferEntity<typeof NotificationAttemptSchema>;

/**
 * Where messages to a channel rather than a person go: a generic webhook, a Slack channel, a
 * DingTalk / WeCom / Feishu group robot. The URL (robot URLs carry their access token) and the
 * secret (webhook HMAC secret, Slack bot token, robot signing secret / WeCom key) are encrypted
 * with the Vault and never returned; a rotated secret stays valid until previousSecretUntil.
 */
export const NotificationEndpointSchema = defineEntity({
  name: 'NotificationEndpoint',
  tableName: 'notification_endpoints',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    name: p.string().length(100).unique(),
    kind: p.enum(['webhook', 'slack', 'dingtalk', 'wecom', 'feishu'] as const),
    /** Scheme, host and path only (no query): what the API shows. */
    urlDisplay: p.string().length(500),
    urlCiphertext: p.text(),
    secretCiphertext: p.text().nullable(),
    previousSecretCiphertext: p.text().nullable(),
    previousSecretUntil: p.datetime().nullable(),
    /** Slack: `{ channel }`; all: `{ language }`. */
    config: p.json<{ channel?: string; language?: string }>().default('{}'),
    createdAt: p.datetime().onCreate(() => new Date()),
    rotatedAt: p.datetime().nullable(),
  },
});

export type NotificationEndpoint = InferEntity<typeof NotificationEndpointSchema>;

/**
 * Who gets which event on which channel: a user, everyone with a role, a customer's contacts
 * (the customer's contact email and its users), or an endpoint. `event` `*` means every event.
 */
export const NotificationSubscriptionSchema = defineEntity({
  name: 'NotificationSubscription',
  tableName: 'notification_subscriptions',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    event: p.string().length(100),
    channel: p.enum([...NOTIFY_CHANNELS]),
    subjectType: p.enum(['user', 'role', 'customer', 'endpoint'] as const),
    subjectId: p.string().length(100),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
  uniques: [{ properties: ['event', 'channel', 'subjectType', 'subjectId'] }],
});

export type NotificationSubscription = InferEntity<typeof NotificationSubscriptionSchema>;

/** A template version for event × channel × language; versions only grow (a new one per change). */
export const NotificationTemplateSchema = defineEntity({
  name: 'NotificationTemplate',
  tableName: 'notification_templates',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    event: p.string().length(100),
    channel: p.enum([...NOTIFY_CHANNELS]),
    language: p.string().length(10),
    version: p.integer(),
    subject: p.string().length(300),
    body: p.text(),
    createdBy: p.string().length(100).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
  uniques: [{ properties: ['event', 'channel', 'language', 'version'] }],
});

export type NotificationTemplate = InferEntity<typeof NotificationTemplateSchema>;

/** A recipient's opt-out of an event (or `*`) on a channel (signed unsubscribe link or the API). */
export const NotificationUnsubscribeSchema = defineEntity({
  name: 'NotificationUnsubscribe',
  tableName: 'notification_unsubscribes',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    recipient: p.string().length(255),
    event: p.string().length(100),
    channel: p.enum([...NOTIFY_CHANNELS]),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
  uniques: [{ properties: ['recipient', 'event', 'channel'] }],
});

/** A user's message language (zh-CN or en); the platform default when absent. */
export const NotificationPreferenceSchema = defineEntity({
  name: 'NotificationPreference',
  tableName: 'notification_preferences',
  properties: {
    userId: p.uuid().primary(),
    language: p.string().length(10),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});

/** Keys of the notification center (the link-signing key), encrypted with the Vault. */
export const NotifySecretSchema = defineEntity({
  name: 'NotifySecret',
  tableName: 'notify_secrets',
  properties: {
    name: p.string().length(50).primary(),
    ciphertext: p.text(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});

/** Single use of a signed action link (approve / reject from a message): the jti is recorded once. */
export const NotifyActionUseSchema = defineEntity({
  name: 'NotifyActionUse',
  tableName: 'notify_action_uses',
  properties: {
    jti: p.string().length(64).primary(),
    usedBy: p.uuid(),
    action: p.string().length(50),
    at: p.datetime().onCreate(() => new Date()),
  },
});
