import { ApplicationFailure } from '@temporalio/common';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { AllocationSchema, HostAccountSchema, RemoteAccessSchema, VncServiceSchema, vncPasswordContext, type VncService } from '../../db/entities/index.js';
import type { Vault } from '../../db/vault.js';
import { defaultGatewayPorts, ensureEntry, type GatewayPorts } from '../../db/port-pool.js';
import type { RemoteExecutor } from './executor.js';
import { classified } from './failures.js';
import { check } from './account-ops.js';
import { parseMarkers } from './linux.js';
import * as vnc from './vnc.js';

export interface VncActivityDeps {
  em: SqlEntityManager;
  vault: Vault;
  ssh: RemoteExecutor;
  baseDomain: string;
  gatewayPorts?: GatewayPorts;
}

/** A new VNC password for the row (next version, not revealed), stored encrypted before it goes anywhere. */
async function rotatePassword(em: SqlEntityManager, vault: Vault, row: VncService): Promise<string> {
  const password = vnc.generateVncPassword();
  row.passwordVersion += 1;
  const enc = vault.encrypt(password, vncPasswordContext(row.allocationId, row.passwordVersion));
  row.passwordCiphertext = enc.ciphertext;
  row.passwordKeyId = enc.keyId;
  row.passwordRevealedAt = null;
  await em.flush();
  return password;
}

/**
 * VNC service auto-deployment (allocation option `vnc`): deploy on allocation, password reset on
 * request, stop and remove at reclaim. Check-then-act like the other remote activities: a re-run
 * finds the running server and keeps its display, port and gateway entry.
 */
