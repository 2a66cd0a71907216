// The notification center: one event occurrence → its recipients (the lifecycle's own audience plus
// subscriptions) → one message per (event key, recipient, channel), rendered from the event's
// template in the recipient's language and time zone and stored with the template version → each
// message delivered by its channel's sender, with the send log explaining every outcome.
import { createHash, randomUUID } from 'node:crypto';
import { notificationsTotal } from '../../config/metrics.js';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import {
  AccountOpeningRequestSchema,
  CustomerSchema,
  HostSchema,
  NotificationAttemptSchema,
  NotificationEndpointSchema,
  NotificationSchema,
  NotificationTemplateSchema,
  RoleSchema,
  SecurityEventSchema,
  SshKeySchema,
  UserSchema,
  type Notification,
  type NotificationSubscription,
  type User,
  type NotificationEndpoint,
  type NotifyChannel,
} from '../../db/entities/index.js';
import { resolveRoles, rolesInheriting } from '../../api/authz/principal.js';
import type { Vault } from '../../db/vault.js';
import type { Logger } from '../../config/logger.js';
import { EVENTS, LANGUAGES, type EmitInput, type EventDef, type Language } from './events.js';
import { escapeFor, render, textToHtml, TemplateError, type Format } from './render.js';
import { formatInZone } from './format.js';
import { ChannelError, type ChannelSender, type OutgoingMessage } from './channels/channel.js';
import { linkKey, newJti, signLink, type ActionPayload, type UnsubscribePayload } from './links.js';
import { consoleUrl, ROBOT_LINK_LABEL } from './console-links.js';
import { batchLoader, groupBy } from './batch.js';

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
  /** Called with the wall time of each stage of an emit (bench/notify.ts profiles with it). */
  onStage?: (stage: string, ms: number) => void;
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
  /** A direct recipient of the emit (`to.emails`): the only one whose message carries the secret variables. */
  direct?: boolean;
}

/** Secret values for one message, issued when it really goes out (a one-time token, the link carrying it). */
export type SecretIssuer = () => Promise<Record<string, string>>;

export interface EmitOptions {
  /** Values of the event's `secrets` variables; called once per delivery attempt of a direct recipient's message. */
  secrets?: SecretIssuer;
}

/** What a secret variable reads in the stored render. */
export const REDACTED = '<redacted>';

/** One message of a fan-out: its target and row; `fresh` when this attempt inserted the row. */
interface Planned {
  t: Target;
  row: Notification;
  fresh: boolean;
}

type AttemptStatus = 'sent' | 'failed' | 'suppressed' | 'deduplicated';

/** A Slack endpoint with this channel DMs people, found by their email (users.lookupByEmail). */
export const SLACK_DM_CHANNEL = '@email';

/**
 * Template versions are immutable (a change is a new version), so a version's subject and body are
 * cached per process once read; only "which version is newest" is asked per fan-out, in one query
 * for every channel and language of the event.
 */
const templateCache = new Map<string, { subject: string; body: string }>();

export interface PickedTemplate {
  version: number;
  subject: string;
  body: string;
  custom: boolean;
}

/**
 * Subject and body of (event, channel, language) for each pair asked: the newest stored version,
 * else the built-in text (version 0). One query for the newest versions, one more only for
 * versions this process has not read yet.
 */
export async function pickTemplates(
  em: SqlEntityManager,
  event: string,
  pairs: ReadonlyArray<readonly [NotifyChannel, Language]>,
  newestOf: { load(event: string): Promise<Map<string, number>> } = { load: (e) => newestVersions(em, [e]).then((m) => m.get(e) ?? new Map()) },
): Promise<(channel: NotifyChannel, language: Language) => PickedTemplate> {
  const def = (EVENTS as Record<string, EventDef>)[event]!;
  const newest = pairs.length ? await newestOf.load(event) : new Map<string, number>();
  const ck = (channel: string, language: string, version: number) => `${event}|${channel}|${language}|${version}`;
  const missing = [...new Set(pairs.map(([c, l]) => `${c}|${l}`))].flatMap((pair) => {
    const v = newest.get(pair);
    const [channel, language] = pair.split('|') as [NotifyChannel, string];
    return v !== undefined && !templateCache.has(ck(channel, language, v)) ? [{ channel, language, version: v }] : [];
  });
  if (missing.length) {
    for (const t of await em.find(NotificationTemplateSchema, { event, $or: missing })) templateCache.set(ck(t.channel, t.language, t.version), { subject: t.subject, body: t.body });
  }
  return (channel, language) => {
    const v = newest.get(`${channel}|${language}`);
    const hit = v === undefined ? undefined : templateCache.get(ck(channel, language, v));
    if (v !== undefined && hit) return { version: v, ...hit, custom: true };
    const [subject, body] = def.text[language];
    return { version: 0, subject, body, custom: false };
  };
}

