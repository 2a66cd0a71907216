// The console's only way to the API: openapi-fetch over the generated `paths` (schema.d.ts), so a
// request or response shape that drifts from /api/openapi.json fails `vue-tsc`. This module adds
// the access token (held in memory only), one silent refresh on 401 (the refresh token is an
// httpOnly cookie the page never sees), the MFA step-up prompt on 40103, and unwraps the envelope.
import createClient from 'openapi-fetch';
import type { components, paths } from './schema';

export type Schemas = components['schemas'];
export interface FieldError { field: string; message: string }

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
    readonly errors: FieldError[] = [],
    readonly data: unknown = null,
  ) {
    super(message);
  }
}

interface Hooks {
  token(): string | null;
  /** Rotate the refresh cookie; resolves false when the session is gone (the hook handles the redirect). */
  refresh(): Promise<boolean>;
  /** Ask the user for a second factor; resolves false when they cancel. */
  stepUp(): Promise<boolean>;
}
let hooks: Hooks = { token: () => null, refresh: async () => false, stepUp: async () => false };
export const setClientHooks = (h: Hooks) => void (hooks = h);

const NO_RETRY = /\/api\/v1\/auth\/(login|refresh|mfa\/verify)$/;

async function authedFetch(input: Request): Promise<Response> {
  const spare = input.clone();
  const send = (req: Request) => {
    const t = hooks.token();
    if (t) req.headers.set('authorization', `Bearer ${t}`);
    return fetch(req);
  };
  let res = await send(input);
  if (NO_RETRY.test(new URL(input.url).pathname)) return res;
  if (res.status === 401) {
    const body = (await res.clone().json().catch(() => null)) as { code?: number } | null;
    if (body?.code === 40101 && (await hooks.refresh())) res = await send(spare.clone());
    else if (body?.code === 40103 && (await hooks.stepUp())) res = await send(spare.clone());
  }
  return res;
}

export const api = createClient<paths>({ baseUrl: window.location.origin, fetch: authedFetch });

interface Envelope<T> { code: number; message: string; data: T; errors?: FieldError[] }

/** `{ data }` of a successful call, or throws ApiError (with the 40001 field list). */
export async function unwrap<T>(p: Promise<{ data?: Envelope<T>; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await p;
  if (data && data.code === 0) return data.data;
  const e = (error ?? data) as Partial<Envelope<unknown>> | undefined;
  throw new ApiError(response.status, e?.code ?? 50001, e?.message ?? response.statusText, e?.errors ?? [], e?.data ?? null);
}

/** Field → message map from a 40001, for el-form items. */
export function fieldErrors(err: unknown): Record<string, string> {
  if (!(err instanceof ApiError) || err.code !== 40001) return {};
  return Object.fromEntries(err.errors.map((f) => [f.field.replace(/^body\./, ''), f.message]));
}
