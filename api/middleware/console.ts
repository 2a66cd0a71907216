import express, { Router } from 'express';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

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
  r.use('/assets', express.static(join(distDir, 'assets'), { immutable: true, maxAge: '365d', index: false }), (_req, res) => {
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
