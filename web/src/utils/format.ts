import { usePreferencesStore } from '@/stores/preferences';

/** A date-time in the user's language and time zone ('—' for none). */
export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  const p = usePreferencesStore();
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(p.locale, { dateStyle: 'medium', timeStyle: 'short', timeZone: p.timeZone }).format(d);
}

/** "3 h", "2 d" since a moment. */
export function since(iso: string, now = Date.now()): string {
  const m = Math.max(0, Math.round((now - new Date(iso).getTime()) / 60_000));
  if (m < 60) return `${m} min`;
  if (m < 48 * 60) return `${Math.round(m / 60)} h`;
  return `${Math.round(m / 1440)} d`;
}

export const statusType = (s: string): 'success' | 'warning' | 'danger' | 'info' | 'primary' => {
  if (['online', 'done', 'active', 'approved', 'reclaimed', 'ok', 'success'].includes(s)) return 'success';
  if (['failed', 'rejected', 'reclaim-failed', 'offline', 'failure', 'denied'].includes(s)) return 'danger';
  if (['pending', 'provisioning', 'onboarding', 'reclaiming', 'buffer', 'running', 'waiting'].includes(s)) return 'warning';
  return 'info';
};
