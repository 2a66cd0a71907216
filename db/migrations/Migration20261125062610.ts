import { Migration } from '@mikro-orm/migrations';

export class Migration20261125062610 extends Migration {

  override name = 'Migration20261125062610';

  override up(): void | Promise<void> {
    this.addSql(`create table "audit_events" ("id" uuid not null, "at" timestamptz not null, "actor" varchar(100) not null, "action" varchar(100) not null, "target_type" varchar(50) not null, "target_id" varchar(100) not null, "result" text not null, "ip" varchar(64) null, "request_id" varchar(64) null, "detail" jsonb null, primary key ("id"));`);
    this.addSql(`create index "audit_events_at_index" on "audit_events" ("at");`);
    this.addSql(`create index "audit_events_action_index" on "audit_events" ("action");`);
    this.addSql(`create index "audit_events_target_id_index" on "audit_events" ("target_id");`);
    this.addSql(`alter table "audit_events" add constraint "audit_events_result_check" check ("result" in ('success', 'failure'));`);

    this.addSql(`create table "hosts" ("id" uuid not null, "slug" varchar(63) not null, "name" varchar(200) not null, "address" varchar(255) not null, "port" int not null, "os" text not null, "username" varchar(64) not null, "site" varchar(100) null, "group" varchar(100) null, "tags" jsonb not null default '[]', "status" text not null default 'pending', "host_key_fingerprint" varchar(100) null, "host_key_pinned_at" timestamptz null, "winrm_port" int null, "winrm_https" boolean not null default true, "facts" jsonb null, "last_seen_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "hosts" add constraint "hosts_slug_unique" unique ("slug");`);
    this.addSql(`create index "hosts_status_index" on "hosts" ("status");`);
    this.addSql(`alter table "hosts" add constraint "hosts_os_check" check ("os" in ('linux', 'windows'));`);
    this.addSql(`alter table "hosts" add constraint "hosts_status_check" check ("status" in ('pending', 'onboarding', 'online', 'maintenance', 'offline', 'failed'));`);

    this.addSql(`create table "host_credentials" ("id" uuid not null, "host_id" uuid not null, "kind" text not null, "ciphertext" text not null, "key_id" varchar(64) not null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "host_credentials_host_id_index" on "host_credentials" ("host_id");`);
    this.addSql(`alter table "host_credentials" add constraint "host_credentials_host_id_kind_unique" unique ("host_id", "kind");`);
    this.addSql(`alter table "host_credentials" add constraint "host_credentials_kind_check" check ("kind" in ('password', 'private-key', 'winrm-password'));`);

    this.addSql(`create table "users" ("id" uuid not null, "username" varchar(64) not null, "email" varchar(255) null, "roles" jsonb not null default '[]', "api_token_hash" varchar(64) null, "disabled_at" timestamptz null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "users" add constraint "users_username_unique" unique ("username");`);
    this.addSql(`alter table "users" add constraint "users_api_token_hash_unique" unique ("api_token_hash");`);

    this.addSql(`alter table "host_credentials" add constraint "host_credentials_host_id_foreign" foreign key ("host_id") references "hosts" ("id") on delete cascade;`);
  }

}
