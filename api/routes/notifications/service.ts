// The notification center's domain operations for the API: inbox, endpoints (secrets encrypted,
// never returned after creation), subscriptions, template versions, send log and statistics,
// unsubscribe and decisions taken from a message (signed email links, Slack buttons).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Client } from '@temporalio/client';
import {
  AccountOpeningRequestSchema,
  NotificationEndpointSchema,
  NotificationSchema,
  NotificationSubscriptionSchema,
  NotificationTemplateSchema,
  NotificationUnsubscribeSchema,
  NotifyActionUseSchema,
  UserSchema,
  type NotificationEndpoint,
  type NotifyChannel,
} from '../../../db/entities/index.js';
import type { Vault } from '../../../db/vault.js';
import { recordAudit } from '../../../db/audit.js';
import { EVENTS, templateVarsOf, type EventDef } from '../../../activities/notify/events.js';
import { checkTemplate, render, TemplateError } from '../../../activities/notify/render.js';
import { linkKey, verifyLink, type ActionPayload, type UnsubscribePayload } from '../../../activities/notify/links.js';
import { approveUpdate, rejectUpdate } from '../../../workflows/account-opening.workflow.js';
import { conflict, forbidden, notFound, validationError, unauthenticated } from '../../errors.js';
import { rethrowMapped } from '../../temporal-errors.js';
import { assertNotSelf } from '../../authz/duties.js';
import { can, resolvePrincipal, type Principal, type RoleCache } from '../../authz/principal.js';
import { scopeFor } from '../../authz/scope.js';

type Em = { em: SqlEntityManager };

// ---- endpoints --------------------------------------------------------------------------------

const urlDisplay = (u: string) => {
  const x = new URL(u);
  return `${x.protocol}//${x.host}${x.pathname}`;
};

export function endpointDto(e: NotificationEndpoint) {
  return { id: e.id, name: e.name, kind: e.kind, url: e.urlDisplay, channel: e.config.channel ?? null, language: e.config.language ?? null, has_secret: !!e.secretCiphertext, created_at: e.createdAt.toISOString(), rotated_at: e.rotatedAt?.toISOString() ?? null, previous_secret_valid_until: e.previousSecretUntil?.toISOString() ?? null };
}

export async function createEndpoint(deps: Em & { vault: Vault }, input: { name: string; kind: NotificationEndpoint['kind']; url: string; secret?: string; channel?: string; language?: string }) {
  if (input.kind === 'slack' && !input.channel) throw validationError([{ field: 'channel', message: 'a Slack endpoint needs the channel to post to' }]);
  if (input.kind === 'slack' && !input.secret) throw validationError([{ field: 'secret', message: 'a Slack endpoint needs the bot token (xoxb-…)' }]);
  if (input.kind === 'wecom' && !input.secret) throw validationError([{ field: 'secret', message: 'a WeCom robot needs its key (the key= of its webhook URL)' }]);
  const em = deps.em.fork();
  if (await em.count(NotificationEndpointSchema, { name: input.name })) throw conflict(`an endpoint named ${input.name} exists`);
  // Webhooks get a generated secret when none is given: shown once, in this answer.
  const generated = input.kind === 'webhook' && !input.secret ? `whsec_${randomBytes(24).toString('base64url')}` : undefined;
  const secret = input.secret ?? generated;
  const e = em.create(NotificationEndpointSchema, { name: input.name, kind: input.kind, urlDisplay: urlDisplay(input.url), urlCiphertext: '-', config: { ...(input.channel ? { channel: input.channel } : {}), ...(input.language ? { language: input.language } : {}) } });
  e.urlCiphertext = deps.vault.encrypt(input.url, `notify-endpoint:${e.id}:url`).ciphertext;
  e.secretCiphertext = secret ? deps.vault.encrypt(secret, `notify-endpoint:${e.id}:secret`).ciphertext : null;
  await em.flush();
  return { endpoint: e, generatedSecret: generated };
}

