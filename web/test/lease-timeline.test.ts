// The lease timeline (web/src/components/LeaseTimeline.vue) mounted in happy-dom: every reminder
// of the allocation's own policy (reminder_offsets; 7/3/1 days only when that is its policy) shown
// as sent (when it fired, with the notification's outcome), skipped or pending (when it falls
// due), then the end, the buffer and the reclaim, in the user's time zone and language.
import { describe, expect, it } from 'vitest';
import LeaseTimeline from '@/components/LeaseTimeline.vue';
import type { Schemas } from '@/api/client';
import { mountWith } from './mount';

const allocation = {
  id: 'a1', status: 'active', starts_at: '2026-11-01T08:00:00.000Z', ends_at: '2026-12-01T08:00:00.000Z', reclaimed_at: null, reminder_offsets: ['7d', '3d', '1d'],
} as unknown as Schemas['Allocation'];
type Progress = Schemas['AllocationProgress'];
const progress = (p: Partial<Progress> & { lease?: Partial<NonNullable<Progress['lease']>> | null }): Progress => ({
  allocation_id: 'a1', status: 'active', steps: [], reclaim: null, lease_events: [], ...p,
  lease: p.lease === null ? null : { phase: 'active', ends_at: '2026-12-01T08:00:00.000Z', buffer_ends_at: null, next: null, sent: [], skipped: [], ...(p.lease ?? {}) },
}) as Progress;

const items = (w: ReturnType<typeof mountWith>) => w.findAll('.el-timeline-item').map((i) => ({
  text: i.find('.el-timeline-item__content').text(),
  at: i.find('.el-timeline-item__timestamp').text(),
  type: /el-timeline-item__node--(success|primary|warning|danger|info)\b/.exec(i.find('.el-timeline-item__node').classes().join(' '))?.[1] ?? '',
}));

