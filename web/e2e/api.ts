// Small API calls the browser tests make around the clicks (setting up users before a page opens).
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';

/** A POST with a JSON body (and a bearer token), answered as status + parsed body. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- loosely typed JSON
export async function postJson(baseUrl: string, path: string, body: unknown, token?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(baseUrl + path, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

/** Signs in with a one-time password and sets a fresh one (the forced change), returning it. */
export async function settlePassword(baseUrl: string, username: string, initial: string, prefix: string): Promise<string> {
  const first = await postJson(baseUrl, '/api/v1/auth/login', { username, password: initial });
  expect(first.status, JSON.stringify(first.body)).toBe(200);
  const password = `${prefix}-${randomBytes(4).toString('hex')}-Pw-9!q`;
  expect((await postJson(baseUrl, '/api/v1/auth/password/change', { current_password: initial, new_password: password }, first.body.data.access_token)).status).toBe(200);
  return password;
}
