import type { Command } from 'commander';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { withContext, print } from '../context.js';
import { env } from '../../config/env.js';
import { verifyAuditChain } from '../../db/audit/verify.js';
import { archiveAudit, verifyArchiveFile } from '../../db/audit/archive.js';
import { AuditArchiveSchema, AuditChainSchema } from '../../db/entities/index.js';

export function auditCommands(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit trail');
  audit
    .command('verify')
    .description('recompute the hash chain from the archived head to the chain head; names the first edited row or gap (exit 1)')
    .option('--archives', 'also check every archive file under DATA_DIR/audit-archive and that they join up with the live chain')
    .action(async (opts: { archives?: boolean }) =>
      withContext(async (ctx) => {
        if (opts.archives) {
          const dir = join(env().DATA_DIR, 'audit-archive');
          const cuts = await ctx.em.fork().find(AuditArchiveSchema, {}, { orderBy: { firstSeq: 'asc' } });
          const files = new Set(await readdir(dir).catch(() => [] as string[]));
          if (!cuts.length) print(`archives: none yet (nothing archived to ${dir}); the live chain is checked below`);
          let prev = '0'.repeat(64);
          let next = 1;
          for (const c of cuts) {
            if (!files.has(c.file)) throw new Error(`archive ${c.file} (seq ${c.firstSeq}..${c.lastSeq}) is missing from ${dir}`);
            const f = await verifyArchiveFile(join(dir, c.file));
            if (f.firstSeq !== next || f.prevHash !== prev || f.headHash !== c.headHash) throw new Error(`archive ${c.file} does not join the chain at seq ${next}`);
            print(`archive ${c.file}: seq ${f.firstSeq}..${f.lastSeq} ok`);
            prev = f.headHash;
            next = f.lastSeq + 1;
          }
          const head = await ctx.em.fork().findOneOrFail(AuditChainSchema, { id: 1 });
          if (Number(head.archivedSeq) !== next - 1 || head.archivedHash !== prev) throw new Error(`the archived head (seq ${head.archivedSeq}) does not match the archive files (seq ${next - 1})`);
        }
        const r = await verifyAuditChain(ctx.em);
        if (r.ok) print(`audit chain ok: ${r.checked} rows, seq ${r.fromSeq + 1}..${r.headSeq}${r.fromSeq ? ` (seq 1..${r.fromSeq} archived)` : ''}`);
        else {
          process.stderr.write(`audit chain BROKEN: ${r.problem!.message}\n(${r.checked} rows verified before it)\n`);
          process.exitCode = 1;
        }
      }),
    );
  audit
    .command('archive')
    .description('archive rows older than --days (default AUDIT_RETENTION_DAYS) now, as the audit-archive Schedule does')
    .option('--days <n>', 'retention in days', (v) => Number(v))
    .action(async (opts: { days?: number }) =>
      withContext(async (ctx) => {
        const days = opts.days ?? env().AUDIT_RETENTION_DAYS;
        const r = await archiveAudit(ctx.em, { before: new Date(Date.now() - days * 86_400_000), dir: join(env().DATA_DIR, 'audit-archive') });
        print(r.rows ? `archived ${r.rows} rows (seq ${r.firstSeq}..${r.lastSeq}) to ${r.file}` : 'nothing to archive');
      }),
    );
}
