// The notification center: one event occurrence → its recipients (the lifecycle's own audience plus
// subscriptions) → one message per (event key, recipient, channel), rendered from the event's
// template in the recipient's language and time zone and stored with the template version → each
// message delivered by its channel's sender, with the send log explaining every outcome.
import { createHash } from 'node:crypto';
import { notificationsTotal } from '../../config/metrics.js';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import {
  AccountOpeningRequestSchema,
  AllocationSchema,
  CustomerSchema,
  HostSchema,
  NotificationAttemptSchema,
  NotificationEndpointSchema,
  NotificationPreferenceSchema,
  NotificationSchema,
  NotificationSubscriptionSchema,
  NotificationTemplateSchema,
  NotificationUnsubscribeSchema,
  RoleSchema,
  SecurityEventSchema,
  SshKeySchema,
  UserSchema,
  type Notification,
  type NotificationEndpoint,
  type NotifyChannel,
} from '../../db/entities/index.js';
import { resolveRoles, rolesInheriting } from '../../api/authz/principal.js';
import type { Vault } from '../../db/vault.js';
import type { Logger } from '../../config/logger.js';
import { EVENTS, LANGUAGES, type EmitInput, type EventDef, type Language } from './events.js';
import { escapeFor, render, textToHtml, type Format } from './render.js';
import { formatInZone } from './format.js';
import { ChannelError, type ChannelSender, type OutgoingMessage } from './channels/channel.js';
import { linkKey, newJti, signLink, type ActionPayload, type UnsubscribePayload } from './links.js';

export interface NotifySettings {
  defaultLanguage: Language;
  /** Messages per recipient and channel per hour; beyond it a message is suppressed (0: no limit). */
  rateLimitPerHour: number;
  /** Words (case-insensitive) that suppress a message containing them. */
  sensitiveWords: string[];
  /** Delivery attempts per message before it is recorded `failed` for good. */
  maxAttempts: number;
}

export const DEFAULT_NOTIFY_SETTINGS: NotifySettings = { defaultLanguage: 'en', rateLimitPerHour: 60, sensitiveWords: [], maxAttempts: 6 };

export interface CenterDeps {
  em: SqlEntityManager;
  vault: Vault;
  logger: Logger;
  senders: Partial<Record<NotifyChannel, ChannelSender>>;
  publicBaseUrl?: string | (() => string);
  notifySettings?: Partial<NotifySettings>;
}

export interface EmitResult {
  messages: number;
  sent: number;
  suppressed: number;
  failed: number;
  deduplicated: number;
  /** Messages whose delivery failed and will be retried (the activity throws so Temporal retries it). */
  retrying: number;
}

const FORMAT: Record<NotifyChannel, Format> = { email: 'text', inbox: 'text', slack: 'mrkdwn', webhook: 'text', dingtalk: 'markdown', wecom: 'markdown', feishu: 'markdown', sms: 'text' };

/** `<sha256(message key)@hostflow>`: the same id on every attempt of one message. */
export const stableMessageId = (eventKey: string, recipient: string, channel: string) =>
  `<${createHash('sha256').update(`${eventKey}\n${recipient}\n${channel}`).digest('hex').slice(0, 40)}@hostflow>`;

interface Target {
  channel: NotifyChannel;
  recipient: string;
  userId?: string;
  endpoint?: NotificationEndpoint;
  /** Why this target gets nothing (e.g. no email address): recorded suppressed. */
  suppress?: string;
  timezone?: string | null;
  language?: string;
  /** Slack DM: the person's email, looked up in the workspace by the sender. */
  dmEmail?: string;
}

/** A Slack endpoint with this channel DMs people, found by their email (users.lookupByEmail). */
export const SLACK_DM_CHANNEL = '@email';

/** Subject and body of (event, channel, language): the newest stored version, else the built-in text (version 0). */
export async function pickTemplate(em: SqlEntityManager, event: string, channel: NotifyChannel, language: Language) {
  const row = await em.findOne(NotificationTemplateSchema, { event, channel, language }, { orderBy: { version: 'desc' } });
  if (row) return { version: row.version, subject: row.subject, body: row.body, custom: true };
  const def = (EVENTS as Record<string, EventDef>)[event]!;
  const [subject, body] = def.text[language];
  return { version: 0, subject, body, custom: false };
}