/** The newest stored version per `channel|language` of each event: one grouped query. */
async function newestVersions(em: SqlEntityManager, events: string[]): Promise<Map<string, Map<string, number>>> {
  const rows = await em.getConnection().execute<Array<{ event: string; channel: string; language: string; version: number }>>(
    `select "event", "channel", "language", max("version")::int as "version" from "notification_templates" where "event" in (${events.map(() => '?').join(', ')}) group by "event", "channel", "language"`,
    events,
  );
  const out = new Map<string, Map<string, number>>();
  for (const r of rows) {
    const m = out.get(r.event) ?? new Map<string, number>();
    m.set(`${r.channel}|${r.language}`, Number(r.version));
    out.set(r.event, m);
  }
  return out;
}

/**
 * The reads every fan-out makes, shared between concurrent emits (batch.ts: gathered while a load
 * runs, never cached). Each load reads through a fresh fork of the root EntityManager; the entities
 * it returns are only read by the emits (rows an emit changes are read into its own fork).
 */
export function sharedReads(root: SqlEntityManager) {
  let loaders = sharedByRoot.get(root);
  if (!loaders) {
    loaders = makeSharedReads(root);
    sharedByRoot.set(root, loaders);
  }
  return loaders;
}

/** One set of loaders per database (root EntityManager): every center of a worker shares them. */
const sharedByRoot = new WeakMap<SqlEntityManager, ReturnType<typeof makeSharedReads>>();

/** What a fan-out reads of a person (the shared read selects these columns only). */
export type Person = Pick<User, 'id' | 'email' | 'timezone' | 'disabledAt'>;
type Subscription = Pick<NotificationSubscription, 'event' | 'channel' | 'subjectType' | 'subjectId'>;

