// The lease timeline (web/src/components/LeaseTimeline.vue) mounted in happy-dom: every 7/3/1-day
// reminder shown as sent (when it fired), skipped or pending (when it falls due), then the end,
// the buffer and the reclaim, in the user's time zone and language.
import { describe, expect, it } from 'vitest';
import LeaseTimeline from '@/components/LeaseTimeline.vue';
import type { Schemas } from '@/api/client';
import { mountWith } from './mount';

const allocation = {
  id: 'a1', status: 'active', starts_at: '2026-11-01T08:00:00.000Z', ends_at: '2026-12-01T08:00:00.000Z', reclaimed_at: null,
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
          lease_events: [{ kind: 'reminder-7d', due_at: '2026-11-24T08:00:00.000Z', fired_at: '2026-11-24T08:00:03.000Z', notification: null }],
          lease: { sent: ['reminder-7d'], skipped: ['reminder-3d'], next: { kind: 'reminder-1d', at: '2026-11-30T08:00:00.000Z' } },
        }),
      },
    });
    expect(items(w)).toEqual([
      { text: 'Starts', at: 'Nov 1, 2026, 8:00 AM', type: 'success' },
      { text: 'reminder-7d — sent', at: 'Nov 24, 2026, 8:00 AM', type: 'success' },
      { text: 'reminder-3d — skipped', at: 'Nov 28, 2026, 8:00 AM', type: 'info' },
      { text: 'reminder-1d — pending', at: 'Nov 30, 2026, 8:00 AM', type: 'primary' },
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
      'reminder-7d — sent @ Dec 3, 2026, 8:00 AM',
      'reminder-3d — sent @ Dec 7, 2026, 8:00 AM',
      'reminder-1d — sent @ Dec 9, 2026, 8:00 AM',
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
    expect(items(w).slice(1, 4).map((i) => i.text)).toEqual(['reminder-7d — 待发送', 'reminder-3d — 待发送', 'reminder-1d — 待发送']);
  });
});
