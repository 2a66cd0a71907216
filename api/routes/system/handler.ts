import { Router } from 'express';
import swaggerUi from 'swagger-ui-express';
import type { AppDeps } from '../../deps.js';
import type { OpenAPIRegistry } from '../../openapi.js';
import { generateOpenApi } from '../../openapi.js';

/**
 * /healthz (process up), /readyz (DB + Temporal reachable), OpenAPI document and docs page.
 * /readyz stays unauthenticated (orchestrators probe it without credentials), so it answers with
 * status words only; why a probe failed goes to the log, never into the response (raw driver
 * errors carry host names, ports, users, sometimes connection strings).
 */
export function systemRoutes(deps: AppDeps, registry: OpenAPIRegistry): Router {
  const r = Router();
  r.get('/healthz', (_req, res) => {
    res.json({ code: 0, message: 'ok', data: { status: 'up' } });
  });
  r.get('/readyz', async (_req, res) => {
    const probe = async (fn: () => Promise<void>) => {
      try {
        await withTimeout(fn(), 3000);
        return 'ok' as const;
      } catch (err) {
        return err as Error;
      }
    };
    const [dbR, temporalR] = await Promise.all([probe(deps.checks.db), probe(deps.checks.temporal)]);
    const word = (name: string, r: 'ok' | Error) => {
      if (r === 'ok') return 'ok' as const;
      deps.logger.warn({ check: name, err: r.message }, 'readiness probe failed');
      return 'unreachable' as const;
    };
    const db = word('db', dbR);
    const temporal = word('temporal', temporalR);
    const ready = db === 'ok' && temporal === 'ok';
    res.status(ready ? 200 : 503).json({
      code: ready ? 0 : 50301,
      message: ready ? 'ok' : 'not ready',
      data: { status: ready ? 'ready' : 'not-ready', checks: { db, temporal } },
    });
  });
  let doc: ReturnType<typeof generateOpenApi> | undefined;
  const getDoc = () => {
    doc ??= generateOpenApi(registry);
    doc.components = { ...doc.components, securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } };
    return doc;
  };
  r.get('/api/openapi.json', (_req, res) => {
    res.json(getDoc());
  });
  r.use('/api/docs', swaggerUi.serve, swaggerUi.setup(undefined, { swaggerOptions: { url: '/api/openapi.json' }, customSiteTitle: 'Hostflow API' }));
  return r;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then(resolve, reject).finally(() => clearTimeout(t));
  });
}
