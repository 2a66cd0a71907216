import { Router } from 'express';
import type { AppDeps } from '../../deps.js';
import { type OpenAPIRegistry, paginated, z } from '../../openapi.js';
import { defineRoute } from '../../route.js';
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

export function registrationRoutes(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  const tags = ['registrations'];
  const rd: RegistrationDeps = { em: deps.em, temporal: deps.temporal, stepDays: deps.settings.registrationStepDays ?? 7 };

  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/registrations',
    summary: 'Register (public): a confirmation link is emailed; then department review and role approval',
    tags,
    auth: 'public',
    body: RegistrationSubmit,
    response: Accepted,
    status: 202,
    handler: ({ body, req }) => submitRegistration(rd, body, req),
  });
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/registrations/verify',
    summary: 'Confirm the email address with the single-use token from the link (public)',
    tags,
    auth: 'public',
    body: VerifyBody,
    response: RegistrationStatusView,
    handler: ({ body, req }) => verifyRegistration(rd, body.token, req),
  });
  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/registrations',
    summary: 'Reviewer queues: department review for departments I administer; role approval for admins',
    tags,
    auth: 'any',
    query: RegistrationListQuery,
    response: paginated(Registration),
    handler: async ({ query, user }) => {
      const [rows, total] = await listRegistrations(rd, user!, { status: query.status, queue: query.queue, ...pageOffsets(query) });
      return pageResult(rows.map(toRegistrationDto), total, query);
    },
  });
  defineRoute(r, registry, {
    method: 'get',
    path: '/api/v1/registrations/:id',
    summary: 'A registration, with the live workflow state (admins and admins of its department)',
    tags,
    auth: 'any',
    params: RegistrationIdParams,
    response: Registration,
    handler: ({ params, user }) => getRegistration(rd, user!, params.id),
  });
  defineRoute(r, registry, {
    method: 'put',
    path: '/api/v1/registrations/:id',
    summary: 'Resubmit after "return for changes", with the single-use token from the email (public)',
    tags,
    auth: 'public',
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
    auth: 'any',
    params: RegistrationIdParams,
    body: DepartmentReviewBody,
    response: Decided,
    handler: ({ params, body, user, req }) => reviewByDepartment(rd, user!, params.id, body, req),
  });
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/registrations/:id/role-approval',
    summary: 'Role approval by a system admin: grant the requested roles or fewer, or reject',
    tags,
    auth: ['admin'],
    params: RegistrationIdParams,
    body: RoleApprovalBody,
    response: Decided,
    handler: ({ params, body, user, req }) => approveRoles(rd, user!, params.id, body, req),
  });
  defineRoute(r, registry, {
    method: 'post',
    path: '/api/v1/invitations',
    summary: 'Invite an email address: the account is created at once and an activation link is emailed',
    tags,
    auth: ['admin'],
    body: InvitationCreate,
    response: Registration,
    status: 201,
    handler: async ({ body, user, req }) => toRegistrationDto(await invite(rd, user!, body, req)),
  });
  return r;
}
