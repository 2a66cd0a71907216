import express, { type Express } from 'express';
import { identityDefaults, type AppDeps, type AuthDeps } from './deps.js';
import { OpenAPIRegistry } from './openapi.js';
import { authenticate } from './middleware/auth.js';
import { errorHandler, methodNotAllowed, notFoundHandler, requestId } from './middleware/errors.js';
import { systemRoutes } from './routes/system/handler.js';
import { hostRoutes } from './routes/hosts/handler.js';
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
import { auditRequests } from './middleware/audit.js';
import { httpMetrics, metricsEndpoint } from './middleware/metrics.js';
import { CODEC_PATH, codecCors, temporalCodecRoutes } from './routes/temporal/handler.js';
import { DEFAULT_SECURITY_RULES } from '../db/audit/security-rules.js';

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
  app.use(httpMetrics());
  // Before authentication: a scraper's Bearer is the scrape token, not a user credential.
  app.get('/metrics', metricsEndpoint(deps.metrics ?? {}));
  // The Web UI calls the codec from its own origin: CORS (and preflight) before authentication.
  app.use(CODEC_PATH, codecCors(deps.codec?.corsOrigins ?? []));
  // Before authentication, so refused (401) requests are recorded too; it reads req.user lazily.
  app.use(auditRequests({ em: deps.em, logger: deps.logger, securityRules: deps.securityRules ?? DEFAULT_SECURITY_RULES }));
  app.use(express.json({ limit: '5mb' }));
  app.use(authenticate(deps));
  app.use(methodNotAllowed(registry));

  app.use(authRoutes(deps, registry));
  app.use(sessionRoutes(deps, registry));
  app.use(apiKeyRoutes(deps, registry));
  app.use(userRoutes(deps, registry));
  // Onboarding first: `/hosts/onboard` must not be taken for `/hosts/:id`.
  app.use(onboardingRoutes(deps, registry));
  app.use(hostRoutes(deps, registry));
  app.use(hostGroupRoutes(deps, registry));
  app.use(envTemplateRoutes(deps, registry));
  app.use(accountOpeningRoutes(deps, registry));
  app.use(cloudUserRoutes(deps, registry));
  app.use(customerRoutes(deps, registry));
  app.use(sshKeyRoutes(deps, registry));
  app.use(allocationRoutes(deps, registry));
  // Departments first: `/registrations/departments` must not be taken for `/registrations/:id`.
  app.use(departmentRoutes(deps, registry));
  app.use(registrationRoutes(deps, registry));
  app.use(roleGrantRoutes(deps, registry));
  app.use(roleRoutes(deps, registry, authz.roles));
  app.use(auditRoutes(deps, registry));
  app.use(temporalCodecRoutes(deps, registry));
  // Registered last so the OpenAPI document sees every route above.
  app.use(systemRoutes(deps, registry));

  app.locals.routeTable = routeTableOf(registry);

  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}

/** Every route declared with defineRoute in this app, with the permission it needs (the matrix test and docs:permissions read it). */
export const routeTable = (app: Express): RouteEntry[] => app.locals.routeTable as RouteEntry[];
