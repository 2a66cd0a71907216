/**
 * Audit export benchmark: 100,000 audit rows exported as CSV and as JSON through the platform's
 * streaming export (db/audit/query.ts keyset batches → api/routes/audit/service.ts streamExport →
 * an HTTP response read by a client that discards it), side by side with a baseline: PostgreSQL's
 * own `COPY (…) TO STDOUT WITH CSV` through `psql` (same rows, same order, no application code).
 * Seed 004 asks for 100k-row reports in under 10 s; constant memory is shown by the RSS growth of
 * this process during the export (sampled every 20 ms) staying flat between 10,000 and 100,000 rows.
 *
 *   npm run bench:audit-export                     # PostgreSQL (throwaway cluster) and PGlite, 100,000 rows
 *   BENCH_ROWS=20000 npm run bench:audit-export    # smaller
 *   BENCH_DATABASE_URL=postgres://… npm run bench:audit-export   # that server instead of a throwaway cluster
 *
 * Rows are inserted through the real path (recordAudit's content hash, the chain trigger), in
 * multi-row INSERTs of 1,000, and the chain is verified before the export (its time is printed too).
 * The HTTP server here mounts only streamExport (no auth): the export route's own cost is that call.
 */
import http from 'node:http';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { initORM, type Db } from '../db/orm.js';
import { auditRow } from '../db/audit/service.js';
import { verifyAuditChain } from '../db/audit/verify.js';
import { streamExport } from '../api/routes/audit/service.js';
import { createDatabase, startPostgres } from '../test/helpers/postgres.js';
import { cleanUpOnExit } from './exit.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 100_000);
const COLS = ['id', 'at', 'actor', 'actor_type', 'actor_id', 'action', 'target_type', 'target_id', 'result', 'reason', 'ip', 'user_agent', 'request_id', 'before', 'after', 'detail', 'content_hash'];

async function seed(db: Db, n: number): Promise<number> {
  const t0 = performance.now();
  const conn = db.em.getConnection();
  const start = Date.now() - n * 10;
  for (let off = 0; off < n; off += 1000) {
    const params: unknown[] = [];
    const tuples: string[] = [];
    for (let i = off; i < Math.min(n, off + 1000); i++) {
      const r = auditRow({
        actor: `user${i % 50}`, actorType: 'user', actorId: null, action: i % 3 ? 'host.status' : 'http.post', targetType: 'host', targetId: `host-${i % 500}`,
        result: i % 17 ? 'success' : 'failure', reason: i % 17 ? null : '403 40301: forbidden', ip: `10.0.${i % 250}.${i % 200}`, userAgent: 'bench/1.0', requestId: randomBytes(8).toString('hex'),
        before: { status: 'online' }, after: { status: 'maintenance' }, detail: { i, note: 'bench row, with "quotes", commas and\nnew lines' }, at: new Date(start + i * 10),
      });
      tuples.push(`(${COLS.map(() => '?').join(',')})`);
      params.push(r.id, r.at, r.actor, r.actorType, r.actorId, r.action, r.targetType, r.targetId, r.result, r.reason, r.ip, r.userAgent, r.requestId, JSON.stringify(r.before), JSON.stringify(r.after), JSON.stringify(r.detail), r.contentHash);
    }
    await conn.execute(`insert into "audit_events" (${COLS.map((c) => `"${c}"`).join(',')}) values ${tuples.join(',')}`, params, 'run');
  }
  return performance.now() - t0;
}

/** Serves streamExport on a free port; fetches it; returns ms, bytes and RSS growth during the export. */
async function exportOnce(db: Db, format: 'csv' | 'json', filter: { to?: Date } = {}): Promise<{ ms: number; bytes: number; rssGrowthMb: number; peakRssMb: number }> {
  const server = http.createServer((req, res) => void streamExport(db.em, res as never, filter, format).catch((err: Error) => { console.error(err); res.destroy(err); }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  global.gc?.();
  const base = process.memoryUsage().rss;
  let peak = base;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const t0 = performance.now();
  const bytes = await new Promise<number>((resolve, reject) => {
    http.get(`http://127.0.0.1:${port}/`, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => resolve(n));
      res.on('error', reject);
    }).on('error', reject);
  });
  const ms = performance.now() - t0;
  clearInterval(sampler);
  await new Promise<void>((r) => server.close(() => r()));
  return { ms, bytes, rssGrowthMb: (peak - base) / 2 ** 20, peakRssMb: peak / 2 ** 20 };
}

