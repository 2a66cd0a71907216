import { Migration } from '@mikro-orm/migrations';

export class Migration20261125071214_hosts_onboarding extends Migration {

  override name = 'Migration20261125071214_hosts_onboarding';

  override up(): void | Promise<void> {
    this.addSql(`create table "env_templates" ("id" uuid not null, "name" varchar(100) not null, "version" int not null, "description" varchar(500) null, "os" text not null default 'linux', "steps" jsonb not null, "published_at" timestamptz null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "env_templates" add constraint "env_templates_name_version_unique" unique ("name", "version");`);

    this.addSql(`create table "host_groups" ("id" uuid not null, "name" varchar(100) not null, "description" varchar(500) null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "host_groups" add constraint "host_groups_name_unique" unique ("name");`);

    this.addSql(`create table "host_onboarding_steps" ("id" uuid not null, "host_id" uuid not null, "step" text not null, "status" text not null default 'pending', "attempts" int not null default 0, "started_at" timestamptz null, "finished_at" timestamptz null, "error" varchar(2000) null, "detail" jsonb null, primary key ("id"));`);
    this.addSql(`create index "host_onboarding_steps_host_id_index" on "host_onboarding_steps" ("host_id");`);
    this.addSql(`alter table "host_onboarding_steps" add constraint "host_onboarding_steps_host_id_step_unique" unique ("host_id", "step");`);

    this.addSql(`create table "remote_access" ("id" uuid not null, "host_id" uuid not null, "protocol" text not null, "enabled" boolean not null default true, "public_domain" varchar(255) not null, "public_port" int not null, "target_port" int not null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "remote_access_host_id_index" on "remote_access" ("host_id");`);
    this.addSql(`alter table "remote_access" add constraint "remote_access_public_domain_public_port_unique" unique ("public_domain", "public_port");`);
    this.addSql(`alter table "remote_access" add constraint "remote_access_host_id_target_port_unique" unique ("host_id", "target_port");`);

    this.addSql(`alter table "hosts" add "expected_gpu" jsonb null, add "template_id" uuid null, add "owner_tenant" varchar(100) null, add "recheck_failures" int not null default 0;`);

    this.addSql(`alter table "env_templates" add constraint "env_templates_os_check" check ("os" in ('linux', 'windows'));`);

    this.addSql(`alter table "host_onboarding_steps" add constraint "host_onboarding_steps_host_id_foreign" foreign key ("host_id") references "hosts" ("id") on delete cascade;`);
    this.addSql(`alter table "host_onboarding_steps" add constraint "host_onboarding_steps_step_check" check ("step" in ('connect', 'collect-facts', 'confirm-facts', 'apply-template', 'configure-remote-access', 'verify', 'mark-online'));`);
    this.addSql(`alter table "host_onboarding_steps" add constraint "host_onboarding_steps_status_check" check ("status" in ('pending', 'running', 'done', 'failed', 'skipped', 'waiting'));`);

    this.addSql(`alter table "remote_access" add constraint "remote_access_host_id_foreign" foreign key ("host_id") references "hosts" ("id") on delete cascade;`);
    this.addSql(`alter table "remote_access" add constraint "remote_access_protocol_check" check ("protocol" in ('ssh', 'vnc', 'rdp', 'http', 'tcp'));`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "env_templates" cascade;`);
    this.addSql(`drop table if exists "host_groups" cascade;`);
    this.addSql(`drop table if exists "host_onboarding_steps" cascade;`);
    this.addSql(`drop table if exists "remote_access" cascade;`);

    this.addSql(`alter table "hosts" drop column "expected_gpu", drop column "template_id", drop column "owner_tenant", drop column "recheck_failures";`);
  }

}
