import { Migration } from '@mikro-orm/migrations';
import { AUDIT_TRIGGERS_SQL, GENESIS_HASH, chainHash, contentHash } from '../audit/chain.js';

export class Migration20261201114225_audit_chain extends Migration {

  override name = 'Migration20261201114225_audit_chain';

  override async up(): Promise<void> {
    // Statements run at once (execute, not addSql): the backfill below reads the altered table.
    for (const q of [
      `create table "audit_archives" ("id" uuid not null, "first_seq" bigint not null, "last_seq" bigint not null, "prev_hash" varchar(64) not null, "head_hash" varchar(64) not null, "rows" int not null, "file" varchar(500) not null, "file_sha256" varchar(64) not null, "before" timestamptz not null, "created_at" timestamptz not null, primary key ("id"));`,
      `create table "audit_chain" ("id" int not null, primary key ("id"), "seq" bigint not null, "hash" varchar(64) not null, "archived_seq" bigint not null default '0', "archived_hash" varchar(64) not null);`,
      `create table "security_events" ("id" uuid not null, "at" timestamptz not null, "kind" text not null, "severity" text not null, "user_id" uuid null, "username" varchar(64) null, "ip" varchar(64) null, "dedup_key" varchar(300) not null, "detail" jsonb null, "acknowledged_at" timestamptz null, primary key ("id"));`,
      `create index "security_events_at_index" on "security_events" ("at");`,
      `create index "security_events_kind_index" on "security_events" ("kind");`,
      `create index "security_events_user_id_index" on "security_events" ("user_id");`,
      `alter table "security_events" add constraint "security_events_dedup_key_unique" unique ("dedup_key");`,
      `create index "security_events_at_id_index" on "security_events" ("at", "id");`,
      `alter table "audit_events" add "seq" bigint null, add "actor_type" text not null default 'user', add "actor_id" varchar(200) null, add "reason" varchar(500) null, add "user_agent" varchar(255) null, add "before" jsonb null, add "after" jsonb null, add "content_hash" varchar(64) null, add "prev_hash" varchar(64) null, add "hash" varchar(64) null;`,
      `alter table "audit_events" alter column "target_id" type varchar(200) using ("target_id"::varchar(200));`,
      `alter table "audit_events" add constraint "audit_events_seq_unique" unique ("seq");`,
      `create index "audit_events_actor_id_index" on "audit_events" ("actor_id");`,
      `create index "audit_events_at_id_index" on "audit_events" ("at", "id");`,
      `alter table "audit_events" add constraint "audit_events_actor_type_check" check ("actor_type" in ('user', 'api_key', 'system', 'anonymous'));`,
      `alter table "security_events" add constraint "security_events_kind_check" check ("kind" in ('login_failures', 'new_ip_login', 'off_hours_access', 'refresh_token_reuse', 'repeated_forbidden'));`,
      `alter table "security_events" add constraint "security_events_severity_check" check ("severity" in ('low', 'medium', 'high'));`,
    ]) await this.execute(q);

    // Rows written before the chain existed get chained in their (at, id) order.
    const rows = await this.execute(`select * from "audit_events" order by "at", "id"`);
    let prev = GENESIS_HASH;
    let seq = 0;
    for (const r of rows) {
      seq++;
      const content = contentHash({
        id: r.id as string, at: new Date(r.at as string), actor: r.actor as string, actorType: (r.actor_type as string) ?? 'user', actorId: null,
        action: r.action as string, targetType: r.target_type as string, targetId: r.target_id as string, result: r.result as string, reason: null,
        ip: (r.ip as string | null) ?? null, userAgent: null, requestId: (r.request_id as string | null) ?? null, before: null, after: null, detail: r.detail ?? null,
      });
      const hash = chainHash(prev, seq, content);
      await this.execute(`update "audit_events" set "seq" = ?, "content_hash" = ?, "prev_hash" = ?, "hash" = ? where "id" = ?`, [seq, content, prev, hash, r.id]);
      prev = hash;
    }
    await this.execute(`insert into "audit_chain" ("id", "seq", "hash", "archived_seq", "archived_hash") values (1, ?, ?, 0, ?)`, [seq, prev, GENESIS_HASH]);
    for (const q of [
      `alter table "audit_events" alter column "content_hash" set not null;`,
      ...AUDIT_TRIGGERS_SQL,
    ]) await this.execute(q);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop trigger if exists "audit_events_chain" on "audit_events";`);
    this.addSql(`drop trigger if exists "audit_events_guard" on "audit_events";`);
    this.addSql(`drop trigger if exists "audit_events_no_truncate" on "audit_events";`);
    this.addSql(`drop function if exists audit_events_chain, audit_events_guard, audit_chain_guard, audit_archives_guard cascade;`);
    this.addSql(`drop function if exists audit_refuse_truncate cascade;`);
    this.addSql(`drop table if exists "audit_archives" cascade;`);
    this.addSql(`drop table if exists "audit_chain" cascade;`);
    this.addSql(`drop table if exists "security_events" cascade;`);

    this.addSql(`alter table "audit_events" drop constraint "audit_events_seq_unique";`);
    this.addSql(`drop index "audit_events_actor_id_index";`);
    this.addSql(`drop index "audit_events_at_id_index";`);
    this.addSql(`alter table "audit_events" drop constraint "audit_events_actor_type_check";`);
    this.addSql(`alter table "audit_events" drop column "seq", drop column "actor_type", drop column "actor_id", drop column "reason", drop column "user_agent", drop column "before", drop column "after", drop column "content_hash", drop column "prev_hash", drop column "hash";`);
    this.addSql(`alter table "audit_events" alter column "target_id" type varchar(100) using ("target_id"::varchar(100));`);
  }

}
