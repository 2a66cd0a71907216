import type { RequestHandler } from 'express';
import { SpanKind, SpanStatusCode, currentTracing, otelContext, otelPropagation, otelTrace, tracer } from '../../config/tracing.js';
import { routeTemplate } from './metrics.js';

/**
 * One SERVER span per request (`POST /api/v1/account-openings/:id/approve`), continuing an incoming
 * W3C `traceparent`; the workflow starts and Updates the handler makes are its children (the
 * Temporal client interceptor), and so, through the headers, the workflow and its activities.
 * Attributes: method, route template, status, request id — never the raw path or query (ids and
 * signed-link tokens travel there). A no-op span when tracing is off (config/tracing.ts).
 */
export function httpTracing(): RequestHandler {
  return (req, res, next) => {
    // Tracing off (no OTEL_* exporter, nothing installed): no span, no context, no listeners.
    if (currentTracing().exporter === 'none' || req.path === '/metrics' || req.path === '/healthz') return next();
    const parent = otelPropagation.extract(otelContext.active(), req.headers);
    const span = tracer().startSpan(`${req.method}`, { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'hostflow.request_id': req.requestId } }, parent);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      const route = routeTemplate(req);
      span.updateName(`${req.method} ${route}`);
      span.setAttribute('http.route', route);
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    };
    res.once('finish', end);
    res.once('close', end);
    otelContext.with(otelTrace.setSpan(parent, span), next);
  };
}
