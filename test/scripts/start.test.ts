// `npm start` as a user runs it: a child process in its own process group (like a terminal's
// foreground job), DATA_DIR in a temp dir, free ports. Kills, Ctrl-C and a dying dev server.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { freePort } from '../global-setup.js';
import { createTemporalClient, loadPayloadKeyring } from '../../config/temporal.js';
import { processCmdline, readPidfile } from '../../scripts/dev-server-supervisor.js';
import { npmStart, until, type Run } from '../helpers/start-process.js';


async function readyz(apiPort: number): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${apiPort}/readyz`, { signal: AbortSignal.timeout(2000) });
    return r.status === 200;
  } catch {
    return false;
  }
}

const alive = (pid: number, argv: string[]) => {
  const c = processCmdline(pid);
  return !!c && c.join('\0') === argv.join('\0');
};

/** Runs the platform's host-ping workflow on its task queue: an answer proves its worker polls. */
async function workerAnswers(devPort: number, dataDir: string): Promise<string> {
  const connection = await Connection.connect({ address: `127.0.0.1:${devPort}` });
  try {
    // With the payload keys `npm start` generated into DATA_DIR: its worker encrypts results and failures.
    const client = createTemporalClient({ connection, payloadKeys: await loadPayloadKeyring({ DATA_DIR: dataDir, HOSTFLOW_PAYLOAD_KEYS: undefined }) });
    const workflowId = `host-ping/start-test/${Date.now()}`;
    const handle = await client.workflow.start('hostPing', { workflowId, taskQueue: 'hostflow', args: [{ hostId: '00000000-0000-4000-8000-000000000000' }], workflowExecutionTimeout: '60s' });
    await handle.result().catch((err: unknown) => {
      if (!(err instanceof WorkflowFailedError)) throw err; // the host does not exist: failing is the worker's answer
    });
    return workflowId;
  } finally {
    await connection.close();
  }
}

async function workflowExists(devPort: number, workflowId: string): Promise<boolean> {
  const connection = await Connection.connect({ address: `127.0.0.1:${devPort}` });
  try {
    await new Client({ connection }).workflow.getHandle(workflowId).describe();
    return true;
  } catch {
    return false;
  } finally {
    await connection.close();
  }
}

describe('npm start: process handling', { timeout: 240_000 }, () => {
  const dirs: string[] = [];
  const runs: Run[] = [];
  const servers: Server[] = [];
  afterAll(async () => {
    for (const r of runs) {
      if (r.child.exitCode === null && r.child.signalCode === null) {
        try {
          process.kill(-r.child.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    for (const d of dirs) {
      const rec = readPidfile(join(d, 'temporal-dev.pid'));
      if (rec && alive(rec.pid, rec.argv)) process.kill(rec.pid, 'SIGKILL');
      await rm(d, { recursive: true, force: true });
    }
    for (const s of servers) s.close();
  });

  it('refuses a port held by something that is not its own dev server', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'hostflow-start-'));
    dirs.push(dataDir);
    const [devPort, uiPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const squatter = createServer();
    servers.push(squatter);
    await new Promise<void>((r) => squatter.listen(devPort, '127.0.0.1', () => r()));
    const run = npmStart({ DATA_DIR: dataDir, TEMPORAL_DEV_PORT: String(devPort), TEMPORAL_UI_PORT: String(uiPort), API_PORT: String(apiPort) });
    runs.push(run);
    const { code } = await run.exit;
    expect(code).toBe(1);
    expect(run.log()).toContain(`port ${devPort} (TEMPORAL_DEV_PORT) is already in use`);
  });

  describe('one DATA_DIR across kills', () => {
    let dataDir: string;
    let devPort: number;
    let apiPort: number;
    let env: Record<string, string>;
    let firstWorkflow: string;
    let current: Run;

    it('kill -9 of the dev server: it is restarted on the same DB file, the worker reconnects and /readyz is ready again', async () => {
      dataDir = await mkdtemp(join(tmpdir(), 'hostflow-start-'));
      dirs.push(dataDir);
      devPort = await freePort();
      apiPort = await freePort();
      env = { DATA_DIR: dataDir, TEMPORAL_DEV_PORT: String(devPort), TEMPORAL_UI_PORT: String(await freePort()), API_PORT: String(apiPort) };
      current = npmStart(env);
      runs.push(current);
      await until('npm start to be ready', () => readyz(apiPort), 150_000, current);
      firstWorkflow = await workerAnswers(devPort, dataDir);

      const before = readPidfile(join(dataDir, 'temporal-dev.pid'))!;
      expect(alive(before.pid, before.argv)).toBe(true);
      // The Web UI decodes through the API's codec endpoint; the payload keyring was generated 0600.
      expect(before.argv.join(' ')).toContain(`--ui-codec-endpoint http://127.0.0.1:${apiPort}/api/v1/temporal/codec`);
      expect((statSync(join(dataDir, 'payload-keys')).mode & 0o777).toString(8)).toBe('600');
      process.kill(before.pid, 'SIGKILL');
      await until('the restart log line', () => current.log().includes('restarting it on the same DB file'), 10_000, current);
      const after = await until('a new dev server in the pidfile', () => {
        const rec = readPidfile(join(dataDir, 'temporal-dev.pid'));
        return rec && rec.pid !== before.pid && alive(rec.pid, rec.argv) ? rec : undefined;
      }, 60_000, current);
      expect(after.argv).toEqual(before.argv); // same ports, same DB file
      await until('/readyz after the restart', () => readyz(apiPort), 60_000, current);
      expect(current.child.exitCode).toBeNull();
      expect(await workflowExists(devPort, firstWorkflow)).toBe(true); // state survived: same DB file
      await workerAnswers(devPort, dataDir); // the worker polls the new server
    });

    it('SIGKILL of the whole process group: the next npm start stops the leftover dev server and comes up', async () => {
      const leftover = readPidfile(join(dataDir, 'temporal-dev.pid'))!;
      process.kill(-current.child.pid!, 'SIGKILL');
      await current.exit;
      // The dev server runs in its own process group: it outlives the killed tree (what used to block the next start).
      await delay(500);
      expect(alive(leftover.pid, leftover.argv)).toBe(true);

      current = npmStart(env);
      runs.push(current);
      await until('npm start to be ready again', () => readyz(apiPort), 150_000, current);
      expect(current.log()).toContain(`stopping the Temporal dev server (pid ${leftover.pid}) that a previous \`npm start\``);
      expect(alive(leftover.pid, leftover.argv)).toBe(false);
      expect(await workflowExists(devPort, firstWorkflow)).toBe(true);
      await workerAnswers(devPort, dataDir);
    });

    it('a second npm start on the same DATA_DIR is refused while the first runs', async () => {
      const second = npmStart({ ...env, API_PORT: String(await freePort()) });
      runs.push(second);
      const { code } = await second.exit;
      expect(code).toBe(1);
      expect(second.log()).toMatch(/another `npm start` \(pid \d+\) is running with this DATA_DIR/);
      expect(await readyz(apiPort)).toBe(true); // the first one is untouched
    });

    it('Ctrl-C (SIGINT to the process group) drains, exits 0 and leaves no dev server behind', async () => {
      const server = readPidfile(join(dataDir, 'temporal-dev.pid'))!;
      process.kill(-current.child.pid!, 'SIGINT');
      const { code, signal } = await current.exit;
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      expect(current.log()).toContain('"msg":"stopped"');
      expect(alive(server.pid, server.argv)).toBe(false);
      expect(existsSync(join(dataDir, 'temporal-dev.pid'))).toBe(false);
    });
  });
});
