import { Migration } from '@mikro-orm/migrations';

export class Migration20261201110928_departments extends Migration {

  override name = 'Migration20261201110928_departments';

  override up(): void | Promise<void> {
    this.addSql(`create table "departments" ("id" uuid not null, "name" varchar(100) not null, "parent_id" uuid null, "admins" jsonb not null default '[]', "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "departments" add constraint "departments_name_unique" unique ("name");`);
    this.addSql(`create index "departments_parent_id_index" on "departments" ("parent_id");`);

    this.addSql(`create table "registrations" ("id" uuid not null, "kind" text not null, "email" varchar(255) not null, "full_name" varchar(100) null, "phone" varchar(40) null, "department_id" uuid null, "requested_roles" jsonb not null default '[]', "granted_roles" jsonb null, "reason" varchar(1000) null, "username" varchar(64) null, "status" text not null, "round" int not null default 1, "invited_by" uuid null, "verified_at" timestamptz null, "department_reviewed_by" uuid null, "department_reviewed_at" timestamptz null, "department_comment" varchar(1000) null, "role_approved_by" uuid null, "role_approved_at" timestamptz null, "role_comment" varchar(1000) null, "user_id" uuid null, "deadline_at" timestamptz null, "result_message" varchar(1000) null, "workflow_id" varchar(200) not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "registrations_email_index" on "registrations" ("email");`);
    this.addSql(`create index "registrations_department_id_index" on "registrations" ("department_id");`);
    this.addSql(`create index "registrations_status_index" on "registrations" ("status");`);
    this.addSql(`create index "registrations_created_at_index" on "registrations" ("created_at");`);
    this.addSql(`create unique index "registrations_open_email_unique" on "registrations" ("email") where "status" in ('pending_verification', 'pending_department_review', 'changes_requested', 'pending_role_approval', 'activating');`);

    this.addSql(`create table "registration_tokens" ("id" uuid not null, "registration_id" uuid not null, "purpose" text not null, "token_hash" varchar(64) not null, "expires_at" timestamptz not null, "used_at" timestamptz null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "registration_tokens_registration_id_index" on "registration_tokens" ("registration_id");`);
    this.addSql(`alter table "registration_tokens" add constraint "registration_tokens_token_hash_unique" unique ("token_hash");`);

    this.addSql(`create table "role_grants" ("id" uuid not null, "user_id" uuid not null, "role" varchar(32) not null, "until" timestamptz not null, "reason" varchar(1000) not null, "granted_by" uuid not null, "status" text not null default 'active', "revoked_by" uuid null, "revoke_reason" varchar(1000) null, "ended_at" timestamptz null, "workflow_id" varchar(200) not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "role_grants_user_id_index" on "role_grants" ("user_id");`);
    this.addSql(`create unique index "role_grants_active_unique" on "role_grants" ("user_id", "role") where "status" = 'active';`);

    this.addSql(`alter table "users" add "department_id" uuid null;`);
    this.addSql(`create index "users_department_id_index" on "users" ("department_id");`);

    this.addSql(`alter table "registrations" add constraint "registrations_kind_check" check ("kind" in ('self', 'invitation'));`);
    this.addSql(`alter table "registrations" add constraint "registrations_status_check" check ("status" in ('pending_verification', 'pending_department_review', 'changes_requested', 'pending_role_approval', 'activating', 'activated', 'rejected', 'expired', 'failed'));`);

    this.addSql(`alter table "registration_tokens" add constraint "registration_tokens_purpose_check" check ("purpose" in ('verify', 'resubmit'));`);

    this.addSql(`alter table "role_grants" add constraint "role_grants_status_check" check ("status" in ('active', 'expired', 'revoked'));`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "departments" cascade;`);
    this.addSql(`drop table if exists "registrations" cascade;`);
    this.addSql(`drop table if exists "registration_tokens" cascade;`);
    this.addSql(`drop table if exists "role_grants" cascade;`);

    this.addSql(`drop index "users_department_id_index";`);
    this.addSql(`alter table "users" drop column "department_id";`);
  }

}