/** New secret (given or generated); the previous one stays valid for `graceHours` (webhooks sign with both). */
export async function rotateEndpointSecret(deps: Em & { vault: Vault }, id: string, input: { secret?: string; grace_hours: number }) {
  const em = deps.em.fork();
  const e = await em.findOne(NotificationEndpointSchema, { id });
  if (!e) throw notFound('endpoint');
  const generated = input.secret ? undefined : `whsec_${randomBytes(24).toString('base64url')}`;
  const secret = input.secret ?? generated!;
  if (e.secretCiphertext && input.grace_hours > 0) {
    const old = deps.vault.decrypt(e.secretCiphertext, `notify-endpoint:${e.id}:secret`);
    e.previousSecretCiphertext = deps.vault.encrypt(old, `notify-endpoint:${e.id}:previous`).ciphertext;
    e.previousSecretUntil = new Date(Date.now() + input.grace_hours * 3_600_000);
  } else {
    e.previousSecretCiphertext = null;
    e.previousSecretUntil = null;
  }
  e.secretCiphertext = deps.vault.encrypt(secret, `notify-endpoint:${e.id}:secret`).ciphertext;
  e.rotatedAt = new Date();
  await em.flush();
  return { endpoint: e, generatedSecret: generated };
}

export async function deleteEndpoint(deps: Em, id: string) {
  const em = deps.em.fork();
  const e = await em.findOne(NotificationEndpointSchema, { id });
  if (!e) throw notFound('endpoint');
  await em.nativeDelete(NotificationSubscriptionSchema, { subjectType: 'endpoint', subjectId: id });
  em.remove(e);
  await em.flush();
  return e;
}

// ---- subscriptions ----------------------------------------------------------------------------

export async function createSubscription(deps: Em, input: { event: string; channel?: NotifyChannel; subject_type: 'user' | 'role' | 'customer' | 'endpoint'; subject_id: string }) {
  const em = deps.em.fork();
  if (input.event !== '*' && !Object.hasOwn(EVENTS, input.event)) throw validationError([{ field: 'event', message: `unknown event (GET /api/v1/notifications/events lists them)` }]);
  let channel = input.channel;
  // Users, customers and endpoints are named by uuid; a malformed one is the caller's mistake, not a lookup.
  if (input.subject_type !== 'role' && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(input.subject_id)) {
    throw validationError([{ field: 'subject_id', message: `must be the ${input.subject_type}'s id (a uuid)` }]);
  }
  if (input.subject_type === 'endpoint') {
    const e = await em.findOne(NotificationEndpointSchema, { id: input.subject_id });
    if (!e) throw validationError([{ field: 'subject_id', message: 'no endpoint with this id' }]);
    channel = e.kind;
  } else {
    if (!channel || !['email', 'inbox', 'sms', 'slack'].includes(channel)) throw validationError([{ field: 'channel', message: 'people get email, inbox, sms or a Slack DM (through a Slack endpoint whose channel is @email); robots and webhooks are endpoints' }]);
    if (input.subject_type === 'user' && !(await em.count(UserSchema, { id: input.subject_id }))) throw validationError([{ field: 'subject_id', message: 'no user with this id' }]);
  }
  if (await em.count(NotificationSubscriptionSchema, { event: input.event, channel, subjectType: input.subject_type, subjectId: input.subject_id })) throw conflict('this subscription exists');
  const s = em.create(NotificationSubscriptionSchema, { event: input.event, channel: channel!, subjectType: input.subject_type, subjectId: input.subject_id });
  await em.flush();
  return s;
}

// ---- templates --------------------------------------------------------------------------------

/** Sample values for a template check: every variable filled, dates as now. */
const sample = (def: EventDef) => Object.fromEntries(templateVarsOf(def).map((v) => [v, (def.dates ?? []).includes(v) ? new Date().toISOString() : `<${v}>`]));

