import express, { Router } from 'express';
import type { AppDeps, AuthDeps } from '../../deps.js';
import { z, type OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import { PageQuery, pageOffsets, pageResult } from '../../pagination.js';
import { conflict, notFound, unauthenticated, validationError } from '../../errors.js';
import type { RoleCache } from '../../authz/principal.js';
import { recordAudit } from '../../../db/audit.js';
import {
  NotificationAttemptSchema,
  NotificationEndpointSchema,
  NotificationSchema,
  NotificationSubscriptionSchema,
  NotificationTemplateSchema,
  UserSchema,
} from '../../../db/entities/index.js';
import { EVENTS, EVENT_NAMES, templateVarsOf, type EventDef } from '../../../activities/notify/events.js';
import { createEmitter } from '../../../activities/notify/notify.activities.js';
import { escapeHtml } from '../../../activities/notify/render.js';
import { Channel, Endpoint, EndpointCreate, EndpointCreated, Language, LogEntry, Message, RotateSecret, Stats, Subscription, SubscriptionCreate, Template, TemplateCreate, TestSend } from './schema.js';
import {
  createEndpoint, createSubscription, createTemplateVersion, decideAccountOpening, deleteEndpoint, deliveryStats, endpointDto, principalOfUser, readUnsubscribe, rotateEndpointSecret, unsubscribe, useActionLink, verifySlackSignature,
} from './service.js';
import { handleSlackAction } from './slack.js';

const tags = ['notifications'];
const Id = z.object({ id: z.string().uuid('must be an id (uuid)') });
const Token = z.object({ token: z.string().min(10).max(600) });

const messageDto = (m: { id: string; event?: string | null; subject: string; body: string; createdAt: Date; readAt?: Date | null }) => ({ id: m.id, event: m.event ?? null, subject: m.subject, body: m.body, created_at: m.createdAt.toISOString(), read_at: m.readAt?.toISOString() ?? null });

const page = (title: string, inner: string) => `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body style="font-family:sans-serif;max-width:40em;margin:3em auto"><h2>${escapeHtml(title)}</h2>${inner}</body></html>`;

export function notificationRoutes(deps: AppDeps & AuthDeps & { roleCache: RoleCache; slackSigningSecret?: string }, registry: OpenAPIRegistry): Router {
  const r = Router();
  const emit = createEmitter({ em: deps.em, vault: deps.vault, logger: deps.logger, mailer: deps.identity.mailer, mailFrom: deps.identity.mailFrom, publicBaseUrl: () => deps.identity.publicBaseUrl });
  const audit = async (actor: string, action: string, targetId: string, req: { ip?: string; requestId: string }, detail?: Record<string, unknown>) => {
    const em = deps.em.fork();
    recordAudit(em, { actor, action, targetType: 'notification', targetId, ip: req.ip, requestId: req.requestId, detail });
    await em.flush();
  };

  // ---- in-app inbox (every user, their own messages) ----
  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/messages', tags, permission: 'authenticated', summary: 'My in-app messages, newest first (?unread=true)',
    query: PageQuery.extend({ unread: z.enum(['true', 'false']).optional() }), response: z.object({ items: z.array(Message), total: z.number(), page: z.number(), page_size: z.number(), pages: z.number() }),
    handler: async ({ query, user }) => {
      const where = { channel: 'inbox' as const, userId: user!.id, status: 'sent' as const, ...(query.unread === 'true' ? { readAt: null } : {}) };
      const [rows, total] = await deps.em.fork().findAndCount(NotificationSchema, where, { orderBy: { createdAt: 'desc', id: 'desc' }, ...pageOffsets(query) });
      return pageResult(rows.map(messageDto), total, query);
    },
  });
  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/messages/unread-count', tags, permission: 'authenticated', summary: 'How many of my in-app messages are unread',
    response: z.object({ unread: z.number().int() }),
    handler: async ({ user }) => ({ unread: await deps.em.fork().count(NotificationSchema, { channel: 'inbox', userId: user!.id, status: 'sent', readAt: null }) }),
  });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/messages/read-all', tags, permission: 'authenticated', summary: 'Mark all my in-app messages read',
    response: z.object({ marked: z.number().int() }),
    handler: async ({ user }) => ({ marked: await deps.em.fork().nativeUpdate(NotificationSchema, { channel: 'inbox', userId: user!.id, readAt: null }, { readAt: new Date() }) }),
  });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/messages/:id/read', tags, permission: 'authenticated', params: Id, summary: 'Mark one of my in-app messages read', response: Message,
    handler: async ({ params, user }) => {
      const em = deps.em.fork();
      const m = await em.findOne(NotificationSchema, { id: params.id, channel: 'inbox', userId: user!.id });
      if (!m) throw notFound('message');
      m.readAt ??= new Date();
      await em.flush();
      return messageDto(m);
    },
  });
  defineRoute(r, registry, {
    method: 'put', path: '/api/v1/messages/preferences', tags, permission: 'authenticated', summary: 'My message language (zh-CN or en)',
    body: z.object({ language: Language }), response: z.object({ language: z.string() }),
    handler: async ({ body, user }) => {
      await deps.em.fork().getConnection().execute('insert into notification_preferences (user_id, language, updated_at) values (?, ?, now()) on conflict (user_id) do update set language = excluded.language, updated_at = now()', [user!.id, body.language]);
      return { language: body.language };
    },
  });

  // ---- catalogue, send log, statistics ----
  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/notifications/events', tags, permission: 'notification.read', summary: 'The event catalogue: every event, its variables and built-in texts',
    response: z.object({ items: z.array(z.object({ event: z.string(), vars: z.array(z.string()), dates: z.array(z.string()), text: z.record(z.string(), z.array(z.string())) })) }),
    handler: async () => ({ items: EVENT_NAMES.map((e) => { const d = EVENTS[e] as EventDef; return { event: e, vars: templateVarsOf(d), dates: [...(d.dates ?? [])], text: Object.fromEntries(Object.entries(d.text).map(([k, v]) => [k, [...v]])) }; }) }),
  });
  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/notifications/log', tags, permission: 'notification.read', summary: 'The send log: every message, its status, attempts and provider answer',
    query: PageQuery.extend({ event: z.string().max(100).optional(), channel: Channel.optional(), status: z.enum(['queued', 'sent', 'failed', 'suppressed']).optional(), event_key: z.string().max(200).optional(), with_attempts: z.enum(['true', 'false']).optional() }),
    response: z.object({ items: z.array(LogEntry), total: z.number(), page: z.number(), page_size: z.number(), pages: z.number() }),
    handler: async ({ query }) => {
      const em = deps.em.fork();
      const where = { ...(query.event ? { event: query.event } : {}), ...(query.channel ? { channel: query.channel } : {}), ...(query.status ? { status: query.status } : {}), ...(query.event_key ? { eventKey: { $like: `${query.event_key}%` } } : {}) };
      const [rows, total] = await em.findAndCount(NotificationSchema, where, { orderBy: { createdAt: 'desc', id: 'desc' }, ...pageOffsets(query) });
      const attempts = query.with_attempts === 'true' && rows.length ? await em.find(NotificationAttemptSchema, { notificationId: { $in: rows.map((x) => x.id) } }, { orderBy: { at: 'asc' } }) : [];
      return pageResult(rows.map((n) => ({
        id: n.id, event: n.event ?? null, event_key: n.eventKey, recipient: n.recipient, channel: n.channel, status: n.status, detail: n.detail ?? null, attempts: n.attempts, duplicates: n.duplicates,
        language: n.language, template_version: n.templateVersion, provider_response: n.providerResponse ?? null, latency_ms: n.latencyMs ?? null, created_at: n.createdAt.toISOString(), sent_at: n.sentAt?.toISOString() ?? null,
        ...(query.with_attempts === 'true' ? { log: attempts.filter((a) => a.notificationId === n.id).map((a) => ({ attempt: a.attempt, status: a.status, response: a.response ?? null, latency_ms: a.latencyMs ?? null, at: a.at.toISOString() })) } : {}),
      })), total, query);
    },
  });
  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/notifications/stats', tags, permission: 'notification.read', summary: 'Delivery statistics per channel and event: sent, failed, retry rate, p50/p95 latency',
    query: z.object({ since: z.string().datetime().optional() }), response: Stats,
    handler: async ({ query }) => {
      const since = query.since ? new Date(query.since) : new Date(Date.now() - 7 * 86_400_000);
      return { since: since.toISOString(), items: await deliveryStats(deps, since) };
    },
  });

  // ---- endpoints ----
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/notifications/endpoints', tags, permission: 'notification.manage', status: 201, body: EndpointCreate, response: EndpointCreated,
    summary: 'Add a webhook, Slack channel or DingTalk / WeCom / Feishu robot (its URL and secret are stored encrypted, never returned)',
    handler: async ({ body, user, req }) => {
      const { endpoint, generatedSecret } = await createEndpoint(deps, body);
      await audit(user!.username, 'notification.endpoint.create', endpoint.id, req, { name: endpoint.name, kind: endpoint.kind });
      return { ...endpointDto(endpoint), ...(generatedSecret ? { secret: generatedSecret } : {}) };
    },
  });
  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/notifications/endpoints', tags, permission: 'notification.read', summary: 'Notification endpoints (no secrets)', response: z.object({ items: z.array(Endpoint) }),
    handler: async () => ({ items: (await deps.em.fork().find(NotificationEndpointSchema, {}, { orderBy: { name: 'asc' } })).map(endpointDto) }),
  });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/notifications/endpoints/:id/rotate-secret', tags, permission: 'notification.manage', params: Id, body: RotateSecret, response: EndpointCreated,
    summary: 'Rotate an endpoint secret (the previous one keeps signing for grace_hours); a generated secret is shown once',
    handler: async ({ params, body, user, req }) => {
      const { endpoint, generatedSecret } = await rotateEndpointSecret(deps, params.id, body);
      await audit(user!.username, 'notification.endpoint.rotate', endpoint.id, req, { grace_hours: body.grace_hours });
      return { ...endpointDto(endpoint), ...(generatedSecret ? { secret: generatedSecret } : {}) };
    },
  });
  defineRoute(r, registry, {
    method: 'delete', path: '/api/v1/notifications/endpoints/:id', tags, permission: 'notification.manage', params: Id, response: Endpoint, summary: 'Delete an endpoint and its subscriptions',
    handler: async ({ params, user, req }) => {
      const e = await deleteEndpoint(deps, params.id);
      await audit(user!.username, 'notification.endpoint.delete', params.id, req, { name: e.name });
      return endpointDto(e);
    },
  });

  // ---- subscriptions ----
  const subDto = (s: { id: string; event: string; channel: string; subjectType: string; subjectId: string; createdAt: Date }) => ({ id: s.id, event: s.event, channel: s.channel, subject_type: s.subjectType, subject_id: s.subjectId, created_at: s.createdAt.toISOString() });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/notifications/subscriptions', tags, permission: 'notification.manage', status: 201, body: SubscriptionCreate, response: Subscription,
    summary: 'Subscribe a user, a role, a customer\'s contacts or an endpoint to an event (or *) on a channel',
    handler: async ({ body, user, req }) => {
      const s = await createSubscription(deps, body);
      await audit(user!.username, 'notification.subscription.create', s.id, req, body);
      return subDto(s);
    },
  });
  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/notifications/subscriptions', tags, permission: 'notification.read', summary: 'Subscriptions', response: z.object({ items: z.array(Subscription) }),
    handler: async () => ({ items: (await deps.em.fork().find(NotificationSubscriptionSchema, {}, { orderBy: { createdAt: 'asc' } })).map(subDto) }),
  });
  defineRoute(r, registry, {
    method: 'delete', path: '/api/v1/notifications/subscriptions/:id', tags, permission: 'notification.manage', params: Id, response: Subscription, summary: 'Remove a subscription',
    handler: async ({ params, user, req }) => {
      const em = deps.em.fork();
      const s = await em.findOne(NotificationSubscriptionSchema, { id: params.id });
      if (!s) throw notFound('subscription');
      em.remove(s);
      await em.flush();
      await audit(user!.username, 'notification.subscription.delete', params.id, req);
      return subDto(s);
    },
  });

  // ---- templates ----
  const tplDto = (t: { id: string; event: string; channel: string; language: string; version: number; subject: string; body: string; createdBy?: string | null; createdAt: Date }) => ({ id: t.id, event: t.event, channel: t.channel, language: t.language, version: t.version, subject: t.subject, body: t.body, created_by: t.createdBy ?? null, created_at: t.createdAt.toISOString() });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/notifications/templates', tags, permission: 'notification.manage', status: 201, body: TemplateCreate, response: Template,
    summary: 'Save a new template version for event × channel × language (checked: only the event\'s variables; messages already queued keep their version)',
    handler: async ({ body, user, req }) => {
      const t = await createTemplateVersion(deps, body, user!.username);
      await audit(user!.username, 'notification.template.create', t.id, req, { event: t.event, channel: t.channel, language: t.language, version: t.version });
      return tplDto(t);
    },
  });
  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/notifications/templates', tags, permission: 'notification.read', summary: 'Stored template versions (built-in texts: GET /notifications/events)',
    query: z.object({ event: z.string().max(100).optional() }), response: z.object({ items: z.array(Template) }),
    handler: async ({ query }) => ({ items: (await deps.em.fork().find(NotificationTemplateSchema, query.event ? { event: query.event } : {}, { orderBy: { event: 'asc', channel: 'asc', language: 'asc', version: 'desc' } })).map(tplDto) }),
  });

  // ---- test ----
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/notifications/test', tags, permission: 'notification.manage', body: TestSend,
    response: z.object({ event_key: z.string(), messages: z.number().int(), sent: z.number().int(), suppressed: z.number().int(), failed: z.number().int() }),
    summary: 'Send the notification.test event to a user (email + inbox) and to every endpoint subscribed to it',
    handler: async ({ body, user }) => {
      const to = body.user_id ?? user!.id;
      if (body.user_id && !(await deps.em.fork().count(UserSchema, { id: body.user_id }))) throw validationError([{ field: 'user_id', message: 'no user with this id' }]);
      const key = `notification-test/${Date.now()}/${to}`;
      const res = await emit({ event: 'notification.test', key, to: { userIds: [to] }, data: { by: user!.username, note: body.note } });
      return { event_key: key, messages: res.messages ?? 0, sent: res.sent ?? 0, suppressed: res.suppressed ?? 0, failed: res.failed ?? 0 };
    },
  });

  // ---- unsubscribe (public, signed link; GET only shows a page, POST changes) ----
  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/notifications/unsubscribe', tags, permission: 'public', query: Token, response: z.string(),
    rawResponse: { contentTypes: { 'text/html': z.string() } }, summary: 'Unsubscribe confirmation page (from the signed link in an email)',
    handler: async ({ query, res }) => {
      await readUnsubscribe(deps, query.token); // a bad link is a 400, before any page
      res.type('html').send(page('Unsubscribe', `<form method="post"><input type="hidden" name="token" value="${escapeHtml(query.token)}"><p>Stop receiving these emails?</p><button type="submit">Unsubscribe</button></form>`));
      return '';
    },
  });
  r.use('/api/v1/notifications/unsubscribe', express.urlencoded({ extended: false, limit: '10kb' }));
  r.use('/api/v1/notifications/actions', express.urlencoded({ extended: false, limit: '10kb' }));
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/notifications/unsubscribe', tags, permission: 'public', query: z.object({ token: z.string().max(600).optional() }),
    response: z.object({ recipient: z.string(), event: z.string(), channel: z.string() }),
    summary: 'Unsubscribe (RFC 8058 one-click POST, or the confirmation form): the token is the signed link',
    handler: async ({ query, req }) => {
      const token = query.token ?? (req.body as { token?: string } | undefined)?.token;
      if (!token) throw validationError([{ field: 'token', message: 'required' }]);
      const out = await unsubscribe(deps, token);
      await audit('system:unsubscribe', 'notification.unsubscribe', out.event, req, out);
      return out;
    },
  });

  // ---- decisions from a message ----
  defineRoute(r, registry, {
    method: 'get', path: '/api/v1/notifications/actions/:token', tags, permission: 'public', params: Token, response: z.string(),
    rawResponse: { contentTypes: { 'text/html': z.string() } }, summary: 'Confirmation page of an approve / reject link from an email (GET never changes anything)',
    handler: async ({ params, res }) => {
      const p = await useActionLink(deps, params.token, { consume: false });
      const reason = p.a === 'reject' ? '<p><label>Reason <input name="reason" required maxlength="500"></label></p>' : '';
      res.type('html').send(page(p.a === 'approve' ? 'Approve the account request?' : 'Reject the account request?', `<p>Request ${escapeHtml(p.r)}</p><form method="post">${reason}<button type="submit">${p.a === 'approve' ? 'Approve' : 'Reject'}</button></form>`));
      return '';
    },
  });
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/notifications/actions/:token', tags, permission: 'public', params: Token, body: z.object({ reason: z.string().max(1000).optional() }),
    response: z.object({ request_id: z.string(), status: z.string(), decided_by: z.string().nullable() }),
    summary: 'Carry out an approve / reject link (signed, single-use, expiring with the request, only for the approver it was sent to)',
    handler: async ({ params, body, req }) => {
      const p = await useActionLink(deps, params.token, { consume: false });
      const principal = await principalOfUser(deps, p.u);
      if (!principal) throw unauthenticated('the approver this link was sent to no longer exists or is disabled');
      if (p.a === 'reject' && !body.reason?.trim()) throw validationError([{ field: 'reason', message: 'a reason is required to reject' }]);
      await useActionLink(deps, params.token, { consume: true });
      const state = await decideAccountOpening(deps, { principal, requestId: p.r, kind: p.a, reason: body.reason, via: 'email-link', ip: req.ip, requestIdHeader: req.requestId });
      return { request_id: p.r, status: state.phase, decided_by: state.decidedBy ?? null };
    },
  });

  // ---- Slack interactivity (Approve / Reject buttons) ----
  r.use('/api/v1/integrations/slack/actions', express.raw({ type: 'application/x-www-form-urlencoded', limit: '100kb' }));
  defineRoute(r, registry, {
    method: 'post', path: '/api/v1/integrations/slack/actions', tags, permission: 'public', response: z.object({ ok: z.boolean(), text: z.string() }),
    errors: { 401: 'Signature or timestamp does not verify (40101)' },
    summary: "Slack's interactivity callback: verified with the signing secret (v0, 5-minute window), the Slack user mapped to a platform user by email",
    handler: async ({ req }) => {
      if (!deps.slackSigningSecret) throw conflict('Slack interactivity is not configured (SLACK_SIGNING_SECRET)');
      const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
      verifySlackSignature(deps.slackSigningSecret, { timestamp: req.header('x-slack-request-timestamp'), signature: req.header('x-slack-signature') }, raw);
      return handleSlackAction(deps, raw, { ip: req.ip, requestId: req.requestId });
    },
  });
  return r;
}
