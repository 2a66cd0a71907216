import { Migration } from '@mikro-orm/migrations';

export class Migration20261125064752_account_openings extends Migration {

  override name = 'Migration20261125064752_account_openings';

  override up(): void | Promise<void> {
    this.addSql(`create table "host_accounts" ("id" uuid not null, "host_id" uuid not null, "username" varchar(64) not null, "full_name" varchar(100) null, "email" varchar(255) null, "description" varchar(200) null, "origin" text not null, "status" text not null default 'provisioning', "groups" jsonb not null default '[]', "is_admin" boolean not null default false, "owner_user_id" uuid null, "secret_ciphertext" text null, "secret_key_id" varchar(64) null, "secret_version" int not null default 0, "secret_revealed_at" timestamptz null, "last_reset_op_id" varchar(200) null, "created_from_request_id" uuid null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "host_accounts_host_id_index" on "host_accounts" ("host_id");`);
    this.addSql(`create index "host_accounts_status_index" on "host_accounts" ("status");`);
    this.addSql(`alter table "host_accounts" add constraint "host_accounts_host_id_username_unique" unique ("host_id", "username");`);

    this.addSql(`create table "notifications" ("id" uuid not null, "event_key" varchar(200) not null, "recipient" varchar(255) not null, "channel" text not null, "subject" varchar(300) not null, "body" text not null, "status" text not null default 'pending', "detail" varchar(1000) null, "created_at" timestamptz not null, "sent_at" timestamptz null, primary key ("id"));`);
    this.addSql(`alter table "notifications" add constraint "notifications_event_key_recipient_channel_unique" unique ("event_key", "recipient", "channel");`);

    this.addSql(`create table "account_opening_requests" ("id" uuid not null, "applicant_id" uuid not null, "contact_email" varchar(255) not null, "contact_phone" varchar(50) null, "username" varchar(64) not null, "full_name" varchar(100) not null, "user_email" varchar(255) null, "description" varchar(200) null, "host_id" uuid not null, "groups" jsonb not null default '[]', "is_admin" boolean not null default false, "status" text not null default 'pending', "approved_by_id" uuid null, "decided_at" timestamptz null, "approval_notes" varchar(1000) null, "reject_reason" varchar(1000) null, "result_message" varchar(2000) null, "failure_type" varchar(100) null, "host_account_id" uuid null, "workflow_id" varchar(200) not null, "expires_at" timestamptz not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "account_opening_requests_applicant_id_index" on "account_opening_requests" ("applicant_id");`);
    this.addSql(`create index "account_opening_requests_host_id_index" on "account_opening_requests" ("host_id");`);
    this.addSql(`create index "account_opening_requests_status_index" on "account_opening_requests" ("status");`);
    this.addSql(`create index "account_opening_requests_created_at_index" on "account_opening_requests" ("created_at");`);
    this.addSql(`create unique index "account_opening_requests_open_unique" on "account_opening_requests" ("host_id", "username") where "status" in ('pending', 'approved', 'provisioning', 'failed');`);

    this.addSql(`alter table "host_accounts" add constraint "host_accounts_host_id_foreign" foreign key ("host_id") references "hosts" ("id");`);
    this.addSql(`alter table "host_accounts" add constraint "host_accounts_origin_check" check ("origin" in ('platform-created', 'pre-existing'));`);
    this.addSql(`alter table "host_accounts" add constraint "host_accounts_status_check" check ("status" in ('provisioning', 'active', 'disabled', 'deleted'));`);

    this.addSql(`alter table "notifications" add constraint "notifications_channel_check" check ("channel" in ('email', 'slack', 'webhook'));`);
    this.addSql(`alter table "notifications" add constraint "notifications_status_check" check ("status" in ('pending', 'sent', 'skipped', 'failed'));`);

    this.addSql(`alter table "account_opening_requests" add constraint "account_opening_requests_applicant_id_foreign" foreign key ("applicant_id") references "users" ("id");`);
    this.addSql(`alter table "account_opening_requests" add constraint "account_opening_requests_host_id_foreign" foreign key ("host_id") references "hosts" ("id");`);
    this.addSql(`alter table "account_opening_requests" add constraint "account_opening_requests_approved_by_id_foreign" foreign key ("approved_by_id") references "users" ("id") on delete set null;`);
    this.addSql(`alter table "account_opening_requests" add constraint "account_opening_requests_status_check" check ("status" in ('pending', 'approved', 'provisioning', 'done', 'failed', 'rejected', 'withdrawn', 'expired'));`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "host_accounts" cascade;`);
    this.addSql(`drop table if exists "notifications" cascade;`);
    this.addSql(`drop table if exists "account_opening_requests" cascade;`);
  }

}
