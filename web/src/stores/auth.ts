import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import { api, ApiError, unwrap, type Schemas } from '@/api/client';
import { forgetCodecCookie } from '@/api/runtime';

const COOKIE_MODE = { 'x-hostflow-refresh': 'cookie' } as const;
type Me = Schemas['Me'];

/**
 * The signed-in user. The access token lives only in this store (memory): a reload restores the
 * session through the refresh cookie (httpOnly, SameSite=Strict, path /api/v1/auth/refresh),
 * which rotates on every use. Refreshes are serialised across tabs with a Web Lock so two tabs
 * never present the same single-use token (that would look like reuse and end the session).
 */
export const useAuthStore = defineStore('auth', () => {
  const token = ref<string | null>(null);
  const me = ref<Me | null>(null);
  const restored = ref(false);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inflight: Promise<boolean> | null = null;
  /** Set when the session ends under us (reuse, kick-out, idle): the login page shows it. */
  const endedReason = ref<string | null>(null);

  const permissions = computed(() => new Set(me.value?.permissions ?? []));
  const can = (p: string) => permissions.value.has(p);

  function accept(pair: { access_token: string; expires_in: number }) {
    token.value = pair.access_token;
    clearTimeout(timer);
    timer = setTimeout(() => void refresh(), Math.max(5, pair.expires_in - 60) * 1000);
  }

  async function loadMe() {
    me.value = await unwrap(api.GET('/api/v1/auth/me'));
  }

  /** Step 1 (and 2 with a code): throws ApiError 40102 with data.methods when a second factor is needed. */
  async function login(input: { username: string; password: string; totp_code?: string; recovery_code?: string }) {
    const pair = await unwrap(api.POST('/api/v1/auth/login', { body: input, headers: COOKIE_MODE }));
    endedReason.value = null;
    accept(pair);
    await loadMe();
  }

  function ended(reason: string | null) {
    clearTimeout(timer);
    const had = token.value !== null;
    token.value = null;
    me.value = null;
    if (had) endedReason.value = reason ?? 'expired';
  }

  async function rotate(): Promise<boolean> {
    try {
      const pair = await unwrap(api.POST('/api/v1/auth/refresh', { body: {}, headers: { ...COOKIE_MODE, 'x-hostflow-csrf': '1' } }));
      accept(pair);
      return true;
    } catch (err) {
      const reason = err instanceof ApiError ? ((err.data as { reason?: string } | null)?.reason ?? null) : null;
      ended(reason);
      return false;
    }
  }

  /** One refresh at a time, in this tab and across tabs. */
  function refresh(): Promise<boolean> {
    inflight ??= (async () => {
      try {
        return navigator.locks ? Boolean(await navigator.locks.request('hostflow-refresh', rotate)) : await rotate();
      } finally {
        inflight = null;
      }
    })();
    return inflight;
  }

  /** On page load: a refresh cookie, if any, brings the session back. */
  async function restore() {
    if (restored.value) return;
    restored.value = true;
    if (await rotate()) await loadMe().catch(() => ended(null));
    endedReason.value = null;
  }

  async function logout() {
    await api.POST('/api/v1/auth/logout').catch(() => undefined);
    // The server's logout clears the Temporal UI codec cookie; clear it also if that call failed.
    await api.DELETE('/api/v1/temporal/codec/session').catch(() => undefined);
    forgetCodecCookie();
    clearTimeout(timer);
    token.value = null;
    me.value = null;
  }

  return { token, me, restored, endedReason, permissions, can, login, loadMe, refresh, restore, logout, ended };
});
