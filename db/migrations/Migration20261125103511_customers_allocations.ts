import { Migration } from '@mikro-orm/migrations';

export class Migration20261125103511_customers_allocations extends Migration {

  override name = 'Migration20261125103511_customers_allocations';

  override up(): void | Promise<void> {
    this.addSql(`create table "customers" ("id" uuid not null, "name" varchar(200) not null, "code" varchar(32) not null, "contact_name" varchar(100) null, "contact_email" varchar(255) null, "contact_phone" varchar(50) null, "notes" varchar(1000) null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "customers" add constraint "customers_code_unique" unique ("code");`);

    this.addSql(`create table "ssh_keys" ("id" uuid not null, "user_id" uuid not null, "type" varchar(40) not null, "bits" int not null, "public_key" text not null, "comment" varchar(200) null, "fingerprint" varchar(60) not null, "created_at" timestamptz not null, "revoked_at" timestamptz null, primary key ("id"));`);
    this.addSql(`create index "ssh_keys_user_id_index" on "ssh_keys" ("user_id");`);
    this.addSql(`create unique index "ssh_keys_fingerprint_active_unique" on "ssh_keys" ("fingerprint") where "revoked_at" is null;`);

    this.addSql(`create table "allocations" ("id" uuid not null, "host_id" uuid not null, "customer_id" uuid not null, "customer_user_id" uuid not null, "os_username" varchar(64) not null, "starts_at" timestamptz not null, "ends_at" timestamptz not null, "buffer_seconds" int not null, "grace_seconds" int not null, "status" text not null default 'pending', "host_account_id" uuid null, "failed_step" varchar(50) null, "error" varchar(2000) null, "terminate_reason" varchar(1000) null, "notes" varchar(1000) null, "created_by" varchar(64) not null, "reclaimed_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "allocations_host_id_index" on "allocations" ("host_id");`);
    this.addSql(`create index "allocations_customer_id_index" on "allocations" ("customer_id");`);
    this.addSql(`create index "allocations_status_index" on "allocations" ("status");`);
    this.addSql(`create index "allocations_created_at_index" on "allocations" ("created_at");`);
    this.addSql(`create unique index "allocations_host_holding_unique" on "allocations" ("host_id") where "status" in ('pending', 'provisioning', 'active', 'failed', 'buffer', 'reclaiming', 'reclaim-failed');`);

    this.addSql(`create table "lease_events" ("id" uuid not null, "allocation_id" uuid not null, "kind" text not null, "due_at" timestamptz not null, "fired_at" timestamptz not null, "lease_ends_at" timestamptz not null, "notification" varchar(20) null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "lease_events_allocation_id_index" on "lease_events" ("allocation_id");`);
    this.addSql(`alter table "lease_events" add constraint "lease_events_allocation_id_kind_unique" unique ("allocation_id", "kind");`);

    this.addSql(`create table "allocation_steps" ("id" uuid not null, "allocation_id" uuid not null, "phase" text not null, "step" varchar(50) not null, "position" int not null, "status" text not null default 'pending', "attempts" int not null default 0, "started_at" timestamptz null, "finished_at" timestamptz null, "error" varchar(2000) null, "detail" jsonb null, primary key ("id"));`);
    this.addSql(`create index "allocation_steps_allocation_id_index" on "allocation_steps" ("allocation_id");`);
    this.addSql(`alter table "allocation_steps" add constraint "allocation_steps_allocation_id_phase_step_unique" unique ("allocation_id", "phase", "step");`);

    this.addSql(`alter table "host_accounts" add "created_from_allocation_id" uuid null;`);

    this.addSql(`alter table "users" add "customer_id" uuid null, add "full_name" varchar(100) null, add "timezone" varchar(64) null, add "password_hash" varchar(200) null, add "must_change_password" boolean not null default false;`);
    this.addSql(`create index "users_customer_id_index" on "users" ("customer_id");`);

    this.addSql(`alter table "ssh_keys" add constraint "ssh_keys_user_id_foreign" foreign key ("user_id") references "users" ("id");`);

    this.addSql(`alter table "allocations" add constraint "allocations_host_id_foreign" foreign key ("host_id") references "hosts" ("id");`);
    this.addSql(`alter table "allocations" add constraint "allocations_customer_id_foreign" foreign key ("customer_id") references "customers" ("id");`);
    this.addSql(`alter table "allocations" add constraint "allocations_customer_user_id_foreign" foreign key ("customer_user_id") references "users" ("id");`);
    this.addSql(`alter table "allocations" add constraint "allocations_status_check" check ("status" in ('pending', 'provisioning', 'active', 'failed', 'buffer', 'reclaiming', 'reclaim-failed', 'reclaimed', 'cancelled'));`);

    this.addSql(`alter table "lease_events" add constraint "lease_events_allocation_id_foreign" foreign key ("allocation_id") references "allocations" ("id") on delete cascade;`);
    this.addSql(`alter table "lease_events" add constraint "lease_events_kind_check" check ("kind" in ('reminder-7d', 'reminder-3d', 'reminder-1d', 'ended', 'reclaim-started'));`);

    this.addSql(`alter table "allocation_steps" add constraint "allocation_steps_allocation_id_foreign" foreign key ("allocation_id") references "allocations" ("id") on delete cascade;`);
    this.addSql(`alter table "allocation_steps" add constraint "allocation_steps_phase_check" check ("phase" in ('allocate', 'reclaim'));`);
    this.addSql(`alter table "allocation_steps" add constraint "allocation_steps_status_check" check ("status" in ('pending', 'running', 'done', 'failed', 'skipped', 'waiting'));`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "allocations" drop constraint "allocations_customer_id_foreign";`);
    this.addSql(`alter table "lease_events" drop constraint "lease_events_allocation_id_foreign";`);
    this.addSql(`alter table "allocation_steps" drop constraint "allocation_steps_allocation_id_foreign";`);

    this.addSql(`drop table if exists "customers" cascade;`);
    this.addSql(`drop table if exists "ssh_keys" cascade;`);
    this.addSql(`drop table if exists "allocations" cascade;`);
    this.addSql(`drop table if exists "lease_events" cascade;`);
    this.addSql(`drop table if exists "allocation_steps" cascade;`);

    this.addSql(`alter table "host_accounts" drop column "created_from_allocation_id";`);

    this.addSql(`drop index "users_customer_id_index";`);
    this.addSql(`alter table "users" drop column "customer_id", drop column "full_name", drop column "timezone", drop column "password_hash", drop column "must_change_password";`);
  }

}
