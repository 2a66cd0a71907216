import { Router } from 'express';
import { existsSync } from 'node:fs';
import type { AppDeps } from '../../deps.js';
import { z, type OpenAPIRegistry } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import type { Scope } from '../../authz/scope.js';
import { conflict, notFound, validationError } from '../../errors.js';
import { recordAudit } from '../../../db/audit.js';
import { restartVnc, revealVncPassword, resetVncPassword, vncStatus, type VncAllocation } from './service.js';
import { AllocationSchema, HostSchema, RemoteAccessSchema, RemoteSessionSchema, VncServiceSchema, REMOTE_SESSION_STATUSES, REMOTE_SESSION_PROTOCOLS, VNC_SERVICE_STATUSES, type RemoteSession } from '../../../db/entities/index.js';
import { TransferError, type TerminalService, type TransferCaller } from '../../remote/terminal.js';
import { readRecording } from '../../remote/recording.js';
import { allocationRdpFile } from '../../../db/connection-summary.js';

const Id = z.object({ id: z.string().uuid('must be an id (uuid)') });
const FileQuery = z.object({
  path: z
    .string()
    .min(1, 'required')
    // 1,024 characters: percent-encoded, a longer path can exceed Node's 16 KiB request-header
    // limit and be answered 431 before the API sees it.
    .max(1024, 'at most 1024 characters')
    .refine((v) => !v.includes('\u0000') && !v.endsWith('/'), 'must be a file path (relative paths are under the home directory)'),
});
const Transferred = z.object({ path: z.string(), bytes: z.number() }).openapi('FileTransfer');
const Ticket = z.object({ ticket: z.string(), expires_in_ms: z.number(), path: z.string(), protocols: z.array(z.string()) }).openapi('TerminalTicket');
const SessionDto = z
  .object({
    id: z.string(),
    user_id: z.string(),
    username: z.string(),
    staff: z.boolean(),
    allocation_id: z.string().nullable(),
    host_id: z.string(),
    host_slug: z.string().nullable(),
    os_username: z.string(),
    protocol: z.enum(REMOTE_SESSION_PROTOCOLS),
    source_ip: z.string().nullable(),
    status: z.enum(REMOTE_SESSION_STATUSES),
    started_at: z.string(),
    last_activity_at: z.string(),
    ended_at: z.string().nullable(),
    end_reason: z.string().nullable(),
    bytes_sent: z.number(),
    bytes_received: z.number(),
    recording: z.string().nullable(),
  })
  .openapi('RemoteSession');
const ListQuery = z.object({
  status: z.enum(REMOTE_SESSION_STATUSES).optional(),
  live: z.enum(['true', 'false']).optional(),
  user_id: z.string().uuid().optional(),
  host_id: z.string().uuid().optional(),
  protocol: z.enum(REMOTE_SESSION_PROTOCOLS).optional(),
  page: z.coerce.number().int().min(1).default(1),
  page_size: z.coerce.number().int().min(1).max(200).default(50),
});
const SessionList = z.object({ items: z.array(SessionDto), total: z.number(), page: z.number(), page_size: z.number(), pages: z.number(), by_protocol: z.record(z.string(), z.number()) }).openapi('RemoteSessionList');

const dto = (s: RemoteSession, slugs: Map<string, string> = new Map()) => ({
  id: s.id,
  user_id: s.userId,
  username: s.username,
  staff: s.staff,
  allocation_id: s.allocationId ?? null,
  host_id: s.hostId,
  host_slug: slugs.get(s.hostId) ?? null,
  os_username: s.osUsername,
  protocol: s.protocol,
  source_ip: s.sourceIp ?? null,
  status: s.status,
  started_at: s.startedAt.toISOString(),
  last_activity_at: s.lastActivityAt.toISOString(),
  ended_at: s.endedAt?.toISOString() ?? null,
  end_reason: s.endReason ?? null,
  bytes_sent: Number(s.bytesSent),
  bytes_received: Number(s.bytesReceived),
  recording: s.recordingPath ? `/api/v1/remote-sessions/${s.id}/recording` : null,
});