export function createVncActivities(deps: VncActivityDeps) {
  const load = async (em: SqlEntityManager, allocationId: string) => {
    const a = await em.findOne(AllocationSchema, { id: allocationId }, { populate: ['host'] });
    if (!a) throw ApplicationFailure.nonRetryable(`allocation ${allocationId} does not exist`, 'NotFound');
    return { a, row: await em.findOne(VncServiceSchema, { allocationId }) };
  };

  return {
    /** Whether the allocation has a VNC service that reclaim must stop (requested or running). */
    async allocationHasVnc(allocationId: string): Promise<boolean> {
      return (await deps.em.fork().count(VncServiceSchema, { allocationId, status: { $ne: 'removed' } })) > 0;
    },

    /**
     * Installs TigerVNC when missing, writes the password file, starts Xvnc as the customer's
     * account and adds the host's `vnc` remote-access entry (public port from the pool) for the
     * gateway and the console's noVNC proxy. The password is generated here and stored encrypted;
     * the customer user reveals it once.
     */
    async deployVnc(allocationId: string): Promise<{ display: number; port: number; started: boolean; installed: boolean; publicPort: number } | { skipped: string }> {
      return classified(async () => {
        const em = deps.em.fork();
        const { a, row } = await load(em, allocationId);
        if (!row || row.status === 'removed') return { skipped: 'the allocation did not ask for VNC' };
        if (a.host.os !== 'linux') throw ApplicationFailure.nonRetryable(`host ${a.host.slug} is ${a.host.os}: VNC auto-deployment supports Linux hosts`, 'InvalidInput');
        const password = row.passwordCiphertext ? deps.vault.decrypt(row.passwordCiphertext, vncPasswordContext(row.allocationId, row.passwordVersion)) : await rotatePassword(em, deps.vault, row);
        const cmd = vnc.deployVnc(a.osUsername, vnc.vncPasswordFile(password));
        const r = check(await deps.ssh.exec(a.host.id, cmd.script, { timeoutMs: 300_000, stdin: cmd.stdin }), `deploy VNC for ${a.osUsername}`);
        const m = parseMarkers(r.stdout);
        const display = Number(m.find((x) => x.marker === 'VNC_DISPLAY')?.value);
        const port = Number(m.find((x) => x.marker === 'VNC_PORT')?.value);
        if (!Number.isInteger(display) || !Number.isInteger(port)) throw ApplicationFailure.retryable(`deploying VNC for ${a.osUsername} reported no display/port`, 'VncDeployFailed');
        const entry = await ensureEntry(deps.em, a.host.id, { protocol: 'vnc', targetPort: port }, { ...(deps.gatewayPorts ?? defaultGatewayPorts(deps.baseDomain)), baseDomain: deps.baseDomain });
        row.status = 'running';
        row.display = display;
        row.rfbPort = port;
        await em.flush();
        return { display, port, started: m.some((x) => x.marker === 'VNC_STARTED'), installed: m.some((x) => x.marker === 'VNC_INSTALLED'), publicPort: entry.publicPort };
      });
    },

    /**
     * Reclaim: stops the customer's VNC server, removes its lock, socket and files, deletes its
     * remote-access entry and wipes the stored password.
     */
    async removeVnc(allocationId: string): Promise<{ stopped: number; filesRemoved: number; entryRemoved: boolean } | { skipped: string }> {
      return classified(async () => {
        const em = deps.em.fork();
        const { a, row } = await load(em, allocationId);
        if (!row || row.status === 'removed') return { skipped: 'no VNC service' };
        const m = parseMarkers(check(await deps.ssh.exec(a.host.id, vnc.removeVnc(a.osUsername), { timeoutMs: 60_000 }), `remove VNC of ${a.osUsername}`).stdout);
        const removed = row.rfbPort ? await em.nativeDelete(RemoteAccessSchema, { host: a.host.id, protocol: 'vnc', targetPort: row.rfbPort }) : 0;
        row.status = 'removed';
        row.passwordCiphertext = null;
        row.passwordKeyId = null;
        await em.flush();
        return { stopped: Number(m.find((x) => x.marker === 'VNC_STOPPED')?.value ?? 0), filesRemoved: Number(m.find((x) => x.marker === 'VNC_FILES_REMOVED')?.value ?? 0), entryRemoved: removed > 0 };
      });
    },

    /**
     * (Re)starts the allocation's VNC server (POST /allocations/:id/vnc/restart → host-account op
     * `restart-vnc`), idempotently: a running, listening server is left alone; a dead one (host
     * reboot, crash, killed) starts again on its display when free, else on the next free one
     * (the remote-access entry follows: same public port, new target port). The password file is
     * kept; when it is gone, a new password is generated (stored encrypted, revealed once) and
     * written. Only for a running service of an active allocation.
     */
    async restartVncServer(accountId: string): Promise<{ state: 'running' | 'started'; display: number; port: number; previousPort: number | null; killedHung: boolean; staleRemoved: number; passwordRotated: boolean; version: number }> {
      return classified(async () => {
        const em = deps.em.fork();
        const account = await em.findOne(HostAccountSchema, { id: accountId });
        if (!account?.createdFromAllocationId) throw ApplicationFailure.nonRetryable(`account ${accountId} belongs to no allocation`, 'NotFound');
        const { a, row } = await load(em, account.createdFromAllocationId);
        if (!row || row.status !== 'running') throw ApplicationFailure.nonRetryable(`allocation ${a.id} has no running VNC service`, 'NotRunning');
        if (!['active', 'buffer'].includes(a.status)) throw ApplicationFailure.nonRetryable(`allocation ${a.id} is ${a.status}: its VNC server is not restarted`, 'NotRunning');
        const exec = (passwordFile?: Buffer) => {
          const cmd = vnc.restartVnc(a.osUsername, { display: row.display, ...(passwordFile ? { passwordFile } : {}) });
          return deps.ssh.exec(a.host.id, cmd.script, { timeoutMs: 120_000, stdin: cmd.stdin });
        };
        let r = await exec();
        let passwordRotated = false;
        if (r.exitCode === 12 && /HOSTFLOW_VNC_NO_PASSWORD_FILE/.test(r.stdout)) {
          // The file is gone (the customer removed ~/.vnc): a new password, revealed once like the first.
          r = await exec(vnc.vncPasswordFile(await rotatePassword(em, deps.vault, row)));
          passwordRotated = true;
        }
        if (r.exitCode === 10) throw ApplicationFailure.nonRetryable(`Xvnc is no longer installed on ${a.host.slug}`, 'VncNotInstalled');
        const m = parseMarkers(check(r, `restart VNC for ${a.osUsername}`).stdout);
        const display = Number(m.find((x) => x.marker === 'VNC_DISPLAY')?.value);
        const port = Number(m.find((x) => x.marker === 'VNC_PORT')?.value);
        if (!Number.isInteger(display) || !Number.isInteger(port)) throw ApplicationFailure.retryable(`restarting VNC for ${a.osUsername} reported no display/port`, 'VncDeployFailed');
        const previousPort = row.rfbPort ?? null;
        if (previousPort !== port) {
          // Same public port (the customer's gateway address stays), new upstream.
          const moved = previousPort ? await em.nativeUpdate(RemoteAccessSchema, { host: a.host.id, protocol: 'vnc', targetPort: previousPort }, { targetPort: port }) : 0;
          if (!moved) await ensureEntry(deps.em, a.host.id, { protocol: 'vnc', targetPort: port }, { ...(deps.gatewayPorts ?? defaultGatewayPorts(deps.baseDomain)), baseDomain: deps.baseDomain });
        }
        row.display = display;
        row.rfbPort = port;
        await em.flush();
        return {
          state: m.some((x) => x.marker === 'VNC_RUNNING') ? 'running' : 'started',
          display,
          port,
          previousPort,
          killedHung: m.some((x) => x.marker === 'VNC_KILLED_HUNG'),
          staleRemoved: Number(m.find((x) => x.marker === 'VNC_STALE_REMOVED')?.value ?? 0),
          passwordRotated,
          version: row.passwordVersion,
        };
      });
    },

    /** A new VNC password (POST /allocations/:id/vnc/password/reset → host-account op `reset-vnc-password`): stored, then written to the host. */
    async resetVncPassword(accountId: string): Promise<{ version: number }> {
      return classified(async () => {
        const em = deps.em.fork();
        const account = await em.findOne(HostAccountSchema, { id: accountId });
        if (!account?.createdFromAllocationId) throw ApplicationFailure.nonRetryable(`account ${accountId} belongs to no allocation`, 'NotFound');
        const { a, row } = await load(em, account.createdFromAllocationId);
        if (!row || row.status !== 'running') throw ApplicationFailure.nonRetryable(`allocation ${a.id} has no running VNC service`, 'NotRunning');
        const password = await rotatePassword(em, deps.vault, row);
        const cmd = vnc.writeVncPassword(a.osUsername, vnc.vncPasswordFile(password));
        check(await deps.ssh.exec(a.host.id, cmd.script, { timeoutMs: 60_000, stdin: cmd.stdin }), `write the VNC password of ${a.osUsername}`);
        return { version: row.passwordVersion };
      });
    },
  };
}
