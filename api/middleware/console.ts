import express, { Router } from 'express';
import { existsSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';

/**
 * The console's Content-Security-Policy: no inline script and nothing from another origin.
 * Styles allow 'unsafe-inline' because Element Plus positions popovers and dialogs with style
 * attributes; images allow data: for the TOTP QR code the API returns as a data URL.
 * 'wasm-unsafe-eval' lets the recording player (asciinema-player) compile its WebAssembly
 * terminal emulator; it allows no JavaScript eval.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const ONE_YEAR = 365 * 24 * 3600 * 1000;

/**
 * Hashed assets in the encoding the browser prefers, from the `.br`/`.gz` files the build wrote
 * beside them (scripts/build-web.ts): no compression per request, and a year of immutable cache
 * (the name changes with the content). Falls through to express.static when there is none.
 */
function precompressed(assetsDir: string): express.RequestHandler {
  const root = resolve(assetsDir);
  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    // Brotli whenever accepted (browsers list `gzip, deflate, br`, all at q=1), else gzip.
    const encoding = req.acceptsEncodings('br') === 'br' ? 'br' : req.acceptsEncodings('gzip') === 'gzip' ? 'gzip' : null;
    if (!encoding) return next();
    let rel: string;
    try {
      rel = decodeURIComponent(req.path);
    } catch {
      return next();
    }
    const file = resolve(root, `.${rel}`);
    if (!file.startsWith(root + sep)) return next();
    const suffix = encoding === 'br' ? '.br' : '.gz';
    if (!existsSync(file + suffix)) return next();
    res.vary('Accept-Encoding');
    res.setHeader('Content-Encoding', encoding);
    res.type(extname(file));
    res.sendFile(file + suffix, { maxAge: ONE_YEAR, immutable: true, dotfiles: 'deny' }, (err) => {
      if (err && !res.headersSent) {
        res.removeHeader('Content-Encoding');
        next();
      }
    });
  };
}

const NOT_CONSOLE = /^\/(api|healthz|readyz|metrics)(\/|$)/;

/**
 * Serves the built console (web/dist) at `/`: hashed assets cached for a year, index.html never
 * cached, and every other GET that wants HTML answered with index.html (history-mode routing).
 * The API keeps `/api`, `/healthz`, `/readyz` and `/metrics`.
 */
export function serveConsole(opts: { distDir: string; temporalUi?: { url: string; namespace: string } }): Router {
  const distDir = resolve(opts.distDir);
  const r = Router();
  // Runtime settings the static bundle cannot know (not an API route: no data, no permission).
  r.get('/console-config.json', (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.json({ temporal_ui: opts.temporalUi ?? null });
  });
  const index = join(distDir, 'index.html');
  const security = (res: express.Response) => {
    res.setHeader('Content-Security-Policy', CONSOLE_CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'same-origin');
    res.setHeader('X-Frame-Options', 'DENY');
  };
  r.use('/assets', precompressed(join(distDir, 'assets')), express.static(join(distDir, 'assets'), { immutable: true, maxAge: '365d', index: false }), (_req, res) => {
    res.status(404).type('text/plain').send('not found');
  });
  r.use((req, res, next) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || NOT_CONSOLE.test(req.path)) return next();
    security(res);
    next();
  });
  r.use(express.static(distDir, { index: false, maxAge: 0 }));
  r.use((req, res, next) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || NOT_CONSOLE.test(req.path) || !req.accepts('html')) return next();
    if (!existsSync(index)) return next();
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(index);
  });
  return r;
}
