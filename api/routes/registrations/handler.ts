import { Router } from 'express';
import type { AppDeps, AuthDeps } from '../../deps.js';
import { enforceRateLimit } from '../../rate-limit.js';
import { type OpenAPIRegistry, paginated, z } from '../../openapi.js';
import { defineRoute } from '../../route.js';
import type { RoleCache } from '../../authz/principal.js';
import { pageOffsets, pageResult } from '../../pagination.js';
import {
  Accepted,
  DepartmentReviewBody,
  InvitationCreate,
  Registration,
  RegistrationIdParams,
  RegistrationListQuery,
  RegistrationResubmit,
  RegistrationStatusView,
  RegistrationSubmit,
  RoleApprovalBody,
  VerifyBody,
} from './schema.js';
import {
  approveRoles,
  getRegistration,
  invite,
  listRegistrations,
  resubmitRegistration,
  reviewByDepartment,
  submitRegistration,
  toRegistrationDto,
  verifyRegistration,
  type RegistrationDeps,
} from './service.js';

const Decided = z.object({ id: z.string().uuid(), status: z.string() }).openapi('RegistrationDecided');

export function registrationRoutes(deps: AppDeps & AuthDeps & { roleCache: RoleCache }, registry: OpenAPIRegistry): Router {
  const r = Router();
  const tags = ['registrations'];
  const rd: RegistrationDeps = { em: deps.em, temporal: deps.temporal, stepDays: deps.settings.registrationStepDays ?? 7, roles: deps.roleCache };

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/registrations',
    summary: 'Register (public): a confirmation link is emailed; then department review and role approval',
    tags,
    permission: 'public',
    body: RegistrationSubmit,
    response: Accepted,
    status: 202,
    errors: { 429: 'Too many registration submits from this address (42902; Retry-After says when to try again; REGISTRATION_RATE_LIMIT per REGISTRATION_RATE_WINDOW_MINUTES)' },
    handler: async ({ body, req, res }) => {
      const { identity } = deps;
      await enforceRateLimit(deps.em.fork(), res, { bucket: 'registration', subject: req.ip ?? 'unknown', limit: identity.settings.registrationRateLimit, now: identity.clock(), what: 'registration submits' });
      return submitRegistration(rd, body, req);
    },
  });
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/registrations/verify',
    summary: 'Confirm the email address with the single-use token from the link (public)',
    tags,
    permission: 'public',
    body: VerifyBody,
    response: RegistrationStatusView,
    handler: ({ body, req }) => verifyRegistration(rd, body.token, req),
  });
  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/registrations',
    summary: 'Reviewer queues: department review for departments I administer; role approval for holders of registration.approve_roles',
    tags,
    permission: 'authenticated',
    query: RegistrationListQuery,
    response: paginated(Registration),
    handler: async ({ query, principal }) => {
      const [rows, total] = await listRegistrations(rd, principal!, { status: query.status, queue: query.queue, ...pageOffsets(query) });
      return pageResult(rows.map(toRegistrationDto), total, query);
    },
  });
  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/registrations/:id',
    summary: 'A registration, with the live workflow state (holders of registration.approve_roles and admins of its department)',
    tags,
    permission: 'authenticated',
    params: RegistrationIdParams,
    response: Registration,
    handler: ({ params, principal }) => getRegistration(rd, principal!, params.id),
  });
  defineRoute(r, registry, {
    method: 'put',
    path: '/api/v1/registrations/:id',
    summary: 'Resubmit after "return for changes", with the single-use token from the email (public)',
    tags,
    permission: 'public',
    params: RegistrationIdParams,
    body: RegistrationResubmit,
    response: RegistrationStatusView,
    handler: ({ params, body, req }) => resubmitRegistration(rd, params.id, body, req),
  });
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/registrations/:id/department-review',
    summary: 'Department review: approve, reject, or return for changes (an admin of the department; not the applicant)',
    tags,
    permission: 'authenticated',
    params: RegistrationIdParams,
    body: DepartmentReviewBody,
    response: Decided,
    handler: ({ params, body, principal, req }) => reviewByDepartment(rd, principal!, params.id, body, req),
  });
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/registrations/:id/role-approval',
    summary: 'Role approval: grant the requested roles or fewer (never permissions one lacks), or reject',
    tags,
    permission: 'registration.approve_roles',
    params: RegistrationIdParams,
    body: RoleApprovalBody,
    response: Decided,
    handler: ({ params, body, principal, req }) => approveRoles(rd, principal!, params.id, body, req),
  });
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/invitations',
    summary: 'Invite an email address: the account is created at once and an activation link is emailed',
    tags,
    permission: 'registration.approve_roles',
    body: InvitationCreate,
    response: Registration,
    status: 201,
    handler: async ({ body, principal, req }) => toRegistrationDto(await invite(rd, principal!, body, req)),
  });
  return r;
}