// The hot reads are plain SQL selecting the columns used (no entity hydration, no identity map:
// the profile of bench/notify put MikroORM's find path at ~11% of the center's CPU).
function makeSharedReads(root: SqlEntityManager) {
  const byId = <T extends { id: string }>(rows: T[]) => new Map(rows.map((r) => [r.id, r]));
  const sql = <T>(query: string, params: unknown[]) => root.getConnection().execute<T[]>(query, params);
  const list = (n: number) => Array.from({ length: n }, () => '?').join(', ');
  return {
    subscriptions: batchLoader<string, Subscription[]>(
      async (events) => {
        const rows = await sql<{ event: string; channel: NotifyChannel; subject_type: Subscription['subjectType']; subject_id: string }>(`select "event", "channel", "subject_type", "subject_id" from "notification_subscriptions" where "event" in (${list(events.length + 1)})`, [...events, '*']);
        const subs = rows.map((r) => ({ event: r.event, channel: r.channel, subjectType: r.subject_type, subjectId: r.subject_id }));
        return new Map(events.map((e) => [e, subs.filter((s) => s.event === e || s.event === '*')]));
      },
      { empty: () => [] },
    ),
    endpoints: batchLoader<string, NotificationEndpoint | null>(async (ids) => byId(await root.fork().find(NotificationEndpointSchema, { id: { $in: ids } })), { empty: () => null }),
    users: batchLoader<string, Person | null>(
      async (ids) => byId((await sql<{ id: string; email: string | null; timezone: string | null; disabled_at: Date | null }>(`select "id", "email", "timezone", "disabled_at" from "users" where "id" in (${list(ids.length)})`, ids)).map((u) => ({ id: u.id, email: u.email, timezone: u.timezone, disabledAt: u.disabled_at }))),
      { empty: () => null },
    ),
    languages: batchLoader<string, string | null>(async (ids) => new Map((await sql<{ user_id: string; language: string }>(`select "user_id", "language" from "notification_preferences" where "user_id" in (${list(ids.length)})`, ids)).map((p) => [p.user_id, p.language])), { empty: () => null }),
    /** An allocation's host names and its customer user (enrichment of `allocationId`). */
    allocations: batchLoader<string, { id: string; hostName: string; hostSlug: string; customerUserId: string } | null>(
      async (ids) =>
        byId(
          (await sql<{ id: string; host_name: string; host_slug: string; customer_user_id: string }>(`select "a"."id", "h"."name" as "host_name", "h"."slug" as "host_slug", "a"."customer_user_id" from "allocations" "a" join "hosts" "h" on "h"."id" = "a"."host_id" where "a"."id" in (${list(ids.length)})`, ids)).map((r) => ({ id: r.id, hostName: r.host_name, hostSlug: r.host_slug, customerUserId: r.customer_user_id })),
        ),
      { empty: () => null },
    ),
    /** Whether an occurrence (event key) has any message rows yet. */
    occurrences: batchLoader<string, boolean>(
      async (keys) => {
        const rows = await root.getConnection().execute<Array<{ event_key: string }>>(`select distinct "event_key" from "notifications" where "event_key" in (${keys.map(() => '?').join(', ')})`, keys);
        return new Map(rows.map((r) => [r.event_key, true]));
      },
      { empty: () => false },
    ),
    newestTemplates: batchLoader<string, Map<string, number>>((events) => newestVersions(root.fork(), events), { empty: () => new Map() }),
    /** Unsubscribes of a recipient (`user:<id>` or an address), filtered by event and channel by the caller. */
    unsubscribes: batchLoader<string, Array<{ recipient: string; event: string; channel: string }>>(async (recipients) => groupBy(await sql<{ recipient: string; event: string; channel: string }>(`select "recipient", "event", "channel" from "notification_unsubscribes" where "recipient" in (${list(recipients.length)})`, recipients), (u) => u.recipient), { empty: () => [] }),
    /**
     * Optimistic claims of one delivery attempt each: `attempts` moves from the value the claimant
     * read to the next, only while the message is queued. Two claimants of one row in one batch (two
     * attempts of an activity racing) get one success between them, as two statements would.
     */
    claims: batchLoader<{ id: string; attempts: number; nonce: string }, boolean>(
      async (asks) => {
        const distinct = [...new Map(asks.map((a) => [`${a.id}:${a.attempts}`, a])).values()];
        const won = new Set(
          (
            await root.getConnection().execute<Array<{ id: string; attempts: number }>>(
              `update "notifications" set "attempts" = "attempts" + 1 where "status" = 'queued' and ("id", "attempts") in (${distinct.map(() => '(?::uuid, ?::int)').join(', ')}) returning "id", "attempts" - 1 as "attempts"`,
              distinct.flatMap((a) => [a.id, a.attempts]),
            )
          ).map((r) => `${r.id}:${Number(r.attempts)}`),
        );
        const out = new Map<string, boolean>();
        for (const a of asks) {
          const k = `${a.id}:${a.attempts}`;
          out.set(a.nonce, won.delete(k)); // the first asker of a won row gets it, a second one does not
        }
        return out;
      },
      { id: (a) => a.nonce, empty: () => false },
    ),
    /** Messages sent to `recipient\nchannel` in the last hour (the rate limit). */
    sentLastHour: batchLoader<string, number>(
      async (pairs) => {
        const split = pairs.map((p) => p.split('\n') as [string, string]);
        const rows = await root.getConnection().execute<Array<{ recipient: string; channel: string; n: number }>>(
          `select "recipient", "channel", count(*)::int as "n" from "notifications" where "status" = 'sent' and "sent_at" > ? and ("recipient", "channel") in (${split.map(() => '(?, ?)').join(', ')}) group by "recipient", "channel"`,
          [new Date(Date.now() - 3_600_000).toISOString(), ...split.flat()],
        );
        return new Map(rows.map((r) => [`${r.recipient}\n${r.channel}`, Number(r.n)]));
      },
      { empty: () => 0 },
    ),
  };
}

/** Subject and body of one (event, channel, language): see pickTemplates. */
export async function pickTemplate(em: SqlEntityManager, event: string, channel: NotifyChannel, language: Language): Promise<PickedTemplate> {
  return (await pickTemplates(em, event, [[channel, language]]))(channel, language);
}