/** Web terminal tickets, the session list, force-disconnect and recording playback. */
export function remoteSessionRoutes(deps: AppDeps, registry: OpenAPIRegistry, terminal: TerminalService): Router {
  const r = Router();
  const tags = ['remote-sessions'];

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/allocations/:id/terminal/ticket',
    summary:
      'A single-use ticket (30 s) for the web terminal WebSocket: open `ws(s)://<api>/api/v1/terminal?cols=&rows=` with subprotocols `hostflow.terminal` and `ticket.<ticket>`. Members: own allocations; owners: the company\'s; staff with session.connect in scope (announced)',
    tags,
    permission: 'session.connect',
    params: Id,
    response: Ticket,
    handler: async ({ params, principal, scope, req }) => {
      const a = await scope.find(deps.em.fork(), AllocationSchema, { id: params.id }, 'allocation');
      if (!['active', 'buffer'].includes(a.status)) throw conflict(`allocation is ${a.status}; the terminal opens on active allocations`);
      const staff = !principal!.customerId;
      const t = terminal.issueTicket({ userId: principal!.id, username: principal!.username, staff, allocationId: a.id, customerId: typeof a.customer === 'string' ? a.customer : a.customer.id, hostId: typeof a.host === 'string' ? a.host : a.host.id, osUsername: a.osUsername, ip: req.ip ?? null });
      return { ...t, protocols: ['hostflow.terminal', `ticket.${t.ticket}`] };
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/allocations/:id/vnc/ticket',
    summary: "A single-use ticket (30 s) for the VNC WebSocket proxy (noVNC): open `ws(s)://<api>/api/v1/vnc` with subprotocols `binary` and `ticket.<ticket>`; the host's VNC entry (remote access, protocol vnc) or port 5900. Authorized like the terminal",
    tags,
    permission: 'session.connect',
    params: Id,
    response: Ticket,
    handler: async ({ params, principal, scope, req }) => {
      const a = await scope.find(deps.em.fork(), AllocationSchema, { id: params.id }, 'allocation');
      if (!['active', 'buffer'].includes(a.status)) throw conflict(`allocation is ${a.status}; VNC opens on active allocations`);
      const hostId = typeof a.host === 'string' ? a.host : a.host.id;
      // The allocation's own VNC server (auto-deployment) first, else the host's VNC entry, else 5900.
      const own = await deps.em.fork().findOne(VncServiceSchema, { allocationId: a.id, status: 'running' });
      const entry = own?.rfbPort ? null : await deps.em.fork().findOne(RemoteAccessSchema, { host: hostId, protocol: 'vnc' });
      const t = terminal.issueTicket({ kind: 'vnc', targetPort: own?.rfbPort ?? entry?.targetPort ?? 5900, userId: principal!.id, username: principal!.username, staff: !principal!.customerId, allocationId: a.id, customerId: typeof a.customer === 'string' ? a.customer : a.customer.id, hostId, osUsername: a.osUsername, ip: req.ip ?? null });
      return { ...t, protocols: ['binary', `ticket.${t.ticket}`] };
    },
  });

  const vncAllocation = async (id: string, scope: Scope): Promise<VncAllocation> => {
    const a = await scope.find(deps.em.fork(), AllocationSchema, { id }, 'allocation');
    const ref = (x: string | { id: string }) => (typeof x === 'string' ? x : x.id);
    return { id: a.id, status: a.status, hostAccountId: a.hostAccountId ?? null, customerUserId: ref(a.customerUser as string | { id: string }), hostId: ref(a.host as string | { id: string }) };
  };

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/allocations/:id/vnc/password/reveal',
    summary: "VNC auto-deployment: reveal the allocation's VNC password once (the customer user); afterwards it is gone (reset for a new one). With the display, the host's RFB port and the gateway's public address",
    tags,
    permission: 'credential.reveal',
    stepUp: true,
    params: Id,
    response: z.object({ password: z.string(), display: z.number(), rfb_port: z.number(), gateway: z.object({ domain: z.string(), port: z.number() }).nullable(), revealed_at: z.string() }).openapi('VncPasswordReveal'),
    handler: async ({ params, principal, scope, req }) =>
      revealVncPassword(deps, { allocation: await vncAllocation(params.id, scope), userId: principal!.id, actor: principal!.username, ip: req.ip, requestId: req.requestId }),
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/allocations/:id/vnc/password/reset',
    summary: "VNC auto-deployment: a new VNC password, written to the host (the running server takes it at the next connection); the customer user reveals it once. Members: own allocations; owners: the company's; staff in scope",
    tags,
    permission: 'vnc.password_reset',
    params: Id,
    response: z.object({ version: z.number(), workflow_id: z.string() }).openapi('VncPasswordReset'),
    handler: async ({ params, principal, scope, req }) =>
      resetVncPassword(deps, { allocation: await vncAllocation(params.id, scope), actor: principal!.username, ip: req.ip, requestId: req.requestId }),
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/allocations/:id/vnc/restart',
    summary:
      "VNC auto-deployment: (re)start the allocation's VNC server on its host, idempotently (after a host reboot or a crash it does not come back by itself): a running server is left alone (`state: running`), a dead one starts again on its display, or the next free one (`moved`: the gateway is re-synced, same public port). A missing password file gets a new password (`password_rotated`: the customer user reveals it once). One restart at a time per allocation (40901). Members: own allocations; owners: the company's; staff in scope. Audited as allocation.vnc_restart",
    tags,
    permission: 'vnc.restart',
    params: Id,
    response: z
      .object({
        state: z.enum(['running', 'started']),
        display: z.number(),
        rfb_port: z.number(),
        moved: z.boolean(),
        killed_hung: z.boolean(),
        stale_removed: z.number(),
        password_rotated: z.boolean(),
        password_version: z.number(),
        workflow_id: z.string(),
        gateway_sync: z.string().nullable(),
      })
      .openapi('VncRestart'),
    handler: async ({ params, principal, scope, req }) =>
      restartVnc(deps, { allocation: await vncAllocation(params.id, scope), actor: principal!.username, ip: req.ip, requestId: req.requestId }),
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/allocations/:id/vnc',
    summary: "VNC auto-deployment: the allocation's VNC service (status `none` when it was not asked for): display, RFB port, whether a password waits to be revealed, the gateway's public address. No secret",
    tags,
    permission: 'allocation.read',
    params: Id,
    response: z
      .object({
        status: z.enum(['none', ...VNC_SERVICE_STATUSES]),
        display: z.number().nullable(),
        rfb_port: z.number().nullable(),
        password_version: z.number(),
        password_available: z.boolean().openapi({ description: 'A password is stored and not yet revealed (the customer user can reveal it once)' }),
        password_revealed_at: z.string().nullable(),
        gateway: z.object({ domain: z.string(), port: z.number() }).nullable(),
      })
      .openapi('VncStatus'),
    handler: async ({ params, scope }) => vncStatus(deps, await vncAllocation(params.id, scope)),
  });

  /** The caller of a file transfer, authorized like a terminal ticket (scope: own / company's / staff in scope). */
  const transferCaller = async (id: string, principal: { id: string; username: string }, scope: Scope, ip: string | undefined): Promise<TransferCaller> => {
    const a = await scope.find(deps.em.fork(), AllocationSchema, { id }, 'allocation');
    if (!['active', 'buffer'].includes(a.status)) throw conflict(`allocation is ${a.status}; files move on active allocations`);
    return { userId: principal.id, username: principal.username, allocationId: a.id, hostId: typeof a.host === 'string' ? a.host : a.host.id, osUsername: a.osUsername, ip: ip ?? null };
  };
  const refused = (err: unknown) => (err instanceof TransferError ? validationError([{ field: err.field, message: err.message }], err.message) : err);

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/allocations/:id/files',
    summary:
      "Upload a file to the rented host over SFTP (the allocation's terminal key, as the tenant's OS account): the request body is the file's bytes (`application/octet-stream`), `path` the destination (relative = under the home directory). Written under a temporary name and renamed when complete; above the size limit → 40001 `body`. Authorized like the terminal; audited as `remote_session.transfer`",
    tags,
    permission: 'session.connect',
    params: Id,
    query: FileQuery,
    response: Transferred,
    status: 201,
    handler: async ({ params, query, principal, scope, req }) => {
      const caller = await transferCaller(params.id, principal!, scope, req.ip);
      // A JSON body has been parsed away already: the file must come as raw bytes.
      if (req.is('application/json') || req.is('application/x-www-form-urlencoded')) throw validationError([{ field: 'body', message: 'send the file as application/octet-stream' }]);
      const declared = req.headers['content-length'] ? Number(req.headers['content-length']) : undefined;
      return terminal.transfer(caller, { direction: 'upload', path: query.path, source: req, declaredBytes: declared }).catch((err: unknown) => {
        throw refused(err);
      });
    },
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/allocations/:id/files',
    summary: 'Download a file from the rented host over SFTP (as the tenant\'s OS account); above the size limit or not a regular file → 40001 `path`. Authorized like the terminal; audited as `remote_session.transfer`',
    tags,
    permission: 'session.connect',
    params: Id,
    query: FileQuery,
    response: z.string(),
    rawResponse: { description: "the file's bytes", contentTypes: { 'application/octet-stream': z.string() } },
    handler: async ({ params, query, principal, scope, req, res }) => {
      const caller = await transferCaller(params.id, principal!, scope, req.ip);
      await terminal
        .transfer(caller, {
          direction: 'download',
          path: query.path,
          sink: ({ size, name }) => {
            res.setHeader('content-type', 'application/octet-stream');
            res.setHeader('content-length', String(size));
            res.setHeader('content-disposition', `attachment; filename*=UTF-8''${encodeURIComponent(name)}`);
            return res;
          },
        })
        .catch((err: unknown) => {
          if (res.headersSent) return void res.destroy();
          throw refused(err);
        });
      return '';
    },
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/allocations/:id/rdp',
    summary: "A Remote Desktop Connection file (`.rdp`) for the host's published RDP entry (the gateway's public address and port, the tenant's account; the password is prompted, never in the file). 409 when the host publishes no RDP. Authorized like the terminal",
    tags,
    permission: 'session.connect',
    params: Id,
    response: z.string(),
    rawResponse: { description: 'the .rdp file', contentTypes: { 'application/x-rdp': z.string() } },
    handler: async ({ params, scope, res }) => {
      const a = await scope.find(deps.em.fork(), AllocationSchema, { id: params.id }, 'allocation');
      if (!['active', 'buffer'].includes(a.status)) throw conflict(`allocation is ${a.status}; RDP opens on active allocations`);
      const f = await allocationRdpFile(deps.em.fork(), a.id);
      if (!f) throw conflict('this host publishes no RDP entry (remote access, protocol rdp)');
      res.setHeader('content-type', 'application/x-rdp');
      res.setHeader('content-disposition', `attachment; filename="${f.name.replace(/[^\w.-]/g, '_')}"`);
      res.send(f.text);
      return '';
    },
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/remote-sessions',
    summary: 'Remote sessions (web terminal, VNC), newest first, with counts by protocol; `live=true` = active or idle',
    tags,
    permission: 'remote_session.manage',
    query: ListQuery,
    response: SessionList,
    handler: async ({ query, scope }) => {
      const where: Record<string, unknown> = {};
      if (query.status) where.status = query.status;
      if (query.live === 'true') where.status = { $in: ['active', 'idle'] };
      if (query.user_id) where.userId = query.user_id;
      if (query.host_id) where.hostId = query.host_id;
      if (query.protocol) where.protocol = query.protocol;
      const em = deps.em.fork();
      const [items, total] = await em.findAndCount(RemoteSessionSchema, (await scope.where(em, RemoteSessionSchema, where)) as never, { orderBy: { startedAt: 'desc' }, limit: query.page_size, offset: (query.page - 1) * query.page_size });
      const live = await em.find(RemoteSessionSchema, (await scope.where(em, RemoteSessionSchema, { status: { $in: ['active', 'idle'] } })) as never, { fields: ['protocol'] });
      const counts = [...live.reduce((m, s) => m.set(s.protocol, (m.get(s.protocol) ?? 0) + 1), new Map<string, number>())].map(([protocol, n]) => ({ protocol, n }));
      const hosts = items.length ? await em.find(HostSchema, { id: { $in: [...new Set(items.map((i) => i.hostId))] } }, { fields: ['id', 'slug'] }) : [];
      const slugs = new Map(hosts.map((h) => [h.id, h.slug]));
      return { items: items.map((i) => dto(i, slugs)), total, page: query.page, page_size: query.page_size, pages: Math.ceil(total / query.page_size), by_protocol: Object.fromEntries(counts.map((c) => [c.protocol, Number(c.n)])) };
    },
  });

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/remote-sessions/:id/terminate',
    summary: 'Force-disconnect a live session: its WebSocket and SSH channel close within a second (on whichever API process holds it); audited',
    tags,
    permission: 'remote_session.manage',
    params: Id,
    response: SessionDto,
    handler: async ({ params, user, req, scope }) => {
      const em = deps.em.fork();
      const s = await scope.find(em, RemoteSessionSchema, { id: params.id }, 'remote session');
      if (s.endedAt) throw conflict(`session already ended (${s.endReason ?? s.status})`);
      await em.nativeUpdate(RemoteSessionSchema, { id: s.id }, { terminateRequestedAt: new Date(), terminateReason: 'admin_force' });
      recordAudit(em, { actor: user!.username, action: 'remote_session.terminate', targetType: 'remote_session', targetId: s.id, ip: req.ip, requestId: req.requestId, detail: { user: s.username, host: s.hostId } });
      await em.flush();
      await terminal.terminateLocal(s.id, 'admin_force');
      return dto((await deps.em.fork().findOneOrFail(RemoteSessionSchema, { id: s.id })));
    },
  });

  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/remote-sessions/:id/recording',
    summary: 'The session recording as asciicast v2 (decrypted and decompressed; for asciinema-player)',
    tags,
    permission: 'remote_session.manage',
    params: Id,
    response: z.string(),
    rawResponse: { description: 'asciicast v2: a header line, then [time, "o"|"i"|"r", data] events', contentTypes: { 'application/x-asciicast': z.string() } },
    handler: async ({ params, res, user, req, scope }) => {
      const s = await deps.em.fork().findOne(RemoteSessionSchema, (await scope.where(deps.em.fork(), RemoteSessionSchema, { id: params.id })) as never);
      if (!s || !s.recordingPath || !existsSync(s.recordingPath)) throw notFound('recording');
      const text = await readRecording(deps.vault, s.recordingPath, s.id);
      const em = deps.em.fork();
      recordAudit(em, { actor: user!.username, action: 'remote_session.recording.play', targetType: 'remote_session', targetId: s.id, ip: req.ip, requestId: req.requestId });
      await em.flush();
      res.setHeader('content-type', 'application/x-asciicast');
      res.send(text);
      return '';
    },
  });
  return r;
}
