import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Logger } from '../../config/logger.js';
import { appendAudit } from '../../db/audit/service.js';
import type { ExecResult, RemoteExecutor } from './executor.js';
import { RemoteError } from './executor.js';
import { LINUX_FACTS_COMMAND, WINDOWS_FACTS_SCRIPT } from './facts.js';

/** Linux builders that only read (their `$0` name, see linux.ts sh()/sudoSh()/asUserInHome()). */
const READ_ONLY_BUILDERS = new Set([
  'hostflow-user-exists',
  'hostflow-read-marker',
  'hostflow-user-groups',
  'hostflow-tenant-footprint',
  'hostflow-user-uid',
  'hostflow-list-authorized-keys',
]);
const READ_ONLY_COMMANDS = new Set(['true', 'exit 0', LINUX_FACTS_COMMAND, WINDOWS_FACTS_SCRIPT]);
const WINDOWS_CHANGE = /\b((?:New|Set|Add|Remove|Disable|Enable|Rename)-Local[A-Za-z]+)\b/;

/**
 * Which command builder produced `command`, and whether it changes the host. Linux builders name
 * themselves as the `$0` argument of `sh -c '<script>' '<name>' …` (a quoted argument right after
 * the script: inside the quoted script a quote is always `'\''`, so ` '<name>'` cannot occur
 * there). PowerShell builders are named by their first changing cmdlet. Anything else (template
 * steps, nginx checks) is `command` and counts as a change.
 */
export function classifyCommand(command: string): { builder: string; change: boolean } {
  if (READ_ONLY_COMMANDS.has(command)) return { builder: command === LINUX_FACTS_COMMAND || command === WINDOWS_FACTS_SCRIPT ? 'facts' : 'noop', change: false };
  const linux = / '(hostflow-[a-z0-9-]+)'(?= |$)/.exec(command);
  if (linux) return { builder: linux[1]!, change: !READ_ONLY_BUILDERS.has(linux[1]!) };
  if (command.startsWith("$ErrorActionPreference = 'Stop'")) {
    const ps = WINDOWS_CHANGE.exec(command);
    return ps ? { builder: `ps:${ps[1]}`, change: true } : { builder: 'ps:read', change: false };
  }
  return { builder: 'command', change: true };
}

/** The running activity (null outside one): who ran a command, for the audit and the command records. */
export function activityInfo(): { workflowId: string; runId: string | null; activityType: string; attempt: number } | null {
  try {
    const { info } = Context.current();
    return { workflowId: info.workflowExecution?.workflowId ?? 'unknown', runId: info.workflowExecution?.runId ?? null, activityType: info.activityType, attempt: info.attempt };
  } catch {
    return null;
  }
}

/**
 * Wraps an executor so that every remote change is audited: host, command builder, exit code,
 * duration, the activity and workflow that ran it (actor `system:<workflowId>`), and the SHA-256
 * of the command — never the command text or its stdin (passwords travel there). Read-only
 * builders are not recorded. A failed audit write fails the call (no unaudited change goes
 * silently; the activity's retry is check-then-act).
 */
export function auditedExecutor<E extends RemoteExecutor>(inner: E, deps: { em: SqlEntityManager; logger: Logger }): E {
  const exec: RemoteExecutor['exec'] = async (hostId, command, opts) => {
    const kind = classifyCommand(command);
    if (!kind.change) return inner.exec(hostId, command, opts);
    const started = Date.now();
    let result: ExecResult | undefined;
    let error: unknown;
    try {
      result = await inner.exec(hostId, command, opts);
    } catch (err) {
      error = err;
    }
    const act = activityInfo();
    const workflowId = act?.workflowId ?? 'unknown';
    await appendAudit(deps.em, {
      actor: `system:${workflowId}`.slice(0, 100),
      actorType: 'system',
      actorId: workflowId,
      ip: null,
      userAgent: null,
      requestId: null,
      action: 'remote.exec',
      targetType: 'host',
      targetId: hostId,
      result: result && result.exitCode === 0 ? 'success' : 'failure',
      reason: error ? (error instanceof RemoteError ? `${error.type}: ${error.message}` : (error as Error).message) : result!.exitCode !== 0 ? `exit ${result!.exitCode}` : null,
      detail: {
        builder: kind.builder,
        activity: act?.activityType ?? null,
        attempt: act?.attempt ?? null,
        exit_code: result?.exitCode ?? null,
        duration_ms: result?.durationMs ?? Date.now() - started,
        command_sha256: createHash('sha256').update(command).digest('hex'),
        stdin: opts?.stdin === undefined ? false : true,
      },
    });
    if (error) throw error;
    return result!;
  };
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'exec') return exec;
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
