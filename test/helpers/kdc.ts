/**
 * A real MIT Kerberos KDC (Debian's krb5-kdc) on loopback for one test file: a throwaway realm in a
 * temp dir (kdb5_util create -s), principals added with kadmin.local, a keytab for the acceptor's
 * HTTP/<host> service, krb5kdc in the foreground on a free port (TCP and UDP). `env` holds
 * KRB5_CONFIG / KRB5_KDC_PROFILE for the processes that should use this realm.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface Kdc {
  realm: string;
  port: number;
  dir: string;
  krb5Config: string;
  env: { KRB5_CONFIG: string; KRB5_KDC_PROFILE: string };
  /** Adds user@REALM with a password. */
  addUser(name: string, password: string): Promise<string>;
  /** Adds `service/host` with a random key and writes it to a keytab; returns the keytab path. */
  addService(spn: string): Promise<string>;
  stop(): Promise<void>;
}

const run = promisify(execFile);

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function startKdc(realm = 'HOSTFLOW.TEST'): Promise<Kdc> {
  const dir = await mkdtemp(join(tmpdir(), 'hostflow-kdc-'));
  const port = await freePort();
  const krb5Config = join(dir, 'krb5.conf');
  const kdcProfile = join(dir, 'kdc.conf');
  await writeFile(
    krb5Config,
    `[libdefaults]
  default_realm = ${realm}
  dns_lookup_kdc = false
  dns_lookup_realm = false
  dns_canonicalize_hostname = false
  rdns = false
  udp_preference_limit = 1
  ticket_lifetime = 1h
  default_ccache_name = FILE:${dir}/ccache-default
[realms]
  ${realm} = {
    kdc = 127.0.0.1:${port}
  }
[domain_realm]
  localhost = ${realm}
`,
  );
  await writeFile(
    kdcProfile,
    `[kdcdefaults]
  kdc_ports = ${port}
  kdc_tcp_ports = ${port}
[realms]
  ${realm} = {
    database_name = ${dir}/principal
    key_stash_file = ${dir}/stash
    acl_file = ${dir}/kadm5.acl
    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    max_life = 1h
  }
[logging]
  kdc = FILE:${dir}/kdc.log
`,
  );
  await writeFile(join(dir, 'kadm5.acl'), '');
  const env = { KRB5_CONFIG: krb5Config, KRB5_KDC_PROFILE: kdcProfile };
  const opts = { env: { ...process.env, ...env } };
  await run('kdb5_util', ['create', '-s', '-r', realm, '-P', randomBytes(12).toString('hex')], opts);
  const kadmin = (q: string) => run('kadmin.local', ['-r', realm, '-q', q], opts);

  const kdc: ChildProcess = spawn('krb5kdc', ['-n', '-r', realm], { ...opts, stdio: ['ignore', 'ignore', 'pipe'] });
  const errOut: string[] = [];
  kdc.stderr?.on('data', (d: Buffer) => errOut.push(d.toString()));
  // Wait for the TCP listener.
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((r) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => (c.destroy(), r(true)));
      c.once('error', () => r(false));
    });
    if (ok) break;
    if (kdc.exitCode !== null || i > 100) throw new Error(`krb5kdc did not start: ${errOut.join('')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    realm,
    port,
    dir,
    krb5Config,
    env,
    async addUser(name, password) {
      await kadmin(`addprinc -pw ${password} ${name}`);
      return `${name}@${realm}`;
    },
    async addService(spn) {
      const keytab = join(dir, `${spn.replace(/\W/g, '_')}.keytab`);
      await kadmin(`addprinc -randkey ${spn}`);
      await kadmin(`ktadd -k ${keytab} ${spn}`);
      return keytab;
    },
    async stop() {
      if (kdc.exitCode === null) {
        const exited = new Promise<void>((r) => kdc.once('exit', () => r()));
        kdc.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
