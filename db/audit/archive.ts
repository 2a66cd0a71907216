// Retention: rows older than a cut-off go to a gzip JSON-lines file under DATA_DIR/audit-archive/
// with the chain head they end on, then are deleted — in one transaction that moves
// audit_chain.archived_seq/archived_hash forward, so `verify` starts from the archived head.
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { createGzip, gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { AuditChainSchema, AuditEventSchema, type AuditEvent } from '../entities/index.js';
import { auditDto } from './query.js';
import { chainHash, GENESIS_HASH } from './chain.js';
import { rowContent } from './verify.js';

export interface ArchiveResult {
  rows: number;
  firstSeq?: number;
  lastSeq?: number;
  headHash?: string;
  file?: string;
}

/**
 * Archives the longest prefix of the live chain whose rows are all older than `before` (the chain
 * is cut by seq, so a row whose clock ran behind never leaves a hole). Verifies the prefix before
 * writing it: a tampered chain is not archived (the error names the row). Idempotent: a retry
 * after a crash before the commit rewrites the same file; after the commit there is nothing to do.
 */
export async function archiveAudit(em: SqlEntityManager, o: { before: Date; dir: string; batch?: number }): Promise<ArchiveResult> {
  const batch = o.batch ?? 5000;
  const head = await em.fork().findOneOrFail(AuditChainSchema, { id: 1 });
  const from = Number(head.archivedSeq);
  const firstYoung = await em.fork().findOne(AuditEventSchema, { seq: { $gt: from }, at: { $gte: o.before } }, { orderBy: { seq: 'asc' }, fields: ['seq'] });
  const lastSeq = firstYoung ? Number(firstYoung.seq) - 1 : Number(head.seq);
  if (lastSeq <= from) return { rows: 0 };

  await mkdir(o.dir, { recursive: true });
  const name = `audit-${String(from + 1).padStart(12, '0')}-${String(lastSeq).padStart(12, '0')}.jsonl.gz`;
  const file = join(o.dir, name);
  const tmp = `${file}.tmp`;
  let prevHash = head.archivedHash ?? GENESIS_HASH;
  let seq = from;
  const lines = async function* () {
    yield JSON.stringify({ kind: 'audit-archive', version: 1, first_seq: from + 1, last_seq: lastSeq, prev_hash: prevHash }) + '\n';
    for (;;) {
      const rows: AuditEvent[] = await em.fork().find(AuditEventSchema, { seq: { $gt: seq, $lte: lastSeq } }, { orderBy: { seq: 'asc' }, limit: batch, disableIdentityMap: true });
      for (const r of rows) {
        const s = Number(r.seq);
        if (s !== seq + 1 || rowContent(r) !== r.contentHash || r.prevHash !== prevHash || chainHash(prevHash, s, r.contentHash) !== r.hash) {
          throw new Error(`audit chain broken at seq ${seq + 1}: run \`hostflow audit verify\`; nothing archived`);
        }
        seq = s;
        prevHash = r.hash!;
        yield JSON.stringify({ ...auditDto(r), content_hash: r.contentHash }) + '\n';
      }
      if (rows.length < batch) break;
    }
    if (seq !== lastSeq) throw new Error(`audit chain ends at seq ${seq}, expected ${lastSeq}: nothing archived`);
    yield JSON.stringify({ kind: 'audit-archive-head', last_seq: lastSeq, head_hash: prevHash }) + '\n';
  };
  try {
    await pipeline(Readable.from(lines()), createGzip(), createWriteStream(tmp, { mode: 0o600 }));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const fileSha256 = createHash('sha256').update(await readFile(tmp)).digest('hex');
  await rename(tmp, file);

  await em.fork().transactional(async (tx) => {
    const ctx = tx.getTransactionContext();
    const conn = tx.getConnection();
    // The only door through the append-only trigger: this transaction's setting + rows already archived.
    await conn.execute(`select set_config('hostflow.audit_archive', 'on', true)`, [], 'all', ctx);
    await conn.execute(`insert into "audit_archives" ("id", "first_seq", "last_seq", "prev_hash", "head_hash", "rows", "file", "file_sha256", "before", "created_at") values (gen_random_uuid(), ?, ?, ?, ?, ?, ?, ?, ?, now())`, [from + 1, lastSeq, head.archivedHash, prevHash, lastSeq - from, name, fileSha256, o.before], 'run', ctx);
    const moved = await conn.execute(`update "audit_chain" set "archived_seq" = ?, "archived_hash" = ? where "id" = 1 and "archived_seq" = ?`, [lastSeq, prevHash, from], 'run', ctx);
    if (((moved as { affectedRows?: number }).affectedRows ?? 0) !== 1) throw new Error('another archive run moved the chain head first');
    await conn.execute(`delete from "audit_events" where "seq" > ? and "seq" <= ?`, [from, lastSeq], 'run', ctx);
  });
  return { rows: lastSeq - from, firstSeq: from + 1, lastSeq, headHash: prevHash, file };
}

/** Reads an archive file back and checks its chain (for `hostflow audit verify --archives`). */
export async function verifyArchiveFile(file: string): Promise<{ firstSeq: number; lastSeq: number; prevHash: string; headHash: string; rows: number }> {
  const text = gunzipSync(await readFile(file)).toString('utf8').trimEnd().split('\n');
  const header = JSON.parse(text[0]!) as { first_seq: number; last_seq: number; prev_hash: string };
  const tail = JSON.parse(text[text.length - 1]!) as { head_hash: string; last_seq: number };
  let prev = header.prev_hash;
  let seq = header.first_seq - 1;
  for (const line of text.slice(1, -1)) {
    const r = JSON.parse(line) as ReturnType<typeof auditDto> & { content_hash: string };
    const content = rowContent({ ...r, at: new Date(r.at), actorType: r.actor_type, actorId: r.actor_id, targetType: r.target_type, targetId: r.target_id, userAgent: r.user_agent, requestId: r.request_id } as unknown as AuditEvent);
    if (r.seq !== seq + 1) throw new Error(`${file}: seq ${seq + 1} missing`);
    if (content !== r.content_hash || r.prev_hash !== prev || chainHash(prev, r.seq, r.content_hash) !== r.hash) throw new Error(`${file}: row seq ${r.seq} does not verify`);
    seq = r.seq;
    prev = r.hash!;
  }
  if (seq !== tail.last_seq || prev !== tail.head_hash) throw new Error(`${file}: head does not match its rows`);
  return { firstSeq: header.first_seq, lastSeq: tail.last_seq, prevHash: header.prev_hash, headHash: tail.head_hash, rows: tail.last_seq - header.first_seq + 1 };
}