/** The event's data with its secret variables set: to the issued values, or to `<redacted>` (what is stored). */
function withSecrets(def: EventDef, data: EmitInput['data'], secrets: Record<string, string> | null): EmitInput['data'] {
  if (!def.secrets?.length) return data;
  const out = { ...data };
  for (const name of def.secrets) {
    const v = secrets?.[name];
    if (secrets && (v === undefined || v === '')) throw new TemplateError(`secret variable \${${name}} was not issued`);
    out[name] = secrets ? v! : REDACTED;
  }
  return out;
}

/** One pinned version of (event, channel, language): 0 is the built-in text. */
async function templateVersion(em: SqlEntityManager, event: string, channel: NotifyChannel, language: Language, version: number, def: EventDef): Promise<PickedTemplate> {
  if (version === 0) {
    const [subject, body] = def.text[language];
    return { version: 0, subject, body, custom: false };
  }
  const key = `${event}|${channel}|${language}|${version}`;
  let hit = templateCache.get(key);
  if (!hit) {
    const t = await em.findOneOrFail(NotificationTemplateSchema, { event, channel, language, version });
    hit = { subject: t.subject, body: t.body };
    templateCache.set(key, hit);
  }
  return { version, ...hit, custom: true };
}

const ROBOTS: ReadonlySet<NotifyChannel> = new Set(['dingtalk', 'wecom', 'feishu']);

/**
 * Renders one message; dates in the recipient's zone; a missing variable throws TemplateError. A
 * group robot's message ends with the link to the console page about the occurrence (`consoleUrl`,
 * a page that requires signing in: console-links.ts), whatever its template says.
 */
export function renderMessage(def: EventDef, tpl: { subject: string; body: string; custom: boolean }, data: EmitInput['data'], channel: NotifyChannel, tz: string | null | undefined, language?: string) {
  const r = renderBody(def, tpl, data, channel, tz);
  const url = data.consoleUrl;
  if (ROBOTS.has(channel) && typeof url === 'string' && url) {
    const target = encodeURI(decodeURI(url)).replace(/[()]/g, (c) => (c === '(' ? '%28' : '%29'));
    r.body += `\n\n[${ROBOT_LINK_LABEL[language ?? 'en'] ?? ROBOT_LINK_LABEL.en}](${target})`;
  }
  return r;
}

