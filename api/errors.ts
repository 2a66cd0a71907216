/** API errors → the envelope `{ code, message, data, errors?, request_id? }` with a matching HTTP status. */
export interface FieldError {
  field: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    public readonly status: number,
    public readonly code: number,
    message: string,
    public readonly errors?: FieldError[],
    public readonly data?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const validationError = (errors: FieldError[], message?: string) =>
  new ApiError(400, 40001, message ?? `validation failed: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`, errors);
export const unauthenticated = (message = 'authentication required') => new ApiError(401, 40101, message);
export const forbidden = (message = 'forbidden') => new ApiError(403, 40301, message);
export const notFound = (what: string) => new ApiError(404, 40401, `${what} not found`);
export const conflict = (message: string, data?: unknown) => new ApiError(409, 40901, message, undefined, data);
export const internal = () => new ApiError(500, 50001, 'internal error');
export const unavailable = (message: string) => new ApiError(503, 50301, message);
