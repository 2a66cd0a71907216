import { Migration } from '@mikro-orm/migrations';

/**
 * A host account's password change is recorded as *pending* (encrypted, bound to the next secret
 * version) before it is sent to the host, and promoted only after a login with it succeeds. Until
 * then both the current and the pending password are known (the JumpServer #12631 failure mode:
 * a change that went through while its verification failed must not lose the password).
 */
export class Migration20261201175000_pending_passwords extends Migration {
  override name = 'Migration20261201175000_pending_passwords';

  override up(): void | Promise<void> {
    this.addSql(`alter table "host_accounts" add column "pending_secret_ciphertext" text null, add column "pending_secret_key_id" varchar(64) null, add column "pending_since" timestamptz null, add column "pending_op_id" varchar(200) null, add column "pending_attempts" int not null default 0;`);
    this.addSql(`create index "host_accounts_pending_since_index" on "host_accounts" ("pending_since");`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index if exists "host_accounts_pending_since_index";`);
    this.addSql(`alter table "host_accounts" drop column "pending_secret_ciphertext", drop column "pending_secret_key_id", drop column "pending_since", drop column "pending_op_id", drop column "pending_attempts";`);
  }
}
