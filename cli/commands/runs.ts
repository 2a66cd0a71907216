import type { Command } from 'commander';
import { userInfo } from 'node:os';
import { env } from '../../config/env.js';
import { appendAudit } from '../../db/audit/service.js';
import { withContext, print } from '../context.js';
import { openTemporal, type CliTemporal } from '../temporal.js';
import { findStuckRuns, resetRun, type ResetPoint } from '../runs.service.js';

/** Who acts: the OS user running the CLI (the audit's actor). */
const cliActor = () => `cli:${process.env.SUDO_USER || userInfo().username}`;

async function withTemporal(fn: (t: CliTemporal) => Promise<void>): Promise<void> {
  const t = await openTemporal(env());
  try {
    await fn(t);
  } finally {
    await t.connection.close();
  }
}

export function runsCommands(program: Command): void {
  const runs = program.command('runs').description('workflow runs in Temporal: find stuck ones, terminate, cancel, reset (audited)');

  runs
    .command('stuck')
    .description('running workflows whose activities retried too often or wait too long, or whose next timer is overdue (worker down?), with the last failure')
    .option('--attempts <n>', 'an activity at this attempt or later is stuck', '3')
    .option('--pending-minutes <n>', 'an activity pending this long is stuck', '30')
    .option('--timer-grace-minutes <n>', 'a timer this far past due is overdue', '2')
    .option('--query <visibility query>', 'narrow the running workflows, e.g. \'WorkflowType = "lease"\'')
    .option('--json', 'one JSON object per line')
    .action(async (o: { attempts: string; pendingMinutes: string; timerGraceMinutes: string; query?: string; json?: boolean }) =>
      withTemporal(async (t) => {
        const stuck = await findStuckRuns(t.client, t.payloadKeys, { minAttempts: Number(o.attempts), pendingMs: Number(o.pendingMinutes) * 60_000, timerGraceMs: Number(o.timerGraceMinutes) * 60_000, query: o.query });
        if (o.json) return stuck.forEach((s) => print(JSON.stringify(s)));
        if (!stuck.length) return print('no stuck runs');
        for (const s of stuck) print(`${s.workflowId}  ${s.reason}  ${s.what}${s.attempt ? `  attempt ${s.attempt}` : ''}  since ${s.since ?? '?'}${s.detail ? `\n    ${s.detail}` : ''}${s.lastFailure ? `\n    last failure: ${s.lastFailure}` : ''}`);
      }),
    );

  const act = (name: 'terminate' | 'cancel') =>
    runs
      .command(`${name} <workflowId>`)
      .description(name === 'terminate' ? 'terminate a run now (no cleanup code runs); audited' : 'ask a run to cancel (its compensation runs); audited')
      .requiredOption('--reason <text>', 'why (recorded in Temporal and the audit trail)')
      .option('--run-id <id>', 'a specific run (default: the latest)')
      .action(async (workflowId: string, o: { reason: string; runId?: string }) =>
        withContext(async (ctx) =>
          withTemporal(async (t) => {
            const handle = t.client.workflow.getHandle(workflowId, o.runId);
            const d = await handle.describe();
            if (name === 'terminate') await handle.terminate(o.reason);
            else await handle.cancel();
            await appendAudit(ctx.em, { actor: cliActor(), action: `temporal.run.${name}`, targetType: 'workflow', targetId: workflowId.slice(0, 200), reason: o.reason, detail: { runId: d.runId, workflowType: d.type } });
            print(`${name === 'terminate' ? 'terminated' : 'cancel requested'}: ${workflowId} (run ${d.runId})`);
          }),
        ),
      );
  act('terminate');
  act('cancel');

  runs
    .command('reset <workflowId>')
    .description('reset a run to an earlier workflow task: a new run continues from there with the same history up to it; audited')
    .requiredOption('--reason <text>', 'why (recorded in Temporal and the audit trail)')
    .option('--to <point>', 'last-good-step (re-run the step that failed last), first-task or last-task', 'last-good-step')
    .option('--run-id <id>', 'a specific run (default: the latest)')
    .action(async (workflowId: string, o: { reason: string; to: string; runId?: string }) => {
      if (!['last-good-step', 'first-task', 'last-task'].includes(o.to)) {
        process.stderr.write(`hostflow: --to: must be last-good-step, first-task or last-task\n`);
        process.exitCode = 1;
        return;
      }
      await withContext(async (ctx) =>
        withTemporal(async (t) => {
          const r = await resetRun(t.client, workflowId, { to: o.to as ResetPoint, reason: o.reason, runId: o.runId });
          await appendAudit(ctx.em, { actor: cliActor(), action: 'temporal.run.reset', targetType: 'workflow', targetId: workflowId.slice(0, 200), reason: o.reason, detail: { fromRunId: r.fromRunId, runId: r.runId, eventId: r.eventId, to: o.to } });
          print(`reset ${workflowId} to event ${r.eventId} (${r.why}): new run ${r.runId}`);
        }),
      );
    });
}
