import { connect } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { EnvTemplateSchema, HostSchema, RemoteAccessSchema, type Host } from '../../db/entities/index.js';
import type { Logger } from '../../config/logger.js';
import type { RemoteExecutor } from './executor.js';
import { classified } from './failures.js';
import { LINUX_FACTS_COMMAND, WINDOWS_FACTS_SCRIPT, compareExpectedGpus, parseLinuxFacts, parseWindowsFacts } from './facts.js';
import { nginxSnippet, planRemoteAccess, type RemoteAccessSpec } from './remote-access.js';
import { checkNginxSnippet } from './nginx-check.js';
import { outputSummary } from './output.js';
import { assignPorts, defaultGatewayPorts, PortPoolError, type GatewayPorts } from '../../db/port-pool.js';
import type { OnboardingStepName } from '../../db/entities/onboarding-step.entity.js';
import { writeOnboardingStep } from '../db/onboarding.activities.js';

/**
 * Passed by the onboarding workflow (patch 'onboarding-step-records'): the activity records its own
 * step in `onboarding_steps`, 'running' when its first attempt starts (and the `skipped` steps
 * before it, which the workflow passed over since the last record) and 'done' with its result as
 * the detail when it succeeds. The workflow records failures. Without it the activity records nothing.
 */
export interface StepRecord {
  step: OnboardingStepName;
  skipped?: OnboardingStepName[];
}

export interface OnboardingDeps {
  em: SqlEntityManager;
  logger: Logger;
  ssh: RemoteExecutor;
  winrm: RemoteExecutor;
  baseDomain: string;
  /** The gateway and its public-port pool (default: gateway = baseDomain, pool 20000-29999). */
  gatewayPorts?: GatewayPorts;
}

/** Heartbeat details of applyTemplate: the steps already done, so a retry resumes after them. */
interface TemplateProgress {
  done: string[];
}

