import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { DB_KINDS, openTestDb } from '../helpers/platform.js';
import type { Db } from '../../db/orm.js';
import { HostSchema, HostCredentialSchema } from '../../db/entities/index.js';
import { migrationsList } from '../../db/migrations/index.js';
import { Vault, generateKeyring } from '../../db/vault.js';
import { credentialContext } from '../../activities/remote/host-targets.js';

describe.each(DB_KINDS)('database on %s', (kind) => {
  let db: Db;
  beforeAll(async () => {
    db = await openTestDb(kind);
  });
  afterAll(() => db?.close());

  it('applies every migration and nothing is pending', async () => {
    const executed = await db.orm.migrator.getExecuted();
    expect(executed.map((m) => m.name)).toEqual(migrationsList.map((m) => m.name));
    expect(await db.orm.migrator.getPending()).toEqual([]);
    // The schema the migrations produce matches the entities: no diff left to generate.
    const diff = await db.orm.schema.getUpdateSchemaSQL({ wrap: false });
    expect(diff.trim()).toBe('');
  });

  it('enforces unique host slugs in the database', async () => {
    const em = db.em.fork();
    em.create(HostSchema, { slug: `dup-${kind}`, name: 'a', address: '10.0.0.1', port: 22, os: 'linux', username: 'u' });
    await em.flush();
    const em2 = db.em.fork();
    em2.create(HostSchema, { slug: `dup-${kind}`, name: 'b', address: '10.0.0.2', port: 22, os: 'linux', username: 'u' });
    await expect(em2.flush()).rejects.toBeInstanceOf(UniqueConstraintViolationException);
  });

  it('stores credentials as ciphertext only', async () => {
    const vault = new Vault(generateKeyring('t1'));
    const em = db.em.fork();
    const host = em.create(HostSchema, { slug: `cred-${kind}`, name: 'c', address: '10.0.0.3', port: 22, os: 'linux', username: 'u' });
    const enc = vault.encrypt('plain-text-password-42', credentialContext(host.id, 'password'));
    em.create(HostCredentialSchema, { host, kind: 'password', ...enc });
    await em.flush();
    const rows = await db.em.fork().getConnection().execute('select * from host_credentials where host_id = ?', [host.id]);
    expect(JSON.stringify(rows)).not.toContain('plain-text-password-42');
    const row = rows[0]!;
    expect(row.key_id).toBe('t1');
    expect(vault.decrypt(row.ciphertext, credentialContext(host.id, 'password'))).toBe('plain-text-password-42');
  });
});
