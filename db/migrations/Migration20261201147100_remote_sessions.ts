import { Migration } from '@mikro-orm/migrations';

export class Migration20261201147100_remote_sessions extends Migration {

  override name = 'Migration20261201147100_remote_sessions';

  override up(): void | Promise<void> {
    this.addSql(`create table "remote_sessions" ("id" uuid not null, "user_id" uuid not null, "username" varchar(64) not null, "staff" boolean not null default false, "allocation_id" uuid null, "customer_id" uuid null, "host_id" uuid not null, "os_username" varchar(64) not null, "protocol" text not null, "source_ip" varchar(64) null, "status" text not null default 'active', "started_at" timestamptz not null, "last_activity_at" timestamptz not null, "ended_at" timestamptz null, "end_reason" text null, "bytes_sent" bigint not null default '0', "bytes_received" bigint not null default '0', "recording_path" varchar(500) null, "terminate_requested_at" timestamptz null, "terminate_reason" text null, primary key ("id"));`);
    this.addSql(`create index "remote_sessions_user_id_index" on "remote_sessions" ("user_id");`);
    this.addSql(`create index "remote_sessions_allocation_id_index" on "remote_sessions" ("allocation_id");`);
    this.addSql(`create index "remote_sessions_customer_id_index" on "remote_sessions" ("customer_id");`);
    this.addSql(`create index "remote_sessions_host_id_index" on "remote_sessions" ("host_id");`);
    this.addSql(`create index "remote_sessions_status_index" on "remote_sessions" ("status");`);

    this.addSql(`create table "terminal_keys" ("allocation_id" uuid not null, "public_key" text not null, "private_key_ciphertext" text not null, "key_id" varchar(64) not null, "created_at" timestamptz not null, primary key ("allocation_id"));`);

    this.addSql(`alter table "remote_sessions" add constraint "remote_sessions_protocol_check" check ("protocol" in ('ssh', 'vnc', 'rdp'));`);
    this.addSql(`alter table "remote_sessions" add constraint "remote_sessions_status_check" check ("status" in ('active', 'idle', 'closed', 'terminated', 'disconnected'));`);
    this.addSql(`alter table "remote_sessions" add constraint "remote_sessions_end_reason_check" check ("end_reason" in ('user_close', 'idle_timeout', 'admin_force', 'error', 'reclaim', 'max_duration'));`);
    this.addSql(`alter table "remote_sessions" add constraint "remote_sessions_terminate_reason_check" check ("terminate_reason" in ('user_close', 'idle_timeout', 'admin_force', 'error', 'reclaim', 'max_duration'));`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "remote_sessions" cascade;`);
    this.addSql(`drop table if exists "terminal_keys" cascade;`);
  }

}