/** Renders one message; dates in the recipient's zone; a missing variable throws TemplateError. */
export function renderMessage(def: EventDef, tpl: { subject: string; body: string; custom: boolean }, data: EmitInput['data'], channel: NotifyChannel, tz: string | null | undefined) {
  const vars: Record<string, string | number | null> = { ...data };
  for (const d of def.dates ?? []) {
    const v = data[d];
    if (v !== null && v !== undefined && v !== '') vars[d] = formatInZone(new Date(typeof v === 'number' ? v : String(v)), tz);
  }
  const format = FORMAT[channel];
  const subject = render(tpl.subject, vars, 'text');
  if (tpl.custom) {
    // A stored template is written in the channel's own markup (HTML for email): values are escaped, the markup kept.
    const body = render(tpl.body, vars, channel === 'email' ? 'html' : format);
    return channel === 'email' ? { subject, body: htmlToText(body), html: body } : { subject, body, html: null };
  }
  const text = render(tpl.body, vars, 'text');
  if (channel === 'email') return { subject, body: text, html: textToHtml(escapeFor('html')(subject), escapeFor('html')(text)) };
  return { subject, body: escapeFor(format)(text), html: null };
}

const htmlToText = (html: string) => html.replace(/<br\s*\/?>/gi, '\n').replace(/<\/p>/gi, '\n\n').replace(/<[^>]+>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&').trim();

export function createCenter(deps: CenterDeps) {
  const settings: NotifySettings = { ...DEFAULT_NOTIFY_SETTINGS, ...deps.notifySettings };
  const baseOf = () => ((typeof deps.publicBaseUrl === 'function' ? deps.publicBaseUrl() : deps.publicBaseUrl) || 'http://127.0.0.1:3000').replace(/\/+$/, '');

  async function usersWith(em: SqlEntityManager, roles: string[] | undefined, permission: string | undefined) {
    if (!roles?.length && !permission) return [];
    const users = await em.find(UserSchema, { disabledAt: null });
    const rows = await em.find(RoleSchema, {});
    const resolved = permission ? resolveRoles(rows, new Map()) : null;
    // A role-addressed recipient is that role or any role inheriting it (custom roles made from it).
    const named = rolesInheriting(rows, roles ?? []);
    return users.filter((u) => u.roles.some((n) => named.has(n)) || (permission && u.roles.some((n) => resolved!.get(n)?.permissions.has(permission as never))));
  }

  /** Everyone and everything this occurrence goes to, per channel. */
  async function targets(em: SqlEntityManager, input: EmitInput, owners: string[]): Promise<Target[]> {
    const out: Target[] = [];
    const except = new Set(input.to?.exceptUserIds ?? []);
    const people = new Map<string, Set<NotifyChannel>>();
    const add = (userId: string, channels: NotifyChannel[]) => {
      if (except.has(userId)) return;
      const s = people.get(userId) ?? new Set();
      channels.forEach((c) => s.add(c));
      people.set(userId, s);
    };
    // The lifecycle's own audience: email and the in-app inbox.
    for (const id of [...(input.to?.userIds ?? []), ...(input.to?.owner ? owners : [])]) add(id, ['email', 'inbox']);
    for (const u of await usersWith(em, input.to?.roles, input.to?.permission)) add(u.id, ['email', 'inbox']);
    const subs = await em.find(NotificationSubscriptionSchema, { event: { $in: [input.event, '*'] } });
    const contactEmails: Array<{ email: string; channel: NotifyChannel }> = [];
    for (const s of subs) {
      if (s.subjectType === 'user') add(s.subjectId, [s.channel]);
      else if (s.subjectType === 'role') for (const u of await usersWith(em, [s.subjectId], undefined)) add(u.id, [s.channel]);
      else if (s.subjectType === 'customer') {
        const c = await em.findOne(CustomerSchema, { id: s.subjectId });
        if (c?.contactEmail && s.channel === 'email') contactEmails.push({ email: c.contactEmail.toLowerCase(), channel: 'email' });
        for (const u of await em.find(UserSchema, { customerId: s.subjectId, disabledAt: null })) add(u.id, [s.channel]);
      } else if (s.subjectType === 'endpoint') {
        const e = await em.findOne(NotificationEndpointSchema, { id: s.subjectId });
        if (e) out.push({ channel: e.kind, recipient: `endpoint:${e.id}`, endpoint: e, language: e.config.language });
      }
    }
    const users = people.size ? await em.find(UserSchema, { id: { $in: [...people.keys()] } }) : [];
    // Slack for a person: a DM through the workspace bot (the Slack endpoint whose channel is `@email`).
    const wantsSlack = [...people.values()].some((c) => c.has('slack'));
    const dmBot = wantsSlack ? (await em.find(NotificationEndpointSchema, { kind: 'slack' }, { orderBy: { createdAt: 'asc' } })).find((e) => e.config.channel === SLACK_DM_CHANNEL) : undefined;
    const prefs = new Map((people.size ? await em.find(NotificationPreferenceSchema, { userId: { $in: [...people.keys()] } }) : []).map((p) => [p.userId, p.language]));
    for (const u of users) {
      for (const channel of people.get(u.id)!) {
        const language = prefs.get(u.id);
        if (channel === 'email') {
          if (u.email && !u.disabledAt) out.push({ channel, recipient: u.email.toLowerCase(), userId: u.id, timezone: u.timezone, language });
          else out.push({ channel, recipient: `user:${u.id}`, userId: u.id, suppress: u.disabledAt ? 'user is disabled' : 'recipient has no email address' });
        } else if (channel === 'inbox') out.push({ channel, recipient: `user:${u.id}`, userId: u.id, timezone: u.timezone, language });
        else if (channel === 'slack' && dmBot && u.email) out.push({ channel, recipient: `user:${u.id}`, userId: u.id, endpoint: dmBot, dmEmail: u.email.toLowerCase(), timezone: u.timezone, language });
        else if (channel === 'slack') out.push({ channel, recipient: `user:${u.id}`, userId: u.id, suppress: dmBot ? 'recipient has no email address to find them in Slack' : 'no Slack DM bot configured (a Slack endpoint with channel @email)' });
        else out.push({ channel, recipient: `user:${u.id}`, userId: u.id, suppress: `no ${channel} address for a person (subscribe an endpoint instead)` });
      }
    }
    for (const c of contactEmails) if (!out.some((t) => t.channel === 'email' && t.recipient === c.email)) out.push({ channel: 'email', recipient: c.email });
    return out;
  }

  const log = (em: SqlEntityManager, row: Notification, status: 'sent' | 'failed' | 'suppressed' | 'deduplicated', response: string | null, latencyMs: number | null) => {
    // hostflow_notifications_total: counted when the attempt is recorded (channel and outcome are bounded enums).
    notificationsTotal.inc({ channel: row.channel, outcome: status });
    return em.create(NotificationAttemptSchema, { notificationId: row.id, attempt: row.attempts, status, response: response?.slice(0, 1000) ?? null, latencyMs });
  };

  async function suppressReason(em: SqlEntityManager, row: Notification, t: Target): Promise<string | null> {
    if (t.suppress) return t.suppress;
    const unsub = await em.findOne(NotificationUnsubscribeSchema, { recipient: { $in: [row.recipient, ...(row.userId ? [`user:${row.userId}`] : [])] }, event: { $in: [row.event ?? '', '*'] }, channel: row.channel });
    if (unsub) return `recipient unsubscribed from ${unsub.event === '*' ? 'all events' : unsub.event} on ${unsub.channel}`;
    const text = `${row.subject}\n${row.body}`.toLowerCase();
    const word = settings.sensitiveWords.find((w) => w && text.includes(w.toLowerCase()));
    if (word) return `sensitive word "${word}" in the message`;
    if (settings.rateLimitPerHour > 0) {
      const sent = await em.count(NotificationSchema, { recipient: row.recipient, channel: row.channel, status: 'sent', sentAt: { $gt: new Date(Date.now() - 3_600_000) } });
      if (sent >= settings.rateLimitPerHour) return `rate limit: ${sent} messages to this recipient on ${row.channel} in the last hour (limit ${settings.rateLimitPerHour})`;
    }
    if (row.channel !== 'inbox' && !deps.senders[row.channel]) return `no ${row.channel} channel configured`;
    return null;
  }

  async function outgoing(em: SqlEntityManager, row: Notification, t: Target, def: EventDef, data: EmitInput['data']): Promise<OutgoingMessage> {
    const msg: OutgoingMessage = {
      id: row.id, event: row.event ?? 'legacy', eventKey: row.eventKey, messageId: stableMessageId(row.eventKey, row.recipient, row.channel),
      subject: row.subject, body: row.body, html: row.html, payload: row.payload ?? {}, createdAt: row.createdAt, to: row.recipient,
    };
    const endpoint = t.endpoint ?? (row.endpointId ? await em.findOne(NotificationEndpointSchema, { id: row.endpointId }) : null);
    if (endpoint) {
      const url = deps.vault.decrypt(endpoint.urlCiphertext, `notify-endpoint:${endpoint.id}:url`);
      const slackTo = t.dmEmail ? `${SLACK_DM_CHANNEL}:${t.dmEmail}` : (endpoint.config.channel ?? '');
      msg.to = endpoint.kind === 'slack' ? `${url}\n${slackTo}` : url;
      msg.secrets = [];
      if (endpoint.secretCiphertext) msg.secrets.push(deps.vault.decrypt(endpoint.secretCiphertext, `notify-endpoint:${endpoint.id}:secret`));
      if (endpoint.previousSecretCiphertext && endpoint.previousSecretUntil && endpoint.previousSecretUntil > new Date()) msg.secrets.push(deps.vault.decrypt(endpoint.previousSecretCiphertext, `notify-endpoint:${endpoint.id}:previous`));
    }
    const key = await linkKey(deps.em, deps.vault);
    const base = baseOf();
    if (row.channel === 'email' && row.event) {
      const p: UnsubscribePayload = { t: 'unsubscribe', r: row.userId ? `user:${row.userId}` : row.recipient, e: row.event, c: 'email' };
      msg.unsubscribeUrl = `${base}/api/v1/notifications/unsubscribe?token=${signLink(key, p)}`;
    }
    if (def.approval === 'account-opening' && data.requestId) {
      const requestId = String(data.requestId);
      const expires = typeof data.expiresAt === 'number' ? data.expiresAt : Date.parse(String(data.expiresAt ?? '')) || Date.now() + 7 * 86_400_000;
      if (row.channel === 'email' && row.userId) {
        const link = (a: 'approve' | 'reject') => `${base}/api/v1/notifications/actions/${signLink(key, { t: 'action', j: newJti(), r: requestId, a, u: row.userId!, x: expires } satisfies ActionPayload)}`;
        msg.actions = [{ id: 'approve', label: 'Approve', url: link('approve'), value: requestId }, { id: 'reject', label: 'Reject', url: link('reject'), value: requestId }];
      } else if (row.channel === 'slack') {
        msg.actions = [{ id: 'approve', label: 'Approve', url: '', value: requestId }, { id: 'reject', label: 'Reject', url: '', value: requestId }];
      }
    }
    return msg;
  }

  /** Delivers one queued message once: claims an attempt (optimistic), sends, records. */
  async function deliver(em: SqlEntityManager, row: Notification, t: Target, def: EventDef, data: EmitInput['data'], result: EmitResult): Promise<void> {
    const reason = await suppressReason(em, row, t);
    if (reason) {
      row.status = 'suppressed';
      row.detail = reason.slice(0, 1000);
      log(em, row, 'suppressed', reason, null);
      await em.flush();
      result.suppressed++;
      return;
    }
    const claimed = await em.nativeUpdate(NotificationSchema, { id: row.id, attempts: row.attempts, status: 'queued' }, { attempts: row.attempts + 1 });
    if (!claimed) return; // another attempt of this activity is on it
    row.attempts += 1;
    const started = performance.now();
    try {
      let response = 'stored in the inbox';
      if (row.channel !== 'inbox') response = (await deps.senders[row.channel]!.send(await outgoing(em, row, t, def, data))).response;
      const latency = Math.round(performance.now() - started);
      row.status = 'sent';
      row.sentAt = new Date();
      row.providerResponse = response.slice(0, 1000);
      row.latencyMs = latency;
      row.detail = null;
      log(em, row, 'sent', response, latency);
      await em.flush();
      result.sent++;
    } catch (err) {
      const latency = Math.round(performance.now() - started);
      const retryable = err instanceof ChannelError ? err.retryable : true;
      const final = !retryable || row.attempts >= settings.maxAttempts;
      row.status = final ? 'failed' : 'queued';
      row.detail = `attempt ${row.attempts}/${settings.maxAttempts}: ${(err as Error).message}`.slice(0, 1000);
      row.latencyMs = latency;
      log(em, row, 'failed', (err as Error).message, latency);
      await em.flush();
      if (final) result.failed++;
      else result.retrying++;
      deps.logger.warn({ notification: row.id, channel: row.channel, attempt: row.attempts, final }, 'notification delivery failed');
    }
  }

  /**
   * Lifecycles emit ids; the names people read come from the database here (workflows do not
   * carry display data). Keyed by the id variables, not by event, so a new event naming a
   * `requestId`, `hostId`, `allocationId`, `keyId` or `securityEventId` gets its names (and its
   * `owner`, the person it is about) without code here: adding an event stays one catalogue line.
   */
  async function enrich(em: SqlEntityManager, input: EmitInput): Promise<{ input: EmitInput; owners: string[] }> {
    const data = { ...input.data };
    const owners: string[] = [];
    const uuid = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f-]{36}$/i.test(v);
    if (input.event.startsWith('account_opening.') && uuid(data.requestId)) {
      const r = await em.findOne(AccountOpeningRequestSchema, { id: String(data.requestId) }, { populate: ['host', 'applicant', 'approvedBy'] });
      if (r) {
        data.username ??= r.username;
        data.host ??= r.host.name;
        data.applicant ??= r.applicant.fullName ?? r.applicant.username;
        data.expiresAt ??= r.expiresAt.getTime();
        data.reason ??= r.rejectReason ?? '-';
        data.approver ??= r.approvedBy ? (r.approvedBy.fullName ?? r.approvedBy.username) : '-';
        data.error ??= r.resultMessage ?? '-';
        owners.push(r.applicant.id);
      }
    }
    if (uuid(data.allocationId)) {
      const a = await em.findOne(AllocationSchema, { id: data.allocationId }, { populate: ['host', 'customerUser'] });
      if (a) {
        data.host ??= a.host.name;
        data.hostSlug ??= a.host.slug;
        owners.push(a.customerUser.id);
      }
    }
    if (uuid(data.hostId) && data.host === undefined) {
      const h = await em.findOne(HostSchema, { id: String(data.hostId) });
      data.host = h ? `${h.name} (${h.slug})` : String(data.hostId);
    }
    if (uuid(data.keyId)) {
      const k = await em.findOne(SshKeySchema, { id: data.keyId });
      if (k) {
        data.fingerprint ??= k.fingerprint;
        data.keyName ??= k.comment || k.type;
        owners.push(k.user.id);
      }
    }
    if (uuid(data.securityEventId)) {
      const e = await em.findOne(SecurityEventSchema, { id: data.securityEventId });
      if (e) {
        data.username ??= e.username ?? '-';
        data.ip ??= e.ip ?? '-';
        data.at ??= e.at.getTime();
        data.severity ??= e.severity;
        data.detail ??= Object.entries(e.detail ?? {}).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(', ') || '-';
        if (e.userId) owners.push(e.userId);
      }
    }
    if (data.days !== undefined && data.remainingZh === undefined) data.remainingZh = `${data.days} 天`;
    return { input: { ...input, data }, owners };
  }

  async function emit(raw: EmitInput): Promise<EmitResult> {
    const def = (EVENTS as Record<string, EventDef>)[raw.event];
    if (!def) throw new ChannelError(`unknown event ${raw.event}`, false);
    const em = deps.em.fork();
    const { input, owners } = await enrich(em, raw);
    const result: EmitResult = { messages: 0, sent: 0, suppressed: 0, failed: 0, deduplicated: 0, retrying: 0 };
    for (const t of await targets(em, input, owners)) {
      result.messages++;
      let row = await em.findOne(NotificationSchema, { eventKey: input.key, recipient: t.recipient, channel: t.channel });
      if (row) {
        row.duplicates += 1;
        if (row.status !== 'queued') {
          log(em, row, 'deduplicated', `already ${row.status}`, null);
          await em.flush();
          result.deduplicated++;
          continue;
        }
      } else {
        const language: Language = (LANGUAGES as readonly string[]).includes(t.language ?? '') ? (t.language as Language) : settings.defaultLanguage;
        const tpl = await pickTemplate(em, input.event, t.channel, language);
        const rendered = renderMessage(def, tpl, input.data, t.channel, t.timezone);
        row = em.create(NotificationSchema, {
          eventKey: input.key, recipient: t.recipient, channel: t.channel, event: input.event, userId: t.userId ?? null, endpointId: t.endpoint?.id ?? null,
          language, templateVersion: tpl.version, subject: rendered.subject.slice(0, 300), body: rendered.body, html: rendered.html, payload: input.data,
        });
        try {
          await em.flush();
        } catch (err) {
          if (!(err instanceof UniqueConstraintViolationException)) throw err;
          em.clear();
          result.deduplicated++;
          continue;
        }
      }
      await deliver(em, row, t, def, input.data, result);
    }
    return result;
  }

  return { emit, settings };
}
