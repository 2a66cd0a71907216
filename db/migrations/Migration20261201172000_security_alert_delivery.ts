import { Migration } from '@mikro-orm/migrations';

/** Security events become notifications: `notified_at` marks a row handed to the notification center (the outbox flag). */
export class Migration20261201172000_security_alert_delivery extends Migration {

  override name = 'Migration20261201172000_security_alert_delivery';

  override up(): void | Promise<void> {
    this.addSql(`alter table "security_events" add column "notified_at" timestamptz null;`);
    // Rows raised before this change are not announced after the upgrade (they are old news).
    this.addSql(`update "security_events" set "notified_at" = "at";`);
    this.addSql(`create index "security_events_undelivered_index" on "security_events" ("at") where "notified_at" is null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index if exists "security_events_undelivered_index";`);
    this.addSql(`alter table "security_events" drop column "notified_at";`);
  }

}
