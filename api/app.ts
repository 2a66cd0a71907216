import express, { type Express, type RequestHandler, type Router } from 'express';
import compression from 'compression';
import { identityDefaults, type AppDeps, type AuthDeps } from './deps.js';
import { OpenAPIRegistry } from './openapi.js';
import { authenticate } from './middleware/auth.js';
import { errorHandler, methodNotAllowed, notFoundHandler, requestId } from './middleware/errors.js';
import { systemRoutes } from './routes/system/handler.js';
import { hostRoutes } from './routes/hosts/handler.js';
import { commandRecordRoutes } from './routes/command-records/handler.js';
import { remoteRoutes } from './routes/remote/handler.js';
import { remoteSessionRoutes } from './routes/remote/sessions.js';
import { createEmitter } from '../activities/notify/notify.activities.js';
import { DEFAULT_TERMINAL_SETTINGS, TerminalService } from './remote/terminal.js';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { accountOpeningRoutes } from './routes/account-openings/handler.js';
import { cloudUserRoutes } from './routes/cloud-users/handler.js';
import { userRoutes } from './routes/users/handler.js';
import { authRoutes, sessionRoutes } from './routes/auth/handler.js';
import { apiKeyRoutes } from './routes/api-keys/handler.js';
import { onboardingRoutes } from './routes/onboarding/handler.js';
import { hostGroupRoutes } from './routes/host-groups/handler.js';
import { envTemplateRoutes } from './routes/env-templates/handler.js';
import { customerRoutes } from './routes/customers/handler.js';
import { sshKeyRoutes } from './routes/ssh-keys/handler.js';
import { allocationRoutes } from './routes/allocations/handler.js';
import { departmentRoutes } from './routes/departments/handler.js';
import { registrationRoutes } from './routes/registrations/handler.js';
import { roleGrantRoutes } from './routes/role-grants/handler.js';
import { roleRoutes } from './routes/roles/handler.js';
import { RoleCache } from './authz/principal.js';
import { routeTableOf, type AuthzContext, type RouteEntry } from './route.js';
import { auditRoutes } from './routes/audit/handler.js';
import { notificationRoutes } from './routes/notifications/handler.js';
import { auditRequests } from './middleware/audit.js';
import { serveConsole } from './middleware/console.js';
import { httpMetrics, metricsEndpoint, requestLog } from './middleware/metrics.js';
import { registerDbPoolGauges } from '../config/metrics.js';
import { PgliteConnection } from '@mikro-orm/pglite';
import { httpTracing } from './middleware/tracing.js';
import { CODEC_PATH, codecCors, temporalCodecRoutes } from './routes/temporal/handler.js';
import { codecCookieAuth } from './routes/temporal/codec-cookie.js';
import { DEFAULT_SECURITY_RULES } from '../db/audit/security-rules.js';

/**
 * A domain router behind a guard that skips it unless the path starts with one of its routes'
 * literal prefixes (`/api/v1/hosts` for `/api/v1/hosts/:id`): a request then runs the route
 * patterns of its own domain only, not those of the ~20 routers registered before it. A router
 * with a path-less middleware (which sees every request) is mounted as it is.
 */
function onlyItsPaths(router: Router): RequestHandler {
  const stack = (router as unknown as { stack: Array<{ route?: { path?: unknown } }> }).stack;
  let prefixes: string[] | null | undefined;
  const compute = () => {
    const out = new Set<string>();
    for (const layer of stack) {
      const path = layer.route?.path;
      if (typeof path !== 'string') return null;
      const literal: string[] = [];
      for (const seg of path.split('/').slice(1, 4)) {
        if (/[:*?(){}]/.test(seg)) break;
        literal.push(seg);
      }
      out.add(`/${literal.join('/')}`.toLowerCase());
    }
    return [...out];
  };
  return (req, res, next) => {
    if (prefixes === undefined) prefixes = compute();
    if (prefixes) {
      const path = req.path.toLowerCase(); // Express matches routes case-insensitively
      if (!prefixes.some((p) => path === p || path.startsWith(p === '/' ? p : `${p}/`))) return next();
    }
    router(req, res, next);
  };
}