function renderBody(def: EventDef, tpl: { subject: string; body: string; custom: boolean }, data: EmitInput['data'], channel: NotifyChannel, tz: string | null | undefined): { subject: string; body: string; html: string | null } {
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
  const onStage = deps.onStage;
  /** Runs one stage, reporting its wall time to onStage (when set). */
  const stage = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    if (!onStage) return fn();
    const t = performance.now();
    try {
      return await fn();
    } finally {
      onStage(name, performance.now() - t);
    }
  };
  const baseOf = () => ((typeof deps.publicBaseUrl === 'function' ? deps.publicBaseUrl() : deps.publicBaseUrl) || 'http://127.0.0.1:3000').replace(/\/+$/, '');
  const shared = sharedReads(deps.em);

  /** Users and roles, read once per fan-out and only when a role or permission addresses someone. */
  function directory(em: SqlEntityManager) {
    const read = async () => ({ users: await em.find(UserSchema, { disabledAt: null }), roles: await em.find(RoleSchema, {}) });
    let loaded: ReturnType<typeof read> | undefined;
    const load = () => (loaded ??= read());
    return async function usersWith(roles: string[] | undefined, permission: string | undefined): Promise<User[]> {
      if (!roles?.length && !permission) return [];
      const d = await load();
      const resolved = permission ? resolveRoles(d.roles, new Map()) : null;
      // A role-addressed recipient is that role or any role inheriting it (custom roles made from it).
      const named = rolesInheriting(d.roles, roles ?? []);
      return d.users.filter((u) => u.roles.some((n) => named.has(n)) || (permission && u.roles.some((n) => resolved!.get(n)?.permissions.has(permission as never))));
    };
  }

  /**
   * Everyone and everything this occurrence goes to, per channel. Batched: one query per kind of
   * subject (subscriptions, endpoints, customers, users, preferences), not one per subscription.
   */
  async function targets(em: SqlEntityManager, input: EmitInput, owners: string[]): Promise<Target[]> {
    const out: Target[] = [];
    const usersWith = directory(em);
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
    for (const u of await usersWith(input.to?.roles, input.to?.permission)) add(u.id, ['email', 'inbox']);
    const subs = await shared.subscriptions.load(input.event);
    const ids = (type: NotificationSubscription['subjectType']) => [...new Set(subs.filter((s) => s.subjectType === type).map((s) => s.subjectId))];
    const customerIds = ids('customer');
    const endpointIds = ids('endpoint');
    const [customers, customerUsers, endpoints] = await Promise.all([
      customerIds.length ? em.find(CustomerSchema, { id: { $in: customerIds } }) : [],
      customerIds.length ? em.find(UserSchema, { customerId: { $in: customerIds }, disabledAt: null }) : [],
      Promise.all(endpointIds.map((id) => shared.endpoints.load(id))).then((es) => es.filter((e): e is NotificationEndpoint => e !== null)),
    ]);
    const customerById = new Map(customers.map((c) => [c.id, c]));
    const endpointById = new Map(endpoints.map((e) => [e.id, e]));
    const contactEmails: Array<{ email: string; channel: NotifyChannel }> = [];
    for (const s of subs) {
      if (s.subjectType === 'user') add(s.subjectId, [s.channel]);
      else if (s.subjectType === 'role') for (const u of await usersWith([s.subjectId], undefined)) add(u.id, [s.channel]);
      else if (s.subjectType === 'customer') {
        const c = customerById.get(s.subjectId);
        if (c?.contactEmail && s.channel === 'email') contactEmails.push({ email: c.contactEmail.toLowerCase(), channel: 'email' });
        for (const u of customerUsers) if (u.customerId === s.subjectId) add(u.id, [s.channel]);
      } else if (s.subjectType === 'endpoint') {
        const e = endpointById.get(s.subjectId);
        if (e) out.push({ channel: e.kind, recipient: `endpoint:${e.id}`, endpoint: e, language: e.config.language });
      }
    }
    const personIds = [...people.keys()];
    // Slack for a person: a DM through the workspace bot (the Slack endpoint whose channel is `@email`).
    const wantsSlack = [...people.values()].some((c) => c.has('slack'));
    const [users, prefRows, slackBots] = await Promise.all([
      Promise.all(personIds.map((id) => shared.users.load(id))).then((us) => us.filter((u): u is Person => u !== null)),
      Promise.all(personIds.map(async (id) => ({ userId: id, language: await shared.languages.load(id) }))).then((ps) => ps.flatMap((p) => (p.language ? [{ userId: p.userId, language: p.language }] : []))),
      wantsSlack ? em.find(NotificationEndpointSchema, { kind: 'slack' }, { orderBy: { createdAt: 'asc' } }) : [],
    ]);
    const dmBot = slackBots.find((e) => e.config.channel === SLACK_DM_CHANNEL);
    const prefs = new Map(prefRows.map((p) => [p.userId, p.language]));
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
    for (const raw of input.to?.emails ?? []) {
      const email = raw.toLowerCase();
      const known = out.find((t) => t.channel === 'email' && t.recipient === email);
      if (known) known.direct = true;
      else out.push({ channel: 'email', recipient: email, direct: true, language: input.language });
    }
    return out;
  }

  /** A send-log row (one per attempt and per deduplicated emit), written with the message in one flush. */
  const log = (em: SqlEntityManager, row: Notification, status: AttemptStatus, response: string | null, latencyMs: number | null) =>
    em.create(NotificationAttemptSchema, { notificationId: row.id, attempt: row.attempts, status, response: response?.slice(0, 1000) ?? null, latencyMs });

  /**
   * Why each message must not go out (null: it may), in the order a person would ask: no address,
   * unsubscribed, a sensitive word, over the rate limit, no channel configured. Two queries for the
   * whole fan-out (unsubscribes, the last hour's sent counts), not two per message.
   */
  async function suppressReasons(em: SqlEntityManager, items: Array<{ row: Notification; t: Target }>, event: string, transactional: boolean): Promise<Array<string | null>> {
    const reasons: Array<string | null> = items.map(({ t }) => t.suppress ?? null);
    const open = () => items.map((_, i) => i).filter((i) => reasons[i] === null);
    const ask = open();
    if (!ask.length) return reasons;
    const recipients = [...new Set(ask.flatMap((i) => [items[i]!.row.recipient, ...(items[i]!.row.userId ? [`user:${items[i]!.row.userId}`] : [])]))];
    const unsubs = transactional ? [] : (await Promise.all(recipients.map((r) => shared.unsubscribes.load(r)))).flat().filter((u) => u.event === event || u.event === '*');
    for (const i of ask) {
      const { row } = items[i]!;
      const mine = [row.recipient, ...(row.userId ? [`user:${row.userId}`] : [])];
      const unsub = unsubs.find((u) => u.channel === row.channel && mine.includes(u.recipient));
      if (unsub) {
        reasons[i] = `recipient unsubscribed from ${unsub.event === '*' ? 'all events' : unsub.event} on ${unsub.channel}`;
        continue;
      }
      const text = `${row.subject}\n${row.body}`.toLowerCase();
      const word = settings.sensitiveWords.find((w) => w && text.includes(w.toLowerCase()));
      if (word) reasons[i] = `sensitive word "${word}" in the message`;
    }
    const limited = open();
    if (settings.rateLimitPerHour > 0 && limited.length) {
      const pairs = [...new Set(limited.map((i) => `${items[i]!.row.recipient}\n${items[i]!.row.channel}`))];
      const sent = new Map(await Promise.all(pairs.map(async (k) => [k, await shared.sentLastHour.load(k)] as const)));
      for (const i of limited) {
        const { row } = items[i]!;
        const n = sent.get(`${row.recipient}\n${row.channel}`) ?? 0;
        if (n >= settings.rateLimitPerHour) reasons[i] = `rate limit: ${n} messages to this recipient on ${row.channel} in the last hour (limit ${settings.rateLimitPerHour})`;
      }
    }
    for (const i of open()) {
      const { row } = items[i]!;
      if (row.channel !== 'inbox' && !deps.senders[row.channel]) reasons[i] = `no ${row.channel} channel configured`;
    }
    return reasons;
  }

  async function outgoing(em: SqlEntityManager, row: Notification, t: Target, def: EventDef, data: EmitInput['data'], opts: EmitOptions): Promise<OutgoingMessage> {
    const msg: OutgoingMessage = {
      id: row.id, event: row.event ?? 'legacy', eventKey: row.eventKey, messageId: stableMessageId(row.eventKey, row.recipient, row.channel),
      subject: row.subject, body: row.body, html: row.html, payload: row.payload ?? {}, createdAt: row.createdAt, to: row.recipient,
    };
    if (def.secrets?.length && t.direct && opts.secrets) {
      // Rendered again, from the version the stored render used, with the real values: only this
      // message in memory carries them. Each attempt issues fresh values (a resend after a crash
      // carries a new token, which may replace the old one), so its Message-ID names the attempt:
      // the receiver keeps both and the newest one's link works.
      const tpl = await templateVersion(em, row.event ?? '', row.channel, (LANGUAGES as readonly string[]).includes(row.language) ? (row.language as Language) : settings.defaultLanguage, row.templateVersion, def);
      const real = renderMessage(def, tpl, withSecrets(def, data, await opts.secrets()), row.channel, t.timezone, row.language);
      msg.subject = real.subject.slice(0, 300);
      msg.body = real.body;
      msg.html = real.html;
      msg.messageId = msg.messageId.replace('@hostflow>', `.a${row.attempts}@hostflow>`);
    }
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
    if (row.channel === 'email' && row.event && !def.transactional) {
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

  /**
   * Records one delivery attempt: the message's new state and its send-log row in one statement
   * (atomic, one round trip), right after the provider answered, so a crash loses at most the
   * record of the message in flight (whose stable id lets the receiver drop the resend).
   */
  async function record(em: SqlEntityManager, row: Notification, outcome: { status: 'sent' | 'queued' | 'failed'; detail: string | null; response: string; latencyMs: number }) {
    const sent = outcome.status === 'sent';
    const sets = sent
      ? `"status" = 'sent', "sent_at" = ?::timestamptz, "provider_response" = ?, "latency_ms" = ?::int, "detail" = null, "attempts" = ?::int`
      : `"status" = ?, "detail" = ?, "latency_ms" = ?::int, "attempts" = ?::int`;
    const setParams = sent ? [new Date().toISOString(), outcome.response.slice(0, 1000), outcome.latencyMs, row.attempts] : [outcome.status, outcome.detail?.slice(0, 1000) ?? null, outcome.latencyMs, row.attempts];
    await em.getConnection().execute(
      `with "u" as (update "notifications" set ${sets} where "id" = ?::uuid returning "id") ` +
        `insert into "notification_attempts" ("id", "notification_id", "attempt", "status", "response", "latency_ms", "at") select ?::uuid, "u"."id", ?::int, ?, ?, ?::int, now() from "u"`,
      [...setParams, row.id, randomUUID(), row.attempts, sent ? 'sent' : 'failed', (sent ? outcome.response : (outcome.detail ?? '')).slice(0, 1000), outcome.latencyMs],
    );
    notificationsTotal.inc({ channel: row.channel, outcome: sent ? 'sent' : 'failed' });
  }

  /** Delivers one queued message once: claims an attempt (optimistic), sends, records. */
  async function deliver(em: SqlEntityManager, p: Planned, def: EventDef, data: EmitInput['data'], result: EmitResult, opts: EmitOptions): Promise<void> {
    const { row, t } = p;
    // Claimed right before its send, not when inserted: `attempts` counts tries that really began, so
    // after a crash only the message that was in flight shows a second attempt.
    // Claims issued at the same moment (other channels, other emits) go out as one statement.
    const claimed = await stage('claim', () => shared.claims.load({ id: row.id, attempts: row.attempts, nonce: randomUUID() }));
    if (!claimed) return; // another attempt of this activity is on it
    row.attempts += 1;
    const started = performance.now();
    try {
      let response = 'stored in the inbox';
      if (row.channel !== 'inbox') {
        const msg = await stage('outgoing', () => outgoing(em, row, t, def, data, opts));
        response = (await stage(`send:${row.channel}`, () => deps.senders[row.channel]!.send(msg))).response;
      }
      await stage('record', () => record(em, row, { status: 'sent', detail: null, response, latencyMs: Math.round(performance.now() - started) }));
      result.sent++;
    } catch (err) {
      const latencyMs = Math.round(performance.now() - started);
      const retryable = err instanceof ChannelError ? err.retryable : true;
      const final = !retryable || row.attempts >= settings.maxAttempts;
      const message = (err as Error).message;
      await record(em, row, { status: final ? 'failed' : 'queued', detail: `attempt ${row.attempts}/${settings.maxAttempts}: ${message}`, response: message, latencyMs });
      if (final) result.failed++;
      else result.retrying++;
      deps.logger.warn({ notification: row.id, channel: row.channel, attempt: row.attempts, final }, 'notification delivery failed');
    }
  }

  /**
   * One fan-out's bookkeeping in one transaction: the messages found (deduplicated, or queued from an
   * earlier attempt), the new ones rendered and inserted in bulk, suppressed ones with their reason,
   * inbox messages stored as sent (the inbox is this database). Returns what still has to be sent.
   * Reads: the occurrence's existing rows, the newest template versions, unsubscribes, rate counts.
   */
  async function plan(em: SqlEntityManager, input: EmitInput, def: EventDef, ts: Target[], result: EmitResult, vars: EmitInput['data']): Promise<Planned[]> {
    const keyOf = (recipient: string, channel: string) => `${recipient}\n${channel}`;
    // Whether the occurrence has rows is asked together with concurrent emits; the rows themselves
    // (rare: a repeat or a retry) are read into this emit's own EntityManager, which updates them.
    const rows = (await shared.occurrences.load(input.key)) ? await em.find(NotificationSchema, { eventKey: input.key }) : [];
    const existing = new Map(rows.map((r) => [keyOf(r.recipient, r.channel), r]));
    const languageOf = (t: Target): Language => ((LANGUAGES as readonly string[]).includes(t.language ?? '') ? (t.language as Language) : settings.defaultLanguage);
    // A row an earlier release's email-only path (registration notices before they were catalogue
    // events) inserted and never sent: no event, still queued. It is this message; render it now.
    const unrendered = (r: Notification | undefined) => !!r && r.status === 'queued' && !r.event;
    const toRender = ts.filter((t) => {
      const r = existing.get(keyOf(t.recipient, t.channel));
      return !r || unrendered(r);
    });
    const template = await pickTemplates(em, input.event, toRender.map((t) => [t.channel, languageOf(t)] as const), shared.newestTemplates);
    const rendered = (t: Target) => {
      const language = languageOf(t);
      const tpl = template(t.channel, language);
      const m = renderMessage(def, tpl, withSecrets(def, vars, null), t.channel, t.timezone, language);
      return { language, templateVersion: tpl.version, subject: m.subject.slice(0, 300), body: m.body, html: m.html };
    };
    const metrics: Array<[NotifyChannel, AttemptStatus]> = [];
    const candidates: Planned[] = [];
    for (const t of ts) {
      const found = existing.get(keyOf(t.recipient, t.channel));
      if (found && unrendered(found)) {
        Object.assign(found, { ...rendered(t), event: input.event, userId: found.userId ?? t.userId ?? null, endpointId: t.endpoint?.id ?? null, payload: input.data });
        candidates.push({ t, row: found, fresh: false });
        continue;
      }
      if (found) {
        found.duplicates += 1;
        if (found.status !== 'queued') {
          log(em, found, 'deduplicated', `already ${found.status}`, null);
          metrics.push([found.channel, 'deduplicated']);
          result.deduplicated++;
        } else candidates.push({ t, row: found, fresh: false });
        continue;
      }
      const row = em.create(NotificationSchema, {
        eventKey: input.key, recipient: t.recipient, channel: t.channel, event: input.event, userId: t.userId ?? null, endpointId: t.endpoint?.id ?? null,
        ...rendered(t), payload: input.data,
      });
      candidates.push({ t, row, fresh: true });
    }
    const reasons = await stage('plan:suppress', () => suppressReasons(em, candidates, input.event, def.transactional === true));
    const send: Planned[] = [];
    candidates.forEach((p, i) => {
      const reason = reasons[i];
      if (reason) {
        p.row.status = 'suppressed';
        p.row.detail = reason.slice(0, 1000);
        log(em, p.row, 'suppressed', reason, null);
        metrics.push([p.row.channel, 'suppressed']);
        result.suppressed++;
      } else if (p.fresh && p.row.channel === 'inbox') {
        p.row.attempts = 1;
        p.row.status = 'sent';
        p.row.sentAt = new Date();
        p.row.providerResponse = 'stored in the inbox';
        p.row.latencyMs = 0;
        log(em, p.row, 'sent', 'stored in the inbox', 0);
        metrics.push(['inbox', 'sent']);
        result.sent++;
      } else send.push(p);
    });
    await stage('plan:flush', () => em.flush());
    for (const [channel, outcome] of metrics) notificationsTotal.inc({ channel, outcome });
    return send;
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
      const a = await shared.allocations.load(data.allocationId);
      if (a) {
        data.host ??= a.hostName;
        data.hostSlug ??= a.hostSlug;
        owners.push(a.customerUserId);
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

  async function emit(raw: EmitInput, opts: EmitOptions = {}): Promise<EmitResult> {
    const def = (EVENTS as Record<string, EventDef>)[raw.event];
    if (!def) throw new ChannelError(`unknown event ${raw.event}`, false);
    const em = deps.em.fork();
    const { input, owners } = await stage('enrich', () => enrich(em, raw));
    const ts = await stage('targets', () => targets(em, input, owners));
    // What templates render from: the event's data and the center's own variables (CENTER_VARS);
    // the stored payload (and a webhook's `data`) stays the event's data.
    const vars: EmitInput['data'] = { ...input.data, consoleUrl: consoleUrl(baseOf(), input.event, input.data) };
    const fresh = (): EmitResult => ({ messages: ts.length, sent: 0, suppressed: 0, failed: 0, deduplicated: 0, retrying: 0 });
    let result = fresh();
    let send: Planned[] = [];
    for (let round = 1; ; round++) {
      try {
        send = await stage('plan', () => plan(em, input, def, ts, result, vars));
        break;
      } catch (err) {
        // Another attempt of this occurrence inserted some of its rows first: read them and plan again.
        if (!(err instanceof UniqueConstraintViolationException) || round >= 3) throw err;
        em.clear();
        result = fresh();
      }
    }
    // Channels in parallel (an occurrence's email does not wait for its webhook); the messages of
    // one channel one after another, in order, as before.
    const byChannel = groupBy(send, (p) => p.row.channel);
    // Every channel settles before a failure is thrown: a retried attempt must not find a message
    // of another channel still being sent by this one (it would claim and send it again).
    const settled = await Promise.allSettled([...byChannel.values()].map(async (list) => {
      for (const p of list) await deliver(em, p, def, vars, result, opts);
    }));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return result;
  }

  return { emit, settings };
}
