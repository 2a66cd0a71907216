import { Migration } from '@mikro-orm/migrations';

export class Migration20261201110221_password_tokens extends Migration {

  override name = 'Migration20261201110221_password_tokens';

  override up(): void | Promise<void> {
    this.addSql(`create table "password_tokens" ("id" uuid not null, "user_id" uuid not null, "purpose" text not null, "token_hash" varchar(64) not null, "expires_at" timestamptz not null, "used_at" timestamptz null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "password_tokens_user_id_index" on "password_tokens" ("user_id");`);
    this.addSql(`alter table "password_tokens" add constraint "password_tokens_token_hash_unique" unique ("token_hash");`);

    this.addSql(`alter table "password_tokens" add constraint "password_tokens_purpose_check" check ("purpose" in ('reset', 'activation'));`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "password_tokens" cascade;`);
  }

}
