// `hostflow audit verify`: recomputes every live row's content hash and chain link, in seq order,
// from the archived head (audit_chain.archived_seq / archived_hash) to the chain head.
import type { SqlEntityManager } from '@mikro-orm/sql';
import { AuditChainSchema, AuditEventSchema, type AuditEvent } from '../entities/index.js';
import { chainHash, contentHash, GENESIS_HASH } from './chain.js';

export interface VerifyProblem {
  kind: 'content_mismatch' | 'hash_mismatch' | 'link_mismatch' | 'gap' | 'head_mismatch';
  seq: number;
  id?: string;
  message: string;
}

export interface VerifyResult {
  ok: boolean;
  checked: number;
  fromSeq: number;
  headSeq: number;
  /** The first problem found (verification stops there: later links hang off a bad row). */
  problem?: VerifyProblem;
}

export const rowContent = (r: AuditEvent) =>
  contentHash({
    id: r.id,
    at: r.at,
    actor: r.actor,
    actorType: r.actorType,
    actorId: r.actorId ?? null,
    action: r.action,
    targetType: r.targetType,
    targetId: r.targetId,
    result: r.result,
    reason: r.reason ?? null,
    ip: r.ip ?? null,
    userAgent: r.userAgent ?? null,
    requestId: r.requestId ?? null,
    before: r.before ?? null,
    after: r.after ?? null,
    detail: r.detail ?? null,
  });

export async function verifyAuditChain(em: SqlEntityManager, opts: { batch?: number } = {}): Promise<VerifyResult> {
  const batch = opts.batch ?? 5000;
  const head = await em.fork().findOne(AuditChainSchema, { id: 1 });
  if (!head) throw new Error('audit_chain head row missing (migrations not applied?)');
  const fromSeq = Number(head.archivedSeq);
  let prevSeq = fromSeq;
  let prevHash = head.archivedHash ?? GENESIS_HASH;
  let checked = 0;
  const fail = (problem: VerifyProblem): VerifyResult => ({ ok: false, checked, fromSeq, headSeq: Number(head.seq), problem });
  for (;;) {
    const rows = await em.fork().find(AuditEventSchema, { seq: { $gt: prevSeq } }, { orderBy: { seq: 'asc' }, limit: batch, disableIdentityMap: true });
    for (const r of rows) {
      const seq = Number(r.seq);
      if (seq !== prevSeq + 1) {
        return fail({ kind: 'gap', seq: prevSeq + 1, message: seq === prevSeq + 2 ? `row seq ${prevSeq + 1} is missing (deleted): seq ${prevSeq} is followed by seq ${seq}` : `rows seq ${prevSeq + 1}..${seq - 1} are missing (deleted): seq ${prevSeq} is followed by seq ${seq}` });
      }
      if (rowContent(r) !== r.contentHash) {
        return fail({ kind: 'content_mismatch', seq, id: r.id, message: `row seq ${seq} (id ${r.id}, ${r.action} at ${r.at.toISOString()}) was edited: its content does not match its content hash` });
      }
      if (r.prevHash !== prevHash) {
        return fail({ kind: 'link_mismatch', seq, id: r.id, message: `row seq ${seq} (id ${r.id}) does not link to the row before it (prev_hash differs)` });
      }
      if (chainHash(prevHash, seq, r.contentHash) !== r.hash) {
        return fail({ kind: 'hash_mismatch', seq, id: r.id, message: `row seq ${seq} (id ${r.id}) has a wrong chain hash` });
      }
      prevSeq = seq;
      prevHash = r.hash!;
      checked++;
    }
    if (rows.length < batch) break;
  }
  if (prevSeq !== Number(head.seq) || prevHash !== head.hash) {
    return fail({ kind: 'head_mismatch', seq: prevSeq + 1, message: prevSeq < Number(head.seq) ? `rows seq ${prevSeq + 1}..${head.seq} are missing (deleted at the end of the chain): the head says ${head.seq}` : `the chain head (seq ${head.seq}) does not match the last row (seq ${prevSeq})` });
  }
  return { ok: true, checked, fromSeq, headSeq: Number(head.seq) };
}
