// The audit chain's hashing, shared by recordAudit (content hash), the migration (backfill), the
// verifier and the archiver. The chain link itself is computed by the database trigger
// `audit_events_chain` with the same formula as chainHash() below (PostgreSQL's sha256()).
import { createHash } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);

/** The fields a content hash covers, in this order (version 1). */
export interface AuditContent {
  id: string;
  at: Date;
  actor: string;
  actorType: string;
  actorId: string | null;
  action: string;
  targetType: string;
  targetId: string;
  result: string;
  reason: string | null;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  before: unknown;
  after: unknown;
  detail: unknown;
}

/**
 * JSON with object keys sorted at every level, so a value reads back from jsonb (which reorders
 * keys) to the same text. Values are first normalised through JSON (Dates become ISO strings,
 * undefined members vanish) — recordAudit stores that normal form, so what is stored is what is hashed.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** JSON round trip: the form jsonb gives back (no Dates, no undefined, no functions). */
export function jsonNormal<T>(v: T): T | null {
  if (v === undefined || v === null) return null;
  return JSON.parse(JSON.stringify(v)) as T;
}

export const sha256Hex = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

export function contentHash(c: AuditContent): string {
  return sha256Hex(
    canonicalJson([
      1,
      c.id,
      c.at.getTime(),
      c.actor,
      c.actorType,
      c.actorId,
      c.action,
      c.targetType,
      c.targetId,
      c.result,
      c.reason,
      c.ip,
      c.userAgent,
      c.requestId,
      jsonNormal(c.before),
      jsonNormal(c.after),
      jsonNormal(c.detail),
    ]),
  );
}

/** The link: sha256(prev_hash ‖ '\n' ‖ seq ‖ '\n' ‖ content_hash) — the trigger computes the same. */
export const chainHash = (prevHash: string, seq: number, content: string) => sha256Hex(`${prevHash}\n${seq}\n${content}`);

/** The row triggers' DDL (also declared on the entities so the schema diff leaves them alone). */
export const TRIGGER_DDL = {
  chain: `create trigger audit_events_chain before insert on "audit_events" for each row execute function audit_events_chain();`,
  guard: `create trigger audit_events_guard before update or delete on "audit_events" for each row execute function audit_events_guard();`,
  chainGuard: `create trigger audit_chain_guard before update or delete on "audit_chain" for each row execute function audit_chain_guard();`,
  archivesGuard: `create trigger audit_archives_guard before update or delete on "audit_archives" for each row execute function audit_archives_guard();`,
};

/** SQL that installs the chain trigger, the append-only guards and the head row (used by the migration). */
export const AUDIT_TRIGGERS_SQL = [
  `create or replace function audit_events_chain() returns trigger language plpgsql as $$
declare
  head record;
begin
  if new.content_hash is null or new.content_hash !~ '^[0-9a-f]{64}$' then
    raise exception 'audit_events: content_hash is required' using errcode = 'check_violation';
  end if;
  -- The head row lock serialises appends until commit: concurrent inserts cannot fork the chain,
  -- and a rolled-back insert rolls the head back with it.
  select seq, hash into head from audit_chain where id = 1 for update;
  if not found then
    raise exception 'audit_chain head row missing';
  end if;
  new.seq := head.seq + 1;
  new.prev_hash := head.hash;
  new.hash := encode(sha256(convert_to(head.hash || E'\\n' || new.seq::text || E'\\n' || new.content_hash, 'UTF8')), 'hex');
  update audit_chain set seq = new.seq, hash = new.hash where id = 1;
  return new;
end $$;`,
  TRIGGER_DDL.chain,
  `create or replace function audit_events_guard() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE'
     and coalesce(current_setting('hostflow.audit_archive', true), '') = 'on'
     and old.seq <= (select archived_seq from audit_chain where id = 1) then
    return old;
  end if;
  raise exception 'audit_events is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
end $$;`,
  TRIGGER_DDL.guard,
  `create or replace function audit_refuse_truncate() returns trigger language plpgsql as $$
begin
  raise exception '% is append-only: TRUNCATE refused', tg_table_name using errcode = 'insufficient_privilege';
end $$;`,
  `create trigger audit_events_no_truncate before truncate on "audit_events" for each statement execute function audit_refuse_truncate();`,
  `create trigger audit_archives_no_truncate before truncate on "audit_archives" for each statement execute function audit_refuse_truncate();`,
  `create trigger audit_chain_no_truncate before truncate on "audit_chain" for each statement execute function audit_refuse_truncate();`,
  `create or replace function audit_chain_guard() returns trigger language plpgsql as $$
begin
  -- The head moves only from the chain trigger (depth 2), or forward to an archive cut.
  if tg_op = 'UPDATE' and pg_trigger_depth() > 1 then
    return new;
  end if;
  if tg_op = 'UPDATE' and coalesce(current_setting('hostflow.audit_archive', true), '') = 'on'
     and new.seq = old.seq and new.hash = old.hash and new.archived_seq >= old.archived_seq
     and exists (select 1 from audit_archives a where a.last_seq = new.archived_seq and a.head_hash = new.archived_hash) then
    return new;
  end if;
  raise exception 'audit_chain: % refused', tg_op using errcode = 'insufficient_privilege';
end $$;`,
  TRIGGER_DDL.chainGuard,
  `create or replace function audit_archives_guard() returns trigger language plpgsql as $$
begin
  raise exception 'audit_archives is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
end $$;`,
  TRIGGER_DDL.archivesGuard,
];