describe('LeaseTimeline', () => {
  it('a lease with the 7-day reminder sent, the 3-day one skipped and the 1-day one next: each with its time, the end', () => {
    const w = mountWith(LeaseTimeline, {
      props: {
        allocation,
        progress: progress({
          lease_events: [{ kind: 'reminder-7d', due_at: '2026-11-24T08:00:00.000Z', fired_at: '2026-11-24T08:00:03.000Z', notification: 'sent' }],
          lease: { sent: ['reminder-7d'], skipped: ['reminder-3d'], next: { kind: 'reminder-1d', at: '2026-11-30T08:00:00.000Z' } },
        }),
      },
    });
    expect(items(w)).toEqual([
      { text: 'Starts', at: 'Nov 1, 2026, 8:00 AM', type: 'success' },
      { text: '7d reminder — sent', at: 'Nov 24, 2026, 8:00 AM', type: 'success' },
      { text: '3d reminder — skipped', at: 'Nov 28, 2026, 8:00 AM', type: 'info' },
      { text: '1d reminder — pending', at: 'Nov 30, 2026, 8:00 AM', type: 'primary' },
      { text: 'Ends', at: 'Dec 1, 2026, 8:00 AM', type: 'warning' },
    ]);
  });

  it('an extended lease: pending reminders move with the new end; the buffer and the reclaim follow', () => {
    const w = mountWith(LeaseTimeline, {
      props: {
        allocation: { ...allocation, status: 'reclaiming', reclaimed_at: null } as Schemas['Allocation'],
        progress: progress({
          status: 'reclaiming',
          lease_events: [
            { kind: 'reminder-7d', due_at: '2026-12-03T08:00:00.000Z', fired_at: '2026-12-03T08:00:01.000Z', notification: null },
            { kind: 'ended', due_at: '2026-12-10T08:00:00.000Z', fired_at: '2026-12-10T08:00:00.000Z', notification: null },
          ],
          lease: { phase: 'buffer', ends_at: '2026-12-10T08:00:00.000Z', buffer_ends_at: '2026-12-11T08:00:00.000Z', sent: ['reminder-7d', 'reminder-3d', 'reminder-1d'] },
          reclaim: { result: 'running', current: 'kill-processes' },
        }),
      },
    });
    const got = items(w).map((i) => `${i.text} @ ${i.at}`);
    expect(got).toEqual([
      'Starts @ Nov 1, 2026, 8:00 AM',
      '7d reminder — sent @ Dec 3, 2026, 8:00 AM',
      '3d reminder — sent @ Dec 7, 2026, 8:00 AM',
      '1d reminder — sent @ Dec 9, 2026, 8:00 AM',
      'Ends @ Dec 10, 2026, 8:00 AM',
      'Buffer ends @ Dec 11, 2026, 8:00 AM',
      'ended @ Dec 10, 2026, 8:00 AM',
      'Reclaim: running (kill-processes) @ —',
    ]);
  });

  it('dates in the chosen time zone and language (zh-CN, Asia/Shanghai)', () => {
    const w = mountWith(LeaseTimeline, { props: { allocation, progress: progress({}) } }, { locale: 'zh-CN', timeZone: 'Asia/Shanghai' });
    const first = items(w)[0]!;
    expect(first.text).toBe('开始');
    expect(first.at).toBe(new Intl.DateTimeFormat('zh-CN', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'Asia/Shanghai' }).format(new Date('2026-11-01T08:00:00.000Z')));
    expect(first.at).toContain('16:00');
    expect(items(w).slice(1, 4).map((i) => i.text)).toEqual(['提前 7d 提醒 — 待发送', '提前 3d 提醒 — 待发送', '提前 1d 提醒 — 待发送']);
  });

  it('a custom policy (30d, 7d, 2h): exactly those reminders, none of 3d/1d; the 30-day one fired and sent, the 7-day one fired but suppressed by the notification center, the 2-hour one pending as the workflow\'s next', () => {
    const custom = { ...allocation, reminder_offsets: ['30d', '7d', '2h'], starts_at: '2026-10-01T08:00:00.000Z' } as Schemas['Allocation'];
    const w = mountWith(LeaseTimeline, {
      props: {
        allocation: custom,
        progress: progress({
          lease_events: [
            { kind: 'reminder-30d', due_at: '2026-11-01T08:00:00.000Z', fired_at: '2026-11-01T08:00:02.000Z', notification: 'sent' },
            { kind: 'reminder-7d', due_at: '2026-11-24T08:00:00.000Z', fired_at: '2026-11-24T08:00:01.000Z', notification: 'suppressed' },
          ],
          lease: { sent: ['reminder-30d', 'reminder-7d'], skipped: [], next: { kind: 'reminder-2h', at: '2026-12-01T06:00:00.000Z' } },
        }),
      },
    });
    expect(items(w)).toEqual([
      { text: 'Starts', at: 'Oct 1, 2026, 8:00 AM', type: 'success' },
      { text: '30d reminder — sent', at: 'Nov 1, 2026, 8:00 AM', type: 'success' },
      { text: '7d reminder — suppressed', at: 'Nov 24, 2026, 8:00 AM', type: 'info' },
      { text: '2h reminder — pending', at: 'Dec 1, 2026, 6:00 AM', type: 'primary' },
      { text: 'Ends', at: 'Dec 1, 2026, 8:00 AM', type: 'warning' },
    ]);
    expect(w.find('[data-test="lease-reminder-3d"]').exists()).toBe(false);
    expect(w.find('[data-test="lease-reminder-1d"]').exists()).toBe(false);
    expect(w.find('[data-test="lease-policy"]').text()).toBe('Reminder policy: 30d, 7d, 2h');
  });

  it('a custom policy on a lease started late: the reminders whose moment had passed are skipped (the workflow says so), a queued notice shows as queued', () => {
    const custom = { ...allocation, reminder_offsets: ['14d', '12h', '30m'] } as Schemas['Allocation'];
    const w = mountWith(LeaseTimeline, {
      props: {
        allocation: custom,
        progress: progress({
          lease_events: [{ kind: 'reminder-12h', due_at: '2026-11-30T20:00:00.000Z', fired_at: '2026-11-30T20:00:00.000Z', notification: 'queued' }],
          lease: { sent: ['reminder-12h'], skipped: ['reminder-14d'], next: { kind: 'reminder-30m', at: '2026-12-01T07:30:00.000Z' } },
        }),
      },
    });
    expect(items(w).slice(1, 4)).toEqual([
      { text: '14d reminder — skipped', at: 'Nov 17, 2026, 8:00 AM', type: 'info' },
      { text: '12h reminder — queued', at: 'Nov 30, 2026, 8:00 PM', type: 'primary' },
      { text: '30m reminder — pending', at: 'Dec 1, 2026, 7:30 AM', type: 'primary' },
    ]);
  });
});
