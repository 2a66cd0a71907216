import { Migration20261202110000_host_account_sid } from './Migration20261202110000_host_account_sid.js';
import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261201142000_notify_center } from './Migration20261201142000_notify_center.js';
import { Migration20261201147100_remote_sessions } from './Migration20261201147100_remote_sessions.js';
import { Migration20261201143000_temporal_decode } from './Migration20261201143000_temporal_decode.js';
import { Migration20261201133000_customer_account_openings } from './Migration20261201133000_customer_account_openings.js';
import { Migration20261201110928_departments } from './Migration20261201110928_departments.js';
import { Migration20261201114225_audit_chain } from './Migration20261201114225_audit_chain.js';
import { Migration20261201111008_identity } from './Migration20261201111008_identity.js';
import { Migration20261201113000_host_account_uid } from './Migration20261201113000_host_account_uid.js';
import { Migration20261201120000_roles } from './Migration20261201120000_roles.js';
import { Migration20261201130000_roles_identity } from './Migration20261201130000_roles_identity.js';
import { Migration20261201113722_account_policy } from './Migration20261201113722_account_policy.js';
import { Migration20261201110221_password_tokens } from './Migration20261201110221_password_tokens.js';
import { Migration20261125103511_customers_allocations } from './Migration20261125103511_customers_allocations.js';
import { Migration20261125071214_hosts_onboarding } from './Migration20261125071214_hosts_onboarding.js';
import { Migration20261201147000_port_pool } from './Migration20261201147000_port_pool.js';
import { Migration20261125064752_account_openings } from './Migration20261125064752_account_openings.js';
import { Migration20261125062610 } from './Migration20261125062610.js';
import { Migration20261201140000_command_records } from './Migration20261201140000_command_records.js';
import { Migration20261201145000_winrm_auth } from './Migration20261201145000_winrm_auth.js';
import { Migration20261201175000_pending_passwords } from './Migration20261201175000_pending_passwords.js';
import { Migration20261201170000_rate_limits } from './Migration20261201170000_rate_limits.js';
import { Migration20261201172000_security_alert_delivery } from './Migration20261201172000_security_alert_delivery.js';
import { Migration20261201172100_reminder_policy } from './Migration20261201172100_reminder_policy.js';
import { Migration20261202130000_notify_rate_index } from './Migration20261202130000_notify_rate_index.js';
import { Migration20261202140000_vnc_services } from './Migration20261202140000_vnc_services.js';

/** Every migration, in order. `npm run migration:create` generates one and adds it here. */
export const migrationsList: MigrationObject[] = [
  { name: 'Migration20261125062610', class: Migration20261125062610 },
  { name: 'Migration20261125064752_account_openings', class: Migration20261125064752_account_openings },
  { name: 'Migration20261125071214_hosts_onboarding', class: Migration20261125071214_hosts_onboarding },
  { name: 'Migration20261125103511_customers_allocations', class: Migration20261125103511_customers_allocations },
  { name: 'Migration20261201110221_password_tokens', class: Migration20261201110221_password_tokens },
  { name: 'Migration20261201110928_departments', class: Migration20261201110928_departments },
  { name: 'Migration20261201111008_identity', class: Migration20261201111008_identity },
  { name: 'Migration20261201113000_host_account_uid', class: Migration20261201113000_host_account_uid },
  { name: 'Migration20261201120000_roles', class: Migration20261201120000_roles },
  { name: 'Migration20261201130000_roles_identity', class: Migration20261201130000_roles_identity },
  { name: 'Migration20261201114225_audit_chain', class: Migration20261201114225_audit_chain },
  { name: 'Migration20261201113722_account_policy', class: Migration20261201113722_account_policy },
  { name: 'Migration20261201133000_customer_account_openings', class: Migration20261201133000_customer_account_openings },
  { name: 'Migration20261201140000_command_records', class: Migration20261201140000_command_records },
  { name: 'Migration20261201145000_winrm_auth', class: Migration20261201145000_winrm_auth },
  { name: 'Migration20261201142000_notify_center', class: Migration20261201142000_notify_center },
  { name: 'Migration20261201147000_port_pool', class: Migration20261201147000_port_pool },
  { name: 'Migration20261201147100_remote_sessions', class: Migration20261201147100_remote_sessions },
  { name: 'Migration20261201143000_temporal_decode', class: Migration20261201143000_temporal_decode },
  { name: 'Migration20261201175000_pending_passwords', class: Migration20261201175000_pending_passwords },
  { name: 'Migration20261201170000_rate_limits', class: Migration20261201170000_rate_limits },
  { name: 'Migration20261201172000_security_alert_delivery', class: Migration20261201172000_security_alert_delivery },
  { name: 'Migration20261201172100_reminder_policy', class: Migration20261201172100_reminder_policy },
  { name: 'Migration20261202130000_notify_rate_index', class: Migration20261202130000_notify_rate_index },
  { name: 'Migration20261202140000_vnc_services', class: Migration20261202140000_vnc_services },
  { name: 'Migration20261202110000_host_account_sid', class: Migration20261202110000_host_account_sid },
  // (new migrations above)
];
