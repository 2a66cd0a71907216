import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { DB_KINDS, openTestDb } from '../helpers/platform.js';
import type { Db } from '../../db/orm.js';
import { AllocationSchema, CustomerSchema, HostSchema, RemoteAccessSchema, UserSchema } from '../../db/entities/index.js';
import { assignPorts, parsePortPool, PortPoolError, type GatewayPorts } from '../../db/port-pool.js';
import { planRemoteAccess } from '../../activities/remote/remote-access.js';
import { connectionSummary } from '../../db/connection-summary.js';

// Issue 11: every Linux host used to be planned on public port 2222 of the one gateway.
describe.each(DB_KINDS)('public-port pool on %s', (kind) => {
  let db: Db;
  const gw: GatewayPorts = { gateway: `gw-${kind}.example.com`, pool: { from: 21000, to: 21009 } };
  let n = 0;
  const newHost = async (os: 'linux' | 'windows' = 'linux') => {
    const em = db.em.fork();
    const h = em.create(HostSchema, { slug: `pp-${kind}-${++n}`, name: `pp ${n}`, address: `10.1.0.${n}`, port: 22, os, username: 'admin' });
    await em.flush();
    return h;
  };
  const plan = (h: { slug: string; os: 'linux' | 'windows'; port: number }, extra: number[] = []) => planRemoteAccess(h, { enabled: true, extraPorts: extra }, 'hosts.example.com');

  beforeAll(async () => {
    db = await openTestDb(kind);
  });
  afterAll(() => db?.close());

  it('gives every host its own ports from the pool, and a re-run keeps them', async () => {
    const a = await newHost();
    const b = await newHost();
    const pa = await assignPorts(db.em, a.id, plan(a, [8888]), gw);
    const pb = await assignPorts(db.em, b.id, plan(b), gw);
    expect(pa.map((e) => e.publicPort)).toEqual([21000, 21001]);
    expect(pb.map((e) => e.publicPort)).toEqual([21002]);
    expect(pb[0]).toMatchObject({ protocol: 'ssh', publicDomain: `${b.slug}.hosts.example.com`, targetPort: 22 });
    // Re-running (onboarding retried) keeps the customer's address.
    expect((await assignPorts(db.em, a.id, plan(a, [8888]), gw)).map((e) => e.publicPort)).toEqual([21000, 21001]);
  });

  it('the database refuses a second entry on the same gateway port', async () => {
    const a = await newHost();
    const b = await newHost();
    const [e] = await assignPorts(db.em, a.id, plan(a), gw);
    const em = db.em.fork();
    em.create(RemoteAccessSchema, { host: em.getReference(HostSchema, b.id), gateway: gw.gateway, protocol: 'ssh', publicDomain: 'other.example.com', publicPort: e!.publicPort, targetPort: 22 });
    await expect(em.flush()).rejects.toBeInstanceOf(UniqueConstraintViolationException);
    // Another gateway may use the same number.
    const em2 = db.em.fork();
    em2.create(RemoteAccessSchema, { host: em2.getReference(HostSchema, b.id), gateway: 'other-gw', protocol: 'ssh', publicDomain: 'other.example.com', publicPort: e!.publicPort, targetPort: 22 });
    await em2.flush();
  });

  it('concurrent assignments never hand out one port twice; an exhausted pool fails naming the setting; deleting a host frees its ports', async () => {
    const small: GatewayPorts = { gateway: `small-${kind}`, pool: { from: 22000, to: 22005 } };
    const hosts = await Promise.all(Array.from({ length: 6 }, () => newHost()));
    const got = await Promise.all(hosts.map((h) => assignPorts(db.em, h.id, plan(h), small)));
    const ports = got.flat().map((e) => e.publicPort);
    expect(new Set(ports).size).toBe(6);
    expect(ports.every((p) => p >= 22000 && p <= 22005)).toBe(true);

    const late = await newHost();
    const err = await assignPorts(db.em, late.id, plan(late), small).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PortPoolError);
    expect((err as PortPoolError).type).toBe('PortPoolExhausted');
    expect((err as Error).message).toMatch(/REMOTE_ACCESS_PORT_POOL/);
    // Nothing half-done: the late host has no entry.
    expect(await db.em.fork().count(RemoteAccessSchema, { host: late.id })).toBe(0);

    const freed = got[3]![0]!.publicPort;
    await db.em.fork().nativeDelete(HostSchema, { id: hosts[3]!.id });
    const [e] = await assignPorts(db.em, late.id, plan(late), small);
    expect(e!.publicPort).toBe(freed);
  });

  it('an explicit override must lie in the pool', async () => {
    const h = await newHost();
    const err = await assignPorts(db.em, h.id, planRemoteAccess(h, { enabled: true, publicPorts: { '22': 2222 } }, 'x.example.com'), gw).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'PortOutsidePool' });
    expect((err as Error).message).toMatch(/public_ports: 2222/);
    const [e] = await assignPorts(db.em, h.id, planRemoteAccess(h, { enabled: true, publicPorts: { '22': 21009 } }, 'x.example.com'), gw);
    expect(e!.publicPort).toBe(21009);
  });

  it('the connection summary tells the customer the pooled port', async () => {
    const h = await newHost();
    const [e] = await assignPorts(db.em, h.id, plan(h), gw);
    const em = db.em.fork();
    const customer = em.create(CustomerSchema, { name: `Pool ${kind}`, code: `pool-${kind}` });
    const user = em.create(UserSchema, { username: `pool-${kind}`, customerId: customer.id });
    const a = em.create(AllocationSchema, { host: em.getReference(HostSchema, h.id), customer, customerUser: user, osUsername: 'tenant', startsAt: new Date(), endsAt: new Date(Date.now() + 86_400_000), bufferSeconds: 0, graceSeconds: 0, status: 'active', createdBy: 'test' });
    await em.flush();
    const s = await connectionSummary(db.em.fork(), a.id);
    expect(s!.connect).toEqual({ host: `${h.slug}.hosts.example.com`, port: e!.publicPort, via: 'remote-access' });
    expect(s!.ssh_command).toBe(`ssh -p ${e!.publicPort} tenant@${h.slug}.hosts.example.com`);
    expect(e!.publicPort).not.toBe(2222);
  });

  it('parses the pool setting', () => {
    expect(parsePortPool('20000-29999')).toEqual({ from: 20000, to: 29999 });
    expect(() => parsePortPool('30000-20000')).toThrow(/port pool/);
    expect(() => parsePortPool('0-10')).toThrow(/port pool/);
  });
});
