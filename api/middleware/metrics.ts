import { AsyncResource } from 'node:async_hooks';
import type { Logger } from '../../config/logger.js';
import type { Request, RequestHandler } from 'express';
import { httpDuration, httpInFlight, metricsText, scrapeRefusal, METRICS_CONTENT_TYPE } from '../../config/metrics.js';

/** The route template of a matched request (`/api/v1/hosts/:id`), never the raw path. */
export function routeTemplate(req: Request): string {
  const r = (req as Request & { route?: { path?: unknown } }).route?.path;
  return typeof r === 'string' ? `${req.baseUrl}${r}` : '(unmatched)';
}

/** Records every request's duration by method, route template and status, and the in-flight gauge. */
export function httpMetrics(): RequestHandler {
  return (req, res, next) => {
    if (req.path === '/metrics') return next();
    const end = httpDuration.startTimer();
    httpInFlight.inc();
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      httpInFlight.dec();
      end({ method: req.method, route: routeTemplate(req), status: String(res.statusCode) });
    };
    res.once('finish', finish);
    res.once('close', finish);
    next();
  };
}

export interface MetricsAccess {
  /** Bearer token a scraper must send; when unset, only loopback clients are answered. */
  token?: string;
  /** host:port of the Temporal SDK's Prometheus exporter (Runtime.install), appended to the body. */
  sdkAddress?: string;
}

/** GET /metrics: Prometheus text exposition, behind the scrape token (or loopback only). */
export function metricsEndpoint(access: MetricsAccess): RequestHandler {
  return async (req, res) => {
    const refused = scrapeRefusal(req.get('authorization'), req.socket.remoteAddress, access.token);
    if (refused) {
      res.status(refused.status).json(refused.body);
      return;
    }
    res.setHeader('content-type', METRICS_CONTENT_TYPE);
    res.send(await metricsText(access.sdkAddress));
  };
}

/**
 * One `request` line per request at debug level (method, route template, status, duration). The
 * finish callback is bound to the request's async context, so the line carries its request id and
 * trace id like every other line written while serving it (config/logger.ts mixin).
 */
export function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    if (!logger.isLevelEnabled('debug') || req.path === '/metrics') return next();
    const started = process.hrtime.bigint();
    res.once(
      'finish',
      AsyncResource.bind(() => {
        logger.debug({ method: req.method, route: routeTemplate(req), status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'request');
      }),
    );
    next();
  };
}
