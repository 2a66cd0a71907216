// The roles migration on a database that already has users with the old `customer` role: they
// become `customer_member` (and so do their API keys' roles), the built-in roles are seeded, and
// down() reverses it.
import { describe, expect, it } from 'vitest';
import { initORM } from '../../db/orm.js';

describe('roles migration', () => {
  it('renames the old customer role to customer_member (users and API keys) and seeds the built-in roles', async () => {
    const db = await initORM({ pgliteDir: 'memory://' }, { migrate: false });
    try {
      await db.orm.migrator.up({ to: 'Migration20261201110221_password_tokens' });
      const conn = db.em.getConnection();
      await conn.execute(`insert into users (id, username, roles, created_at, must_change_password) values (gen_random_uuid(), 'ana', '["customer"]', now(), false), (gen_random_uuid(), 'bob', '["admin", "approver"]', now(), false)`);
      // An API key of ana's from the identity work, acting with the old role name.
      await db.orm.migrator.up({ to: 'Migration20261201111008_identity' });
      await conn.execute(`insert into api_keys (id, user_id, name, prefix, key_hash, roles, created_at) select gen_random_uuid(), id, 'old', 'hf_old', repeat('a', 64), '["customer"]', now() from users where username = 'ana'`);
      await db.orm.migrator.up();
      const keys = await conn.execute<Array<{ roles: string[] }>>(`select roles from api_keys`);
      expect(keys.map((k) => k.roles)).toEqual([['customer_member']]);
      const users = await conn.execute<Array<{ username: string; roles: string[] }>>(`select username, roles from users order by username`);
      expect(users.map((u) => [u.username, u.roles])).toEqual([
        ['ana', ['customer_member']],
        ['bob', ['admin', 'approver']],
      ]);
      const roles = await conn.execute<Array<{ name: string; parent: string | null }>>(`select name, parent from roles where builtin order by name`);
      expect(roles.map((r) => r.name)).toEqual(['admin', 'approver', 'auditor', 'customer_member', 'customer_owner', 'operator', 'requester', 'viewer']);
      expect(roles.find((r) => r.name === 'customer_owner')!.parent).toBe('customer_member');
      await db.orm.migrator.down({ to: 'Migration20261201120000_roles' });
      expect((await conn.execute<Array<{ roles: string[] }>>(`select roles from api_keys`)).map((k) => k.roles)).toEqual([['customer']]);
      await db.orm.migrator.down({ to: 'Migration20261201110221_password_tokens' });
      const back = await conn.execute<Array<{ roles: string[] }>>(`select roles from users where username = 'ana'`);
      expect(back[0]!.roles).toEqual(['customer']);
    } finally {
      await db.close();
    }
  });
});
