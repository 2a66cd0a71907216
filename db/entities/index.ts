export * from './host.entity.js';
export * from './host-credential.entity.js';
export * from './user.entity.js';
export * from './audit-event.entity.js';
export * from './account-opening-request.entity.js';
export * from './host-account.entity.js';
export * from './notification.entity.js';
export * from './host-group.entity.js';
export * from './env-template.entity.js';
export * from './remote-access.entity.js';
export * from './command-record.entity.js';
export * from './onboarding-step.entity.js';
export * from './customer.entity.js';
export * from './ssh-key.entity.js';
export * from './allocation.entity.js';
export * from './password-token.entity.js';
export * from './department.entity.js';
export * from './registration.entity.js';
export * from './role-grant.entity.js';
export * from './session.entity.js';
export * from './api-key.entity.js';
export * from './login-event.entity.js';
export * from './rate-limit.entity.js';
export * from './password-history.entity.js';
export * from './mfa.entity.js';
export * from './role.entity.js';
export * from './remote-session.entity.js';
export * from './vnc-service.entity.js';
import { HostSchema } from './host.entity.js';
import { HostCredentialSchema } from './host-credential.entity.js';
import { UserSchema } from './user.entity.js';
import { AuditEventSchema, AuditChainSchema, AuditArchiveSchema, SecurityEventSchema } from './audit-event.entity.js';
import { AccountOpeningRequestSchema } from './account-opening-request.entity.js';
import { HostAccountSchema } from './host-account.entity.js';
import { NotificationSchema, NotificationAttemptSchema, NotificationEndpointSchema, NotificationSubscriptionSchema, NotificationTemplateSchema, NotificationUnsubscribeSchema, NotificationPreferenceSchema, NotifySecretSchema, NotifyActionUseSchema } from './notification.entity.js';
import { HostGroupSchema } from './host-group.entity.js';
import { EnvTemplateSchema } from './env-template.entity.js';
import { RemoteAccessSchema } from './remote-access.entity.js';
import { OnboardingStepSchema } from './onboarding-step.entity.js';
import { CustomerSchema } from './customer.entity.js';
import { SshKeySchema } from './ssh-key.entity.js';
import { AllocationSchema, AllocationStepSchema, LeaseEventSchema } from './allocation.entity.js';
import { PasswordTokenSchema } from './password-token.entity.js';
import { DepartmentSchema } from './department.entity.js';
import { RegistrationSchema, RegistrationTokenSchema } from './registration.entity.js';
import { RoleGrantSchema } from './role-grant.entity.js';
import { SessionSchema, RefreshTokenSchema } from './session.entity.js';
import { ApiKeySchema } from './api-key.entity.js';
import { LoginEventSchema, LoginLockSchema } from './login-event.entity.js';
import { RateLimitSchema } from './rate-limit.entity.js';
import { PasswordHistorySchema } from './password-history.entity.js';
import { RecoveryCodeSchema, EmailCodeSchema } from './mfa.entity.js';
import { RoleSchema } from './role.entity.js';
import { CommandRecordSchema } from './command-record.entity.js';
import { RemoteSessionSchema, TerminalKeySchema } from './remote-session.entity.js';
import { VncServiceSchema } from './vnc-service.entity.js';

export const ALL_ENTITIES = [
  VncServiceSchema,
  RemoteSessionSchema,
  TerminalKeySchema,
  HostSchema,
  HostCredentialSchema,
  UserSchema,
  AuditEventSchema,
  AuditChainSchema,
  AuditArchiveSchema,
  SecurityEventSchema,
  AccountOpeningRequestSchema,
  HostAccountSchema,
  NotificationSchema,
  NotificationAttemptSchema,
  NotificationEndpointSchema,
  NotificationSubscriptionSchema,
  NotificationTemplateSchema,
  NotificationUnsubscribeSchema,
  NotificationPreferenceSchema,
  NotifySecretSchema,
  NotifyActionUseSchema,
  HostGroupSchema,
  EnvTemplateSchema,
  RemoteAccessSchema,
  OnboardingStepSchema,
  CustomerSchema,
  SshKeySchema,
  AllocationSchema,
  AllocationStepSchema,
  LeaseEventSchema,
  PasswordTokenSchema,
  DepartmentSchema,
  RegistrationSchema,
  RegistrationTokenSchema,
  RoleGrantSchema,
  SessionSchema,
  RefreshTokenSchema,
  ApiKeySchema,
  LoginEventSchema,
  LoginLockSchema,
  RateLimitSchema,
  PasswordHistorySchema,
  RecoveryCodeSchema,
  EmailCodeSchema,
  RoleSchema,
  CommandRecordSchema,
];
