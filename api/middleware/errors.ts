import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from '../../config/logger.js';
import { ApiError, notFound, validationError } from '../errors.js';

export const requestId: RequestHandler = (req, res, next) => {
  const incoming = req.headers['x-request-id'];
  req.requestId = typeof incoming === 'string' && /^[\w.-]{1,64}$/.test(incoming) ? incoming : randomUUID();
  res.setHeader('x-request-id', req.requestId);
  next();
};

export const notFoundHandler: RequestHandler = (req) => {
  throw notFound(`route ${req.method} ${req.path}`);
};

/** Every error leaves as an envelope; unknown errors become 50001 with a request id and no stack. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    let apiErr: ApiError;
    if (err instanceof ApiError) apiErr = err;
    else if (err?.type === 'entity.parse.failed') apiErr = validationError([{ field: 'body', message: 'malformed JSON' }]);
    else if (err?.type === 'entity.too.large') apiErr = new ApiError(413, 40001, 'request body too large', [{ field: 'body', message: 'too large' }]);
    else {
      logger.error({ err, requestId: req.requestId, method: req.method, path: req.path }, 'unhandled error');
      apiErr = new ApiError(500, 50001, 'internal error');
    }
    if (res.headersSent) return;
    res.status(apiErr.status).json({
      code: apiErr.code,
      message: apiErr.message,
      data: apiErr.data ?? null,
      ...(apiErr.errors ? { errors: apiErr.errors } : {}),
      request_id: req.requestId,
    });
  };
}
