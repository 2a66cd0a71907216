import { Migration } from '@mikro-orm/migrations';

/**
 * The notification center's per-recipient rate limit counts a recipient's messages sent in the last
 * hour on a channel before each fan-out. Without an index that count scanned the whole send log
 * (the unique (event_key, recipient, channel) index leads with the event key), so every reminder of
 * a 10,000-reminder burst paid a scan that grew with the log. A partial index on sent rows only.
 */
export class Migration20261202130000_notify_rate_index extends Migration {

  override name = 'Migration20261202130000_notify_rate_index';

  override up(): void | Promise<void> {
    this.addSql(`create index "notifications_sent_rate_index" on "notifications" ("recipient", "channel", "sent_at") where "status" = 'sent';`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index if exists "notifications_sent_rate_index";`);
  }

}
