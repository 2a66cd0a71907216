import { createHash } from 'node:crypto';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Logger } from '../../config/logger.js';
import type { Vault } from '../../db/vault.js';
import { COMMAND_OUTPUT_LIMIT, CommandRecordSchema, HostSchema } from '../../db/entities/index.js';
import { RemoteError, type ExecResult, type RemoteExecutor } from './executor.js';
import { activityInfo, classifyCommand } from './audited-executor.js';
import { resolveHostTarget } from './host-targets.js';

const REDACTED = '[redacted]';
/** Of COMMAND_OUTPUT_LIMIT, the head kept; the rest is the tail (errors are usually at the end). */
const HEAD_BYTES = 16 * 1024;

/**
 * The secrets a command's input carries: every stdin line, and for `name:secret` lines (chpasswd
 * input) the part after the first colon on its own, so an echo of either is caught.
 */
export function stdinSecrets(stdin: string | undefined): string[] {
  if (!stdin) return [];
  const out: string[] = [];
  for (const line of stdin.split(/\r?\n/)) {
    const l = line.trim();
    if (!l) continue;
    out.push(l);
    const m = /^[^:\s]+:(.+)$/.exec(l);
    if (m) out.push(m[1]!);
  }
  return out;
}

/**
 * Removes secrets from command output before it is stored: the given ones (the command's stdin,
 * the host's own credentials), then what looks like one whatever printed it — PEM private-key
 * blocks, `password=`/`token:`/`api_key=`-style assignments, Bearer/Basic credentials, and
 * well-known token shapes (GitHub, Slack, AWS access key ids, JWTs). NUL bytes (which PostgreSQL
 * text refuses) become U+FFFD.
 */
export function redactOutput(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(/\u0000/g, '\uFFFD');
  for (const s of [...new Set(secrets)].filter((x) => x.length >= 4).sort((a, b) => b.length - a.length)) out = out.split(s).join(REDACTED);
  out = out.replace(/-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|$)/g, `-----BEGIN $1PRIVATE KEY-----${REDACTED}-----END $1PRIVATE KEY-----`);
  out = out.replace(
    /\b([A-Za-z0-9_.-]*(?:password|passwd|passphrase|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)s?)(\s*[:=]\s*)("[^"\n]*"|'[^'\n]*'|[^\s,;]+)/gi,
    `$1$2${REDACTED}`,
  );
  out = out.replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g, `$1 ${REDACTED}`);
  out = out.replace(/\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})/g, REDACTED);
  return out;
}

/**
 * Bounds one stream to `limit` bytes of UTF-8: the first 16 KiB and the last bytes that fit, with
 * a line saying how much was left out between them.
 */
export function boundOutput(text: string, limit = COMMAND_OUTPUT_LIMIT): { text: string; truncated: boolean } {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= limit) return { text, truncated: false };
  const head = Math.min(HEAD_BYTES, Math.floor(limit / 4));
  // Room for the marker, and for the U+FFFD a cut through a multi-byte character may become.
  const marker = (omitted: number) => `\n[… ${omitted} bytes omitted …]\n`;
  const tail = limit - head - Buffer.byteLength(marker(buf.length)) - 8;
  const omitted = buf.length - head - tail;
  return { text: buf.subarray(0, head).toString('utf8') + marker(omitted) + buf.subarray(buf.length - tail).toString('utf8'), truncated: true };
}

export interface CommandRecordDeps {
  em: SqlEntityManager;
  vault: Vault;
  logger: Logger;
}

/** The host's own login secrets (its management password / private key), so output quoting them is redacted too. */
async function hostSecrets(deps: CommandRecordDeps, hostId: string): Promise<string[]> {
  try {
    const t = await resolveHostTarget(deps.em, deps.vault, hostId);
    return [t.password, ...(t.privateKey ? t.privateKey.split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----')) : [])].filter((s): s is string => !!s);
  } catch {
    return [];
  }
}

/**
 * Wraps an executor so that every command that changes a host (the audit's classification:
 * account operations, key edits, reclaim steps, template steps; read-only probes are left out)
 * leaves a command record with its full output — redacted (redactOutput) and bounded to
 * COMMAND_OUTPUT_LIMIT per stream — plus exit code, duration, builder, command hash and the
 * workflow/activity that ran it. The command text and its stdin are never stored. A record that
 * cannot be written is logged and does not fail the command (the audit trail is the must-have).
 */
export function recordedExecutor<E extends RemoteExecutor>(inner: E, deps: CommandRecordDeps): E {
  const exec: RemoteExecutor['exec'] = async (hostId, command, opts) => {
    const kind = classifyCommand(command);
    if (!kind.change) return inner.exec(hostId, command, opts);
    const startedAt = new Date();
    let result: ExecResult | undefined;
    let error: unknown;
    try {
      result = await inner.exec(hostId, command, opts);
    } catch (err) {
      error = err;
    }
    try {
      const secrets = [...stdinSecrets(opts?.stdin), ...(await hostSecrets(deps, hostId))];
      const stdout = boundOutput(redactOutput(result?.stdout ?? '', secrets));
      const stderr = boundOutput(redactOutput(result?.stderr ?? '', secrets));
      const act = activityInfo();
      const em = deps.em.fork();
      const message = error ? (error instanceof RemoteError ? `${error.type}: ${error.message}` : (error as Error).message ?? String(error)) : null;
      em.create(CommandRecordSchema, {
        host: em.getReference(HostSchema, hostId),
        workflowId: act?.workflowId.slice(0, 300) ?? null,
        runId: act?.runId ?? null,
        activityType: act?.activityType.slice(0, 100) ?? null,
        attempt: act?.attempt ?? null,
        builder: kind.builder.slice(0, 100),
        commandSha256: createHash('sha256').update(command).digest('hex'),
        stdin: opts?.stdin !== undefined,
        exitCode: result?.exitCode ?? null,
        error: message === null ? null : redactOutput(message, secrets).slice(0, 2000),
        stdout: stdout.text,
        stderr: stderr.text,
        stdoutBytes: Buffer.byteLength(result?.stdout ?? ''),
        stderrBytes: Buffer.byteLength(result?.stderr ?? ''),
        truncated: stdout.truncated || stderr.truncated,
        startedAt,
        durationMs: result?.durationMs ?? Date.now() - startedAt.getTime(),
      });
      await em.flush();
    } catch (err) {
      deps.logger.warn({ hostId, builder: kind.builder, err: (err as Error).message }, 'command record not written');
    }
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
