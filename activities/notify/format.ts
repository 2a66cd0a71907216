/** One formatter per zone: building an Intl.DateTimeFormat costs far more than formatting with it. */
const formatters = new Map<string, Intl.DateTimeFormat | null>();

function formatterFor(tz: string): Intl.DateTimeFormat | null {
  let f = formatters.get(tz);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat('en-US', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZoneName: 'longOffset' });
    } catch {
      f = null; // not a zone this runtime knows
    }
    if (formatters.size < 1000) formatters.set(tz, f);
  }
  return f;
}

/**
 * `2026-12-25 04:00 (Asia/Shanghai, UTC+08:00)`: a moment as the recipient reads it, with the zone
 * spelled out so nobody has to guess. Unknown or missing zones fall back to UTC.
 */
export function formatInZone(at: Date, timeZone: string | null | undefined): string {
  let tz = timeZone || 'UTC';
  let f = formatterFor(tz);
  if (!f) {
    tz = 'UTC';
    f = formatterFor(tz)!;
  }
  const parts = Object.fromEntries(f.formatToParts(at).map((p) => [p.type, p.value]));
  const offset = parts.timeZoneName === 'GMT' ? 'UTC+00:00' : String(parts.timeZoneName).replace('GMT', 'UTC');
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute} (${tz}, ${offset})`;
}

/** True when `tz` is an IANA time zone this runtime knows. */
export function isTimeZone(tz: string): boolean {
  return formatterFor(tz) !== null;
}