/** The remote steps of host onboarding. Each is idempotent: re-running it converges, never duplicates. */
export function createOnboardingActivities(deps: OnboardingDeps) {
  const exec = (host: Host, cmd: string, opts: Parameters<RemoteExecutor['exec']>[2] = {}) =>
    (host.os === 'windows' ? deps.winrm : deps.ssh).exec(host.id, cmd, { timeoutMs: 60_000, ...opts });
  const load = (em: SqlEntityManager, hostId: string) => em.findOneOrFail(HostSchema, { id: hostId });
  /** Runs a step's work between its 'running' and 'done' records (when the workflow asked for them). */
  const recorded = async <T extends object>(hostId: string, record: StepRecord | undefined, work: () => Promise<T>): Promise<T> => {
    if (!record) return work();
    const start = deps.em.fork();
    for (const step of record.skipped ?? []) await writeOnboardingStep(start, hostId, { step, status: 'skipped' });
    // A retried attempt is the same run of the step: its start is not counted again.
    await writeOnboardingStep(start, hostId, { step: record.step, status: 'running', newAttempt: Context.current().info.attempt === 1 });
    await start.flush();
    const out = await work();
    const end = deps.em.fork();
    await writeOnboardingStep(end, hostId, { step: record.step, status: 'done', detail: out as Record<string, unknown> });
    await end.flush();
    return out;
  };

  return {
    /** Reachable with the stored credentials; pins the host key (SSH) or certificate (WinRM) on first contact. */
    async onboardConnect(hostId: string, record?: StepRecord): Promise<{ fingerprint: string | null }> {
      return recorded(hostId, record, () => classified(async () => {
        const em = deps.em.fork();
        const host = await load(em, hostId);
        const r = await exec(host, host.os === 'windows' ? 'exit 0' : 'true', { timeoutMs: 20_000 });
        if (r.exitCode !== 0) throw ApplicationFailure.retryable(`login works but a no-op exited ${r.exitCode}`, 'RemoteCommandFailed');
        await em.refresh(host);
        return { fingerprint: host.hostKeyFingerprint ?? null };
      }));
    },

    /** lscpu / meminfo / lsblk / nvidia-smi in one round trip (CIM on Windows); stores the facts. */
    async collectHostFacts(hostId: string, record?: StepRecord): Promise<{ cpuCores: number | null; memoryBytes: number | null; gpuCount: number; gpuDifferences: string[] }> {
      return recorded(hostId, record, () => classified(async () => {
        const em = deps.em.fork();
        const host = await load(em, hostId);
        const r = await exec(host, host.os === 'windows' ? WINDOWS_FACTS_SCRIPT : LINUX_FACTS_COMMAND, { timeoutMs: 60_000 });
        if (r.exitCode !== 0) throw ApplicationFailure.retryable(`facts command failed (${outputSummary(r)})`, 'RemoteCommandFailed');
        const facts = host.os === 'windows' ? parseWindowsFacts(r.stdout) : parseLinuxFacts(r.stdout);
        facts.collectedAt = new Date().toISOString();
        host.facts = facts;
        host.lastSeenAt = new Date();
        await em.flush();
        const cmp = compareExpectedGpus(facts, host.expectedGpu ?? undefined);
        return { cpuCores: facts.cpu?.cores ?? null, memoryBytes: facts.memoryBytes ?? null, gpuCount: facts.gpus?.length ?? 0, gpuDifferences: cmp.differences };
      }));
    },

    /**
     * Applies an environment template: for each step, `check` first (exit 0 = already in place),
     * else `command`. Output streams into heartbeats; a retried attempt resumes after the last
     * step recorded in the heartbeat details instead of starting again.
     */
    async applyEnvTemplate(hostId: string, templateId: string, record?: StepRecord): Promise<{ applied: string[]; skipped: string[] }> {
      return recorded(hostId, record, () => classified(async () => {
        const ctx = Context.current();
        const em = deps.em.fork();
        const host = await load(em, hostId);
        const template = await em.findOne(EnvTemplateSchema, { id: templateId });
        if (!template) throw ApplicationFailure.nonRetryable(`environment template ${templateId} does not exist`, 'InvalidInput');
        // A draft can still change under the same id: only published (immutable) versions are applied.
        if (!template.publishedAt) throw ApplicationFailure.nonRetryable(`environment template ${template.name} v${template.version} is a draft; publish it before it is applied`, 'InvalidInput');
        if (template.os !== host.os) throw ApplicationFailure.nonRetryable(`template ${template.name} v${template.version} is for ${template.os}, host is ${host.os}`, 'InvalidInput');
        const progress: TemplateProgress = { done: [...(((ctx.info.heartbeatDetails as TemplateProgress | undefined)?.done) ?? [])] };
        const applied: string[] = [];
        const skipped: string[] = [];
        for (const step of template.steps) {
          if (progress.done.includes(step.name)) {
            skipped.push(step.name);
            continue;
          }
          ctx.heartbeat(progress);
          const check = await exec(host, step.check, { timeoutMs: 60_000, signal: ctx.cancellationSignal });
          if (check.exitCode === 0) {
            skipped.push(step.name);
          } else {
            // Heartbeats say how much output arrived, never what it was (details are stored in history).
            let outputBytes = 0;
            const r = await exec(host, step.command, {
              timeoutMs: (step.timeoutS ?? 1800) * 1000,
              signal: ctx.cancellationSignal,
              onOutput: ({ data }) => {
                outputBytes += Buffer.byteLength(data);
                ctx.heartbeat({ ...progress, step: step.name, outputBytes });
              },
            });
            if (r.exitCode !== 0) {
              throw ApplicationFailure.nonRetryable(`template step "${step.name}" failed (${outputSummary(r)})`, 'TemplateStepFailed');
            }
            const recheck = await exec(host, step.check, { timeoutMs: 60_000 });
            if (recheck.exitCode !== 0) throw ApplicationFailure.nonRetryable(`template step "${step.name}" ran but its check still fails`, 'TemplateStepFailed');
            applied.push(step.name);
          }
          progress.done.push(step.name);
          ctx.heartbeat(progress);
        }
        host.templateId = template.id;
        await em.flush();
        return { applied, skipped };
      }));
    },

    /**
     * Plans domain + services, saves them with public ports from the gateway's pool (unique per
     * gateway, DB-enforced; a re-run keeps the ports), renders and checks the nginx snippet.
     */
    async configureRemoteAccess(hostId: string, spec: RemoteAccessSpec, record?: StepRecord): Promise<{ entries: number; domain: string | null; nginxValidated: boolean; ports?: number[] }> {
      return recorded(hostId, record, () => classified(async () => {
        const em = deps.em.fork();
        const host = await load(em, hostId);
        const plan = planRemoteAccess(host, spec, deps.baseDomain);
        let saved;
        try {
          saved = await assignPorts(em, hostId, plan, deps.gatewayPorts ?? defaultGatewayPorts(deps.baseDomain));
        } catch (err) {
          if (err instanceof PortPoolError) throw ApplicationFailure.nonRetryable(err.message, err.type);
          throw err;
        }
        const check = await checkNginxSnippet(nginxSnippet(host, saved));
        if (!check.ok) throw ApplicationFailure.nonRetryable(check.message, 'NginxConfigInvalid');
        return { entries: saved.length, domain: saved[0]?.publicDomain ?? null, nginxValidated: check.validated, ports: saved.map((e) => e.publicPort) };
      }));
    },

    /** Logs in again (a fresh session) and checks that every enabled service port answers. */
    async verifyHost(hostId: string, record?: StepRecord): Promise<{ checked: string[] }> {
      return recorded(hostId, record, () => classified(async () => {
        const em = deps.em.fork();
        const host = await load(em, hostId);
        (host.os === 'windows' ? deps.winrm : deps.ssh).evict(hostId);
        const r = await exec(host, host.os === 'windows' ? 'exit 0' : 'true', { timeoutMs: 20_000 });
        if (r.exitCode !== 0) throw ApplicationFailure.retryable('login check failed', 'RemoteCommandFailed');
        const entries = await em.find(RemoteAccessSchema, { host: hostId, enabled: true, protocol: { $in: ['vnc', 'rdp'] } });
        const checked = ['login'];
        for (const e of entries) {
          await tcpReachable(host.address, e.targetPort, 5000).catch((err: Error) => {
            throw ApplicationFailure.retryable(`${e.protocol} port ${e.targetPort} on ${host.address} is not reachable: ${err.message}`, 'PortUnreachable');
          });
          checked.push(`${e.protocol}:${e.targetPort}`);
        }
        return { checked };
      }));
    },
  };
}

function tcpReachable(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error('timed out'));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.end();
      resolve();
    });
    s.once('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
  });
}
