import { Migration } from '@mikro-orm/migrations';

/**
 * Public ports come from a pool, unique per gateway (issue 11): one nginx gateway listens on one
 * TCP port per entry, so (gateway, public_port) is the invariant, enforced here. Entries saved
 * before the pool existed (every Linux host on 2222) keep their ports under a per-domain legacy
 * gateway (`legacy:<domain>`), which the managed gateway does not serve: configuring the host's
 * remote access again moves them onto the pool.
 */
export class Migration20261201147000_port_pool extends Migration {
  override name = 'Migration20261201147000_port_pool';

  override up(): void | Promise<void> {
    this.addSql(`alter table "remote_access" add column "gateway" varchar(255) null;`);
    this.addSql(`update "remote_access" set "gateway" = 'legacy:' || "public_domain";`);
    this.addSql(`alter table "remote_access" alter column "gateway" set not null;`);
    this.addSql(`alter table "remote_access" add constraint "remote_access_gateway_public_port_unique" unique ("gateway", "public_port");`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "remote_access" drop constraint "remote_access_gateway_public_port_unique";`);
    this.addSql(`alter table "remote_access" drop column "gateway";`);
  }
}
