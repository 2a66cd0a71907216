// Builds the console (web/dist) when it is missing or older than its sources: `npm start` calls
// ensureWebBuilt() on every start (a no-op when web/dist matches), `npm run build:web` always builds.
// "Older" is a content hash of the inputs (web/src, web/public, index.html, the Vite and TS
// configs, the lockfile), written to web/dist/.build-hash after a successful build, so a checkout
// or a pull that changes the console rebuilds it and nothing else does.
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlibConstants, gzip } from 'node:zlib';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const WEB_DIR = join(ROOT, 'web');
export const WEB_DIST = join(WEB_DIR, 'dist');
const HASH_FILE = join(WEB_DIST, '.build-hash');

async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

/** A hash over the console's build inputs. */
export async function webSourceHash(): Promise<string> {
  const files = [
    ...(await filesUnder(join(WEB_DIR, 'src'))),
    ...(await filesUnder(join(WEB_DIR, 'public'))),
    join(WEB_DIR, 'index.html'),
    join(WEB_DIR, 'vite.config.ts'),
    join(WEB_DIR, 'tsconfig.json'),
    join(ROOT, 'package-lock.json'),
  ].sort();
  const h = createHash('sha256');
  for (const f of files) {
    if (!existsSync(f)) continue;
    h.update(relative(ROOT, f)).update('\0').update(await readFile(f)).update('\0');
  }
  return h.digest('hex');
}

export async function webBuildIsCurrent(): Promise<boolean> {
  if (!existsSync(join(WEB_DIST, 'index.html'))) return false;
  const stamped = await readFile(HASH_FILE, 'utf8').catch(() => '');
  return stamped.trim() === (await webSourceHash());
}

/** Runs `vite build` in a child process, passing its output lines to `log` (progress). */
export async function buildWeb(log: (line: string) => void = (l) => console.log(l)): Promise<{ ms: number }> {
  const started = Date.now();
  const hash = await webSourceHash();
  const viteBin = join(createRequire(import.meta.url).resolve('vite/package.json'), '..', 'bin', 'vite.js');
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [viteBin, 'build', '--config', join(WEB_DIR, 'vite.config.ts'), '--logLevel', 'info'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    const relay = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        const l = line.trim();
        // The per-file size table is noise at start-up; keep the phase lines.
        if (l && !/^web\/dist\/assets\//.test(l)) log(`console build: ${l}`);
      }
    };
    child.stdout.on('data', relay);
    child.stderr.on('data', relay);
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`vite build exited with ${code}`))));
  });
  const { files, bytes, br } = await precompressAssets(join(WEB_DIST, 'assets'));
  log(`console build: precompressed ${files} assets, ${(bytes / 1024).toFixed(0)} KiB -> ${(br / 1024).toFixed(0)} KiB brotli`);
  await writeFile(HASH_FILE, `${hash}\n`);
  return { ms: Date.now() - started };
}

const brotli = promisify(brotliCompress);
const gz = promisify(gzip);

/**
 * Writes `<file>.br` (quality 11) and `<file>.gz` (level 9) beside every hashed JS/CSS/SVG/JSON
 * asset over 1 KiB: the API serves them as they are (api/middleware/console.ts), so the first
 * screen gets the smallest encoding without compressing on every request.
 */
export async function precompressAssets(dir: string): Promise<{ files: number; bytes: number; br: number }> {
  let files = 0;
  let bytes = 0;
  let br = 0;
  for (const f of await filesUnder(dir)) {
    if (!/\.(js|css|svg|json|map)$/.test(f)) continue;
    const body = await readFile(f);
    if (body.length < 1024) continue;
    const [b, g] = await Promise.all([
      brotli(body, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 11, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: body.length } }),
      gz(body, { level: 9 }),
    ]);
    await Promise.all([writeFile(`${f}.br`, b), writeFile(`${f}.gz`, g)]);
    files++;
    bytes += body.length;
    br += b.length;
  }
  return { files, bytes, br };
}

/** Builds web/dist when missing or stale; true when it is usable afterwards. */
export async function ensureWebBuilt(log: (line: string) => void): Promise<boolean> {
  if (await webBuildIsCurrent()) return true;
  log(existsSync(join(WEB_DIST, 'index.html')) ? 'console: web/dist is older than web/src, rebuilding' : 'console: web/dist is missing, building it (first start)');
  const { ms } = await buildWeb(log);
  log(`console: built in ${(ms / 1000).toFixed(1)} s`);
  return true;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { ms } = await buildWeb();
  console.log(`web/dist built in ${(ms / 1000).toFixed(1)} s`);
}
