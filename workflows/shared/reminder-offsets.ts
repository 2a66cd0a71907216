/**
 * Lease reminder offsets as policy, not constants (issue 15; jumpserver#16355 / #17343): a list of
 * offsets before the lease end, in days, hours or minutes (`"30d"`, `"7d"`, `"2h"`, `"15m"`).
 * Default 7/3/1 days. A customer may carry its own list, an allocation may carry its own (which
 * wins); the allocation row stores the list it was created with, and the lease gets it as input,
 * so a running lease keeps its schedule when a customer's policy changes later.
 * Pure and deterministic: used by the lease workflow, the API and the lease activities.
 */
const DAY_MIN = 1440;

export const DEFAULT_REMINDER_OFFSETS_MINUTES: readonly number[] = [7 * DAY_MIN, 3 * DAY_MIN, DAY_MIN];
export const MAX_REMINDER_OFFSETS = 12;
export const MAX_REMINDER_OFFSET_MINUTES = 366 * DAY_MIN;
export const REMINDER_OFFSET_PATTERN = /^([1-9]\d{0,5})(d|h|m)$/;

/** `"7d"` → 10080; `"90m"` → 90; anything else → null. */
export function parseReminderOffset(s: string): number | null {
  const m = REMINDER_OFFSET_PATTERN.exec(s.trim());
  if (!m) return null;
  const n = Number(m[1]) * (m[2] === 'd' ? DAY_MIN : m[2] === 'h' ? 60 : 1);
  return n <= MAX_REMINDER_OFFSET_MINUTES ? n : null;
}

/** 10080 → `"7d"`, 120 → `"2h"`, 90 → `"90m"` (the largest whole unit). */
export function formatReminderOffset(minutes: number): string {
  if (minutes % DAY_MIN === 0) return `${minutes / DAY_MIN}d`;
  if (minutes % 60 === 0) return `${minutes / 60}h`;
  return `${minutes}m`;
}

/** The lease event kind of an offset: `reminder-7d` for 7 days (the kinds of the fixed 7/3/1 schedule stay the same). */
export const reminderKind = (minutes: number) => `reminder-${formatReminderOffset(minutes)}`;

/** `reminder-7d` → 10080; not a reminder kind → null. */
export function reminderKindMinutes(kind: string): number | null {
  return kind.startsWith('reminder-') ? parseReminderOffset(kind.slice('reminder-'.length)) : null;
}

/** Validates and normalises a list (unique, largest first); a message naming the problem otherwise. */
export function normaliseReminderOffsets(list: readonly string[]): { minutes: number[] } | { error: string } {
  if (list.length > MAX_REMINDER_OFFSETS) return { error: `at most ${MAX_REMINDER_OFFSETS} offsets` };
  const out = new Set<number>();
  for (const [i, s] of list.entries()) {
    const n = parseReminderOffset(s);
    if (n === null) return { error: `[${i}] "${s}": an offset looks like 7d, 12h or 30m (at most 366 days)` };
    out.add(n);
  }
  return { minutes: [...out].sort((a, b) => b - a) };
}

/** How long is left, for people: `3 days` / `2 hours` / `90 minutes`, and the same in Chinese. */
export function remainingText(minutes: number): { en: string; zh: string } {
  const f = formatReminderOffset(minutes);
  const n = Number(f.slice(0, -1));
  const unit = f.slice(-1);
  if (unit === 'd') return { en: n === 1 ? '1 day' : `${n} days`, zh: `${n} 天` };
  if (unit === 'h') return { en: n === 1 ? '1 hour' : `${n} hours`, zh: `${n} 小时` };
  return { en: n === 1 ? '1 minute' : `${n} minutes`, zh: `${n} 分钟` };
}