function psqlBin(): string | null {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const v = readdirSync(base).filter((x) => existsSync(`${base}/${x}/bin/psql`)).sort((a, b) => Number(b) - Number(a))[0];
  return v ? `${base}/${v}/bin/psql` : null;
}

async function copyBaseline(url: string): Promise<{ ms: number; bytes: number } | null> {
  const psql = psqlBin();
  if (!psql) return null;
  const t0 = performance.now();
  const bytes = await new Promise<number>((resolve, reject) => {
    const p = spawn(psql, [url, '-X', '-q', '-c', `\\copy (select seq, at, actor, actor_type, actor_id, action, target_type, target_id, result, reason, ip, user_agent, request_id, before, after, detail, hash from audit_events order by at, id) to stdout with csv header`]);
    let n = 0;
    p.stdout.on('data', (c: Buffer) => (n += c.length));
    p.stderr.pipe(process.stderr);
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(n) : reject(new Error(`psql exited ${code}`))));
  });
  return { ms: performance.now() - t0, bytes };
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MB`;

async function benchOne(kind: 'postgresql' | 'pglite', url?: string) {
  const db = await initORM(url ? { databaseUrl: url } : { pgliteDir: 'memory://' });
  try {
    const small = Math.min(10_000, ROWS);
    const seedMs = await seed(db, ROWS);
    const verifyT0 = performance.now();
    const v = await verifyAuditChain(db.em);
    const verifyMs = performance.now() - verifyT0;
    if (!v.ok || v.checked !== ROWS) throw new Error(`chain does not verify: ${JSON.stringify(v)}`);
    // Warm-up, then the small export (first `small` rows by time) and the full one.
    await exportOnce(db, 'csv', { to: new Date(Date.now() - (ROWS - 1000) * 10) });
    const cutoff = new Date(Date.now() - (ROWS - small) * 10);
    const csvSmall = await exportOnce(db, 'csv', { to: cutoff });
    const csv = await exportOnce(db, 'csv');
    const json = await exportOnce(db, 'json');
    const base = url ? await copyBaseline(url) : null;
    console.log(`\n== ${kind}: ${ROWS.toLocaleString('en')} rows (inserted through the chain trigger in ${fmt(seedMs)}; hostflow audit verify of all: ${fmt(verifyMs)})`);
    console.log('| export | rows | time | size | RSS growth during export | peak RSS |');
    console.log('|---|---:|---:|---:|---:|---:|');
    console.log(`| platform CSV (~${small.toLocaleString('en')} rows) | ~${small} | ${fmt(csvSmall.ms)} | ${mb(csvSmall.bytes)} | ${csvSmall.rssGrowthMb.toFixed(1)} MB | ${csvSmall.peakRssMb.toFixed(0)} MB |`);
    console.log(`| platform CSV | ${ROWS} | ${fmt(csv.ms)} | ${mb(csv.bytes)} | ${csv.rssGrowthMb.toFixed(1)} MB | ${csv.peakRssMb.toFixed(0)} MB |`);
    console.log(`| platform JSON | ${ROWS} | ${fmt(json.ms)} | ${mb(json.bytes)} | ${json.rssGrowthMb.toFixed(1)} MB | ${json.peakRssMb.toFixed(0)} MB |`);
    if (base) console.log(`| baseline psql \\copy … to stdout csv | ${ROWS} | ${fmt(base.ms)} | ${mb(base.bytes)} | (separate process) | — |`);
    else console.log(`| baseline | — | (PGlite has no COPY client here) | | | |`);
  } finally {
    await db.close();
  }
}

const cluster = process.env.BENCH_DATABASE_URL ? undefined : await startPostgres();
cleanUpOnExit(() => void cluster?.stop());
const adminUrl = process.env.BENCH_DATABASE_URL ?? cluster!.url;
const url = await createDatabase(adminUrl, `bench_audit_${randomBytes(4).toString('hex')}`);
try {
  await benchOne('postgresql', url);
  if (!process.env.BENCH_SKIP_PGLITE) await benchOne('pglite');
} finally {
  await cluster?.stop();
}
console.log(`\nprocess max RSS over the whole run: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