export async function createTemplateVersion(deps: Em, input: { event: string; channel: NotifyChannel; language: string; subject: string; body: string }, by: string) {
  const def = (EVENTS as Record<string, EventDef>)[input.event];
  if (!def) throw validationError([{ field: 'event', message: 'unknown event' }]);
  for (const field of ['subject', 'body'] as const) {
    try {
      checkTemplate(input[field], templateVarsOf(def));
      render(input[field], sample(def), 'text');
    } catch (err) {
      if (err instanceof TemplateError) throw validationError([{ field, message: err.message }]);
      throw err;
    }
  }
  const em = deps.em.fork();
  const last = await em.findOne(NotificationTemplateSchema, { event: input.event, channel: input.channel, language: input.language }, { orderBy: { version: 'desc' } });
  const t = em.create(NotificationTemplateSchema, { ...input, version: (last?.version ?? 0) + 1, createdBy: by });
  await em.flush();
  return t;
}

// ---- send log and statistics ------------------------------------------------------------------

const pct = (xs: number[], p: number) => (xs.length ? xs[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]! : null);

export async function deliveryStats(deps: Em, since: Date) {
  const rows = await deps.em.fork().find(NotificationSchema, { createdAt: { $gte: since } }, { fields: ['channel', 'event', 'status', 'attempts', 'latencyMs', 'duplicates'] });
  const groups = new Map<string, typeof rows>();
  for (const r of rows) {
    const k = `${r.channel}\n${r.event ?? 'legacy'}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  return [...groups.entries()].map(([k, rs]) => {
    const [channel, event] = k.split('\n');
    const lat = rs.filter((r) => r.status === 'sent' && r.latencyMs !== null).map((r) => r.latencyMs!).sort((a, b) => a - b);
    const attempted = rs.filter((r) => r.attempts > 0);
    return {
      channel: channel!, event: event!, total: rs.length,
      sent: rs.filter((r) => r.status === 'sent').length, failed: rs.filter((r) => r.status === 'failed').length,
      suppressed: rs.filter((r) => r.status === 'suppressed').length, queued: rs.filter((r) => r.status === 'queued').length,
      deduplicated: rs.reduce((n, r) => n + r.duplicates, 0),
      retry_rate: attempted.length ? attempted.filter((r) => r.attempts > 1).length / attempted.length : 0,
      latency_p50_ms: pct(lat, 50), latency_p95_ms: pct(lat, 95),
    };
  });
}

// ---- unsubscribe ------------------------------------------------------------------------------

export async function readUnsubscribe(deps: Em & { vault: Vault }, token: string) {
  const p = verifyLink<UnsubscribePayload>(await linkKey(deps.em, deps.vault), token);
  if (!p || p.t !== 'unsubscribe') throw validationError([{ field: 'token', message: 'not a valid unsubscribe link' }]);
  return p;
}

export async function unsubscribe(deps: Em & { vault: Vault }, token: string) {
  const p = await readUnsubscribe(deps, token);
  await deps.em.fork().getConnection().execute(
    'insert into notification_unsubscribes (id, recipient, event, channel, created_at) values (gen_random_uuid(), ?, ?, ?, now()) on conflict do nothing',
    [p.r, p.e, p.c],
  );
  return { recipient: p.r.startsWith('user:') ? 'you' : p.r, event: p.e, channel: p.c };
}

export async function resubscribe(deps: Em, recipient: string, event: string, channel: NotifyChannel) {
  return deps.em.fork().nativeDelete(NotificationUnsubscribeSchema, { recipient, event, channel });
}

// ---- decisions from a message -----------------------------------------------------------------

export interface DecideDeps extends Em {
  vault: Vault;
  roleCache: RoleCache;
  temporal: { client: Client };
}

/** The principal of a user as the API would resolve them (roles table), for decisions made outside a session. */
export async function principalOfUser(deps: DecideDeps, userId: string): Promise<Principal | null> {
  const u = await deps.em.fork().findOne(UserSchema, { id: userId });
  if (!u || u.disabledAt) return null;
  return resolvePrincipal(deps.roleCache, { id: u.id, username: u.username, roles: u.roles, customerId: u.customerId ?? null, mfaEnrolled: !!u.totpEnabledAt || !!u.mfaEmailEnabledAt });
}

/**
 * Approve / reject an account opening for `principal`, exactly like POST /account-openings/:id/approve:
 * the same permission, scope and separation-of-duties checks, the same Update (whose validator checks
 * again), audited with how the decision arrived (`via`).
 */
export async function decideAccountOpening(deps: DecideDeps, input: { principal: Principal; requestId: string; kind: 'approve' | 'reject'; reason?: string; via: 'email-link' | 'slack'; ip?: string; requestIdHeader?: string }) {
  const { principal: p } = input;
  const em = deps.em.fork();
  const audit = async (result: 'success' | 'failure', detail: Record<string, unknown>) => {
    recordAudit(em, { actor: p.username, action: `account-opening.${input.kind}`, targetType: 'account-opening', targetId: input.requestId, ip: input.ip, requestId: input.requestIdHeader, detail: { via: input.via, ...detail }, result });
    await em.flush();
  };
  if (!can(p, 'account_opening.approve')) {
    await audit('failure', { error: 'requires permission account_opening.approve' });
    throw forbidden('requires permission account_opening.approve');
  }
  const row = await scopeFor(p).find(em, AccountOpeningRequestSchema, { id: input.requestId }, 'account opening request', { populate: ['applicant'] });
  try {
    assertNotSelf(p, row.applicant.id, 'account opening request');
  } catch (err) {
    await audit('failure', { error: (err as Error).message });
    throw err;
  }
  if (row.status !== 'pending') throw conflict(`request is ${row.status}, not pending`);
  if (input.kind === 'reject' && !input.reason?.trim()) throw validationError([{ field: 'reason', message: 'a reason is required to reject' }]);
  const actor = { id: p.id, username: p.username, roles: p.roles, permissions: [...p.permissions] };
  const handle = deps.temporal.client.workflow.getHandle(row.workflowId);
  try {
    const state = input.kind === 'approve'
      ? await handle.executeUpdate(approveUpdate, { args: [{ actor, notes: `approved via ${input.via}` }] })
      : await handle.executeUpdate(rejectUpdate, { args: [{ actor, reason: input.reason! }] });
    await audit('success', input.kind === 'reject' ? { reason: input.reason } : {});
    return state;
  } catch (err) {
    await audit('failure', { error: (err as Error).message });
    rethrowMapped(err);
  }
}

/** An email action link: verified, not expired, unused, for this approver; used once. */
export async function useActionLink(deps: DecideDeps, token: string, opts: { consume: boolean }) {
  const p = verifyLink<ActionPayload>(await linkKey(deps.em, deps.vault), token);
  if (!p || p.t !== 'action') throw validationError([{ field: 'token', message: 'not a valid action link' }]);
  if (Date.now() > p.x) throw conflict('this link has expired (the request expired with it)');
  const em = deps.em.fork();
  if (await em.count(NotifyActionUseSchema, { jti: p.j })) throw conflict('this link was used already');
  if (opts.consume) {
    const inserted = await em.getConnection().execute<Array<{ jti: string }>>('insert into notify_action_uses (jti, used_by, action, at) values (?, ?, ?, now()) on conflict (jti) do nothing returning jti', [p.j, p.u, p.a]);
    if (!inserted.length) throw conflict('this link was used already');
  }
  return p;
}

// ---- Slack interactivity ----------------------------------------------------------------------

/** Slack's request signing: v0=HMAC-SHA256(signing secret, "v0:<timestamp>:<raw body>"), 5-minute window. */
export function verifySlackSignature(secret: string, headers: { timestamp?: string; signature?: string }, rawBody: string, nowSec = Math.floor(Date.now() / 1000)): void {
  const ts = Number(headers.timestamp);
  if (!headers.timestamp || !Number.isFinite(ts) || Math.abs(nowSec - ts) > 300) throw unauthenticated('Slack request timestamp missing or outside the 5-minute window');
  const want = Buffer.from(`v0=${createHmac('sha256', secret).update(`v0:${headers.timestamp}:${rawBody}`).digest('hex')}`);
  const got = Buffer.from(headers.signature ?? '');
  if (want.length !== got.length || !timingSafeEqual(want, got)) throw unauthenticated('Slack request signature does not verify');
}
