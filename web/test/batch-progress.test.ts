// The batch onboarding progress (web/src/components/BatchProgress.vue) mounted in happy-dom with a
// batch as GET /api/v1/hosts/onboard/:batchId returns it: the totals, each host's state and its
// steps one by one with their status, the error that stopped a failed host; then the same batch
// finished.
import { describe, expect, it } from 'vitest';
import { flushPromises, RouterLinkStub } from '@vue/test-utils';
import BatchProgress from '@/components/BatchProgress.vue';
import type { Schemas } from '@/api/client';
import { mountWith } from './mount';

type Batch = Schemas['OnboardingBatch'];
type Host = Batch['hosts'][number];
const step = (name: string, status: string, error: string | null = null) => ({ step: name, status, attempts: status === 'pending' ? 0 : 1, started_at: status === 'pending' ? null : '2026-12-01T08:00:00.000Z', finished_at: status === 'done' || status === 'failed' ? '2026-12-01T08:00:05.000Z' : null, error });
const host = (slug: string, state: Host['state'], steps: Host['steps'], error: string | null = null): Host => ({
  id: `id-${slug}`, slug, name: slug, host_status: state === 'online' ? 'online' : state === 'failed' ? 'failed' : state === 'running' ? 'onboarding' : 'pending', state,
  current_step: steps.find((s) => s.status === 'running')?.step ?? steps.filter((s) => s.status !== 'pending').at(-1)?.step ?? null,
  steps, done_steps: steps.filter((s) => s.status === 'done' || s.status === 'skipped').length, total_steps: 7, error,
});
const ALL = ['connect', 'collect-facts', 'confirm-facts', 'apply-template', 'configure-remote-access', 'verify', 'mark-online'];
const running: Batch = {
  total: 3, running: 1, pending: 1, online: ['id-gpu-01'], failed: [], done: false,
  hosts: [
    host('gpu-01', 'online', ALL.map((s) => step(s, s === 'apply-template' ? 'skipped' : 'done'))),
    host('gpu-02', 'running', [step('connect', 'done'), step('collect-facts', 'running'), ...ALL.slice(2).map((s) => step(s, 'pending'))]),
    host('gpu-03', 'queued', []),
  ],
};
// el-table lays its rows out after mounting: wait for that.
const mount = async (batch: Batch, locale?: 'en' | 'zh-CN') => {
  const w = mountWith(BatchProgress, { props: { batch }, global: { stubs: { RouterLink: RouterLinkStub } } }, { locale });
  await flushPromises();
  return w;
};
const total = (w: Awaited<ReturnType<typeof mount>>, k: string) => w.find(`[data-test="batch-total-${k}"] .n`).text();

describe('BatchProgress', () => {
  it('a running batch: totals, each host in order with its state, steps and count; queued hosts show no steps', async () => {
    const w = await mount(running);
    expect(['total', 'queued', 'running', 'online', 'failed'].map((k) => total(w, k))).toEqual(['3', '1', '1', '1', '0']);
    expect(w.find('[data-test="batch-state"]').text()).toBe('1 of 3 finished');
    expect(w.findAllComponents(RouterLinkStub).map((l) => [l.text(), l.props('to')])).toEqual([['gpu-01', '/hosts/id-gpu-01'], ['gpu-02', '/hosts/id-gpu-02'], ['gpu-03', '/hosts/id-gpu-03']]);
    expect(['gpu-01', 'gpu-02', 'gpu-03'].map((s) => w.find(`[data-test="batch-state-${s}"]`).text())).toEqual(['Online', 'Running', 'Queued']);
    expect(w.find('[data-test="batch-step-gpu-02-connect"]').text()).toBe('connect: done');
    expect(w.find('[data-test="batch-step-gpu-02-collect-facts"]').text()).toBe('collect-facts: running');
    expect(w.find('[data-test="batch-step-gpu-02-collect-facts"]').classes()).toContain('el-tag--primary');
    expect(w.find('[data-test="batch-step-gpu-01-apply-template"]').text()).toBe('apply-template: skipped');
    expect(w.findAll('[data-test^="batch-step-gpu-03-"]')).toHaveLength(0);
    expect(['gpu-01', 'gpu-02', 'gpu-03'].map((s) => w.find(`[data-test="batch-count-${s}"]`).text())).toEqual(['7/7', '1/7', '0/7']);
    expect(w.find('.el-progress').attributes('aria-valuenow')).toBe('33');
  });

  it('the batch finished with a failure: the failed host with its step and error, the final totals, in Chinese too', async () => {
    const done: Batch = {
      ...running, running: 0, pending: 0, done: true, online: ['id-gpu-01', 'id-gpu-03'], failed: [{ hostId: 'id-gpu-02', step: 'connect', error: 'host key mismatch' }],
      hosts: [
        running.hosts[0]!,
        host('gpu-02', 'failed', [step('connect', 'failed', 'host key mismatch'), ...ALL.slice(1).map((s) => step(s, 'pending'))], 'host key mismatch'),
        host('gpu-03', 'online', ALL.map((s) => step(s, 'done'))),
      ],
    };
    const w = await mount(done);
    expect(['total', 'queued', 'running', 'online', 'failed'].map((k) => total(w, k))).toEqual(['3', '0', '0', '2', '1']);
    expect(w.find('[data-test="batch-state"]').text()).toBe('Finished: 2 online, 1 failed');
    expect(w.find('[data-test="batch-state-gpu-02"]').classes()).toContain('el-tag--danger');
    expect(w.find('[data-test="batch-error-gpu-02"]').text()).toBe('host key mismatch');
    expect(w.find('[data-test="batch-step-gpu-02-connect"]').attributes('title')).toBe('host key mismatch');
    expect(w.find('[data-test="batch-error-gpu-01"]').exists()).toBe(false);
    expect(w.find('.el-progress').attributes('aria-valuenow')).toBe('100');
    const zh = await mount(done, 'zh-CN');
    expect(zh.find('[data-test="batch-state"]').text()).toBe('已结束：2 台上线，1 台失败');
    expect(zh.find('[data-test="batch-state-gpu-03"]').text()).toBe('已上线');
  });
});
