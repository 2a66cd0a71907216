import { Migration } from '@mikro-orm/migrations';

/** Fixed-window counters for public endpoints (the registration submit, per source address). */
export class Migration20261201170000_rate_limits extends Migration {

  override name = 'Migration20261201170000_rate_limits';

  override up(): void | Promise<void> {
    this.addSql(`create table "rate_limits" ("bucket" varchar(32) not null, "subject" varchar(64) not null, "hits" int not null default 0, "window_started_at" timestamptz not null, primary key ("bucket", "subject"));`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "rate_limits" cascade;`);
  }

}
