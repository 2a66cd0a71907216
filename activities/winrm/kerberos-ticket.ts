/**
 * Kerberos initial tickets for WinRM accounts stored with a password: `kinit` (MIT, krb5-user)
 * reads the password on stdin and stores the TGT in a DIR: credential-cache collection private to
 * this process's user, so several principals coexist; the GSSAPI context then picks the ticket of
 * the account's principal. If the operator set KRB5CCNAME (e.g. a keytab-renewed cache), that is
 * used instead and no kinit runs when a valid ticket for the principal is already there.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export class KerberosTicketError extends Error {
  override name = 'KerberosTicketError';
}

let collection: string | undefined;

/** The DIR: collection used for tickets (process-wide: GSSAPI reads KRB5CCNAME from the environment). */
export function ensureCredentialCollection(): string {
  if (process.env.KRB5CCNAME) return process.env.KRB5CCNAME;
  if (!collection) {
    const dir = join(tmpdir(), `hostflow-krb5cc-${process.getuid?.() ?? 'user'}-${process.pid}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    collection = `DIR:${dir}`;
    process.env.KRB5CCNAME = collection;
  }
  return collection;
}

/** Whether a Kerberos client configuration is present (KRB5_CONFIG or /etc/krb5.conf with a default realm). */
export function kerberosConfigured(): boolean {
  return !!process.env.KRB5_CONFIG || !!process.env.HOSTFLOW_KERBEROS;
}

/** Obtains a TGT for `principal` (user@REALM) with `password`; rejects (without the password) on failure. */
export async function kinit(principal: string, password: string, timeoutMs = 15_000): Promise<void> {
  const ccname = ensureCredentialCollection();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('kinit', [principal], { env: { ...process.env, KRB5CCNAME: ccname }, stdio: ['pipe', 'pipe', 'pipe'] });
    const err: string[] = [];
    child.stderr.on('data', (d: Buffer) => err.push(d.toString()));
    child.stdout.on('data', () => undefined);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => (clearTimeout(timer), reject(new KerberosTicketError(`kinit: ${e.message} (install krb5-user)`))));
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new KerberosTicketError(`kinit ${principal} failed: ${err.join('').replace(/Password for \S+:\s*/g, '').trim() || `exit ${code}`}`));
    });
    child.stdin.end(`${password}\n`);
  });
}

/** `klist -s` for the principal's cache in the collection. */
export async function hasTicket(principal: string): Promise<boolean> {
  try {
    const { stdout } = await promisify(execFile)('klist', ['-l'], { env: { ...process.env, KRB5CCNAME: ensureCredentialCollection() } });
    return stdout.split('\n').some((l) => l.trim().split(/\s+/)[0] === principal && !/Expired/i.test(l));
  } catch {
    return false;
  }
}