/** Builds the HTTP API. No listen, no globals: tests build it directly with real dependencies. */
export function createApp(appDeps: AppDeps): Express {
  const roleCache = appDeps.roleCache ?? new RoleCache(appDeps.em);
  const deps: AppDeps & AuthDeps & { roleCache: RoleCache } = { ...appDeps, identity: appDeps.identity ?? identityDefaults(), roleCache };
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.set('query parser', 'simple');
  const registry = new OpenAPIRegistry();
  const authz: AuthzContext = { em: deps.em, roles: roleCache };
  app.locals.authz = authz;

  app.use(requestId);
  app.use(httpTracing());
  // gzip/brotli for JSON, index.html and anything else compressible over 1 KiB, as the client
  // accepts (brotli at quality 4: cheap enough per request). The console's hashed assets come
  // precompressed from the build (api/middleware/console.ts) and are passed through untouched.
  // Streaming answers (server-sent events) call res.flush() after each event.
  // Only for clients that accept an encoding (browsers do; curl, the CLI and scripts usually don't):
  // compression answers those with identity anyway, but wraps every response on the way.
  const compress = compression();
  app.use((req, res, next) => (req.headers['accept-encoding'] ? compress(req, res, next) : next()));
  app.use(httpMetrics());
  app.use(requestLog(deps.logger));
  // Before authentication: a scraper's Bearer is the scrape token, not a user credential.
  const conn = () => deps.em.getConnection();
  registerDbPoolGauges(() => conn().getNativeClient(), () => (conn() instanceof PgliteConnection ? 'pglite' : 'postgresql'));
  app.get('/metrics', metricsEndpoint(deps.metrics ?? {}));
  // The Web UI calls the codec from its own origin: CORS (and preflight) before authentication.
  app.use(CODEC_PATH, codecCors(deps.codec?.corsOrigins ?? []));
  // Before authentication, so refused (401) requests are recorded too; it reads req.user lazily.
  app.use(auditRequests({ em: deps.em, logger: deps.logger, securityRules: deps.securityRules ?? DEFAULT_SECURITY_RULES }));
  app.use(express.json({ limit: '5mb' }));
  // The Web UI's codec cookie (only from a UI origin, only on decode/encode); Bearer wins when sent.
  app.use(CODEC_PATH, codecCookieAuth(deps, deps.codec?.corsOrigins ?? []));
  app.use(authenticate(deps));
  app.use(methodNotAllowed(registry));

  app.use(onlyItsPaths(authRoutes(deps, registry)));
  app.use(onlyItsPaths(sessionRoutes(deps, registry)));
  app.use(onlyItsPaths(apiKeyRoutes(deps, registry)));
  app.use(onlyItsPaths(userRoutes(deps, registry)));
  // Onboarding first: `/hosts/onboard` must not be taken for `/hosts/:id`.
  app.use(onlyItsPaths(onboardingRoutes(deps, registry)));
  app.use(onlyItsPaths(hostRoutes(deps, registry)));
  app.use(onlyItsPaths(commandRecordRoutes(deps, registry)));
  app.use(onlyItsPaths(remoteRoutes(deps, registry)));
  const notifyTenant = createEmitter({ em: deps.em, vault: deps.vault, logger: deps.logger, mailer: deps.identity.mailer, mailFrom: deps.identity.mailFrom, publicBaseUrl: () => deps.identity.publicBaseUrl });
  const terminal = new TerminalService({ ...deps, notify: notifyTenant }, { ...DEFAULT_TERMINAL_SETTINGS, recordingDir: join(tmpdir(), 'hostflow-recordings'), ...appDeps.terminal });
  app.locals.terminal = terminal;
  app.use(onlyItsPaths(remoteSessionRoutes(deps, registry, terminal)));
  // The terminal's WebSocket needs the HTTP server: every server app.listen creates gets it.
  const listen = app.listen.bind(app) as (...a: unknown[]) => Server;
  app.listen = ((...a: unknown[]) => {
    const server = listen(...a);
    terminal.attach(server);
    server.on('close', () => void terminal.close());
    return server;
  }) as typeof app.listen;
  app.use(onlyItsPaths(hostGroupRoutes(deps, registry)));
  app.use(onlyItsPaths(envTemplateRoutes(deps, registry)));
  app.use(onlyItsPaths(accountOpeningRoutes(deps, registry)));
  app.use(onlyItsPaths(cloudUserRoutes(deps, registry)));
  app.use(onlyItsPaths(customerRoutes(deps, registry)));
  app.use(onlyItsPaths(sshKeyRoutes(deps, registry)));
  app.use(onlyItsPaths(allocationRoutes(deps, registry)));
  // Departments first: `/registrations/departments` must not be taken for `/registrations/:id`.
  app.use(onlyItsPaths(departmentRoutes(deps, registry)));
  app.use(onlyItsPaths(registrationRoutes(deps, registry)));
  app.use(onlyItsPaths(roleGrantRoutes(deps, registry)));
  app.use(onlyItsPaths(roleRoutes(deps, registry, authz.roles)));
  app.use(onlyItsPaths(auditRoutes(deps, registry)));
  app.use(onlyItsPaths(notificationRoutes({ ...deps, slackSigningSecret: deps.slackSigningSecret }, registry)));
  app.use(onlyItsPaths(temporalCodecRoutes(deps, registry)));
  // Registered last so the OpenAPI document sees every route above.
  app.use(onlyItsPaths(systemRoutes(deps, registry)));

  app.locals.routeTable = routeTableOf(registry);
  // The console (web/dist) at `/`, after every API route so it never shadows one.
  if (deps.console) app.use(serveConsole(deps.console));

  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}

/** Every route declared with defineRoute in this app, with the permission it needs (the matrix test and docs:permissions read it). */
export const routeTable = (app: Express): RouteEntry[] => app.locals.routeTable as RouteEntry[];
