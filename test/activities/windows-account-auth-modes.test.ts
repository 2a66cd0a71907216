// An account opening's remote part (provisionAccount → verifyAccountLogin, the activities the
// account-opening workflow runs) over each WinRM auth mode: Basic over HTTPS (the Basic stand-in),
// NTLM over HTTP with message encryption, NTLM over HTTPS, and Kerberos over HTTPS (real MIT KDC),
// the last three through pyspnego's acceptor in front of the WS-Man stand-in.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initORM, type Db } from '../../db/orm.js';
import { Vault, generateKeyring } from '../../db/vault.js';
import { AccountOpeningRequestSchema, HostAccountSchema, HostCredentialSchema, HostSchema, UserSchema } from '../../db/entities/index.js';
import type { WinRmAuth } from '../../db/entities/host.entity.js';
import { credentialContext, hostAccountSecretContext } from '../../activities/remote/host-targets.js';
import { createAccountActivities } from '../../activities/remote/account.activities.js';
import { SshExecutor } from '../../activities/ssh/ssh-executor.js';
import { WinRmExecutor } from '../../activities/winrm/winrm-executor.js';
import { createLogger } from '../../config/logger.js';
import { startKdc, type Kdc } from '../helpers/kdc.js';
import { startWsManHost, type WsManHost } from '../helpers/wsman-host.js';

let db: Db;
let vault: Vault;
let kdc: Kdc;
let winrm: WinRmExecutor;
let ssh: SshExecutor;
let acts: ReturnType<typeof createAccountActivities>;
let applicantId: string;
const hosts: WsManHost[] = [];

beforeAll(async () => {
  db = await initORM({ pgliteDir: 'memory://' });
  vault = new Vault(generateKeyring('t'));
  kdc = await startKdc();
  process.env.KRB5_CONFIG = kdc.krb5Config;
  winrm = new WinRmExecutor({ em: db.em, vault, connectTimeoutMs: 5000 });
  ssh = new SshExecutor({ em: db.em, vault });
  acts = createAccountActivities({ em: db.em, vault, logger: createLogger({ level: 'silent' }), ssh, winrm });
  const em = db.em.fork();
  applicantId = em.create(UserSchema, { username: 'applicant', email: 'applicant@example.test', roles: ['requester'] }).id;
  await em.flush();
}, 60_000);

afterAll(async () => {
  await winrm?.close();
  await ssh?.close();
  for (const h of hosts) await h.stop();
  await kdc?.stop();
  await db?.close();
});

async function setup(mode: { auth: WinRmAuth; https: boolean; negotiate: boolean; kerberos?: boolean }, n: number) {
  let admin = { user: '', password: '' };
  let ws: WsManHost;
  if (mode.kerberos) {
    const keytab = await kdc.addService('HTTP/localhost');
    ws = await startWsManHost({ auth: 'negotiate', https: mode.https, kerberos: { krb5Config: kdc.krb5Config, keytab } });
    const password = `Krb-${n}-Pw-1!`;
    admin = { user: await kdc.addUser(`winadmin${n}`, password), password };
    ws.addDomainUser(admin.user, password);
  } else {
    ws = await startWsManHost({ auth: mode.negotiate ? 'negotiate' : 'basic', https: mode.https });
    admin = { user: ws.adminUser, password: ws.adminPassword };
  }
  hosts.push(ws);
  const em = db.em.fork();
  const host = em.create(HostSchema, {
    slug: `win-mode-${n}`,
    name: `win mode ${n}`,
    address: mode.kerberos ? 'localhost' : '127.0.0.1',
    port: ws.port,
    os: 'windows',
    username: admin.user,
    winrmPort: ws.port,
    winrmHttps: mode.https,
    winrmAuth: mode.auth,
  });
  em.create(HostCredentialSchema, { host, kind: 'winrm-password', ...vault.encrypt(admin.password, credentialContext(host.id, 'winrm-password')) });
  const req = em.create(AccountOpeningRequestSchema, {
    applicant: applicantId,
    contactEmail: 'applicant@example.test',
    username: `user${n}`,
    fullName: `User ${n}`,
    description: null,
    host,
    groups: [],
    isAdmin: false,
    status: 'provisioning',
    workflowId: 'pending',
    expiresAt: new Date(Date.now() + 7 * 86_400_000),
  });
  req.workflowId = `account-opening/${req.id}`;
  await em.flush();
  return { ws, requestId: req.id, admin };
}

describe('account opening over each WinRM auth mode', () => {
  const modes = [
    { name: 'Basic over HTTPS', auth: 'basic', https: true, negotiate: false },
    { name: 'NTLM over HTTP with message encryption', auth: 'ntlm', https: false, negotiate: true },
    { name: 'NTLM over HTTPS', auth: 'ntlm', https: true, negotiate: true },
    { name: 'Kerberos over HTTPS (MIT KDC)', auth: 'negotiate', https: true, negotiate: true, kerberos: true },
  ] as const;
  modes.forEach((mode, i) => {
    it(`${mode.name}: the account is created with a password that logs in`, async () => {
      const { ws, requestId, admin } = await setup(mode, i);
      const r = await acts.provisionAccount(requestId);
      expect(r.createdNow).toBe(true);
      const a = await db.em.fork().findOneOrFail(HostAccountSchema, { id: r.hostAccountId });
      const password = vault.decrypt(a.secretCiphertext!, hostAccountSecretContext(a.id, a.secretVersion));
      expect(ws.checkPassword(`user${i}`, password)).toBe(true);
      expect([...ws.users.get(`user${i}`)!.groups].sort()).toEqual(['Remote Desktop Users', 'Users']);
      const v = await acts.verifyAccountLogin(r.hostAccountId);
      expect(v.verified).toBe(true);
      if (mode.negotiate) expect(ws.principals).toContain(admin.user); // the acceptor authenticated the admin
    }, 60_000);
  });
});
