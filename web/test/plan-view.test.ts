// The plan view (web/src/components/PlanView.vue) mounted in happy-dom with a plan as
// GET /account-openings/:id/plan returns it: each step with its builder, the command exactly as
// sent (not re-quoted or shortened), the stdin with the password placeholder, the login check.
import { describe, expect, it } from 'vitest';
import PlanView from '@/components/PlanView.vue';
import type { Schemas } from '@/api/client';
import { mountWith } from './mount';

const command = `sudo -n sh -c 'set -eu\nuseradd -m -c "$2" -- "$1"' 'hostflow-create-user' 'alice' 'Alice O'\\''Brien'`;
const plan: Schemas['AccountOpeningPlan'] = {
  request_id: 'r1', status: 'pending', username: 'alice', groups: ['users', 'sudo'],
  host: { id: 'h1', slug: 'gpu-01', os: 'linux', address: '10.0.0.1', port: 22, username: 'ops' },
  commands: [
    { step: 'check-existing', builder: 'hostflow-user-exists', change: false, command: "sh -c 'id -u \"$1\"' 'hostflow-user-exists' 'alice'", stdin: null, sha256: 'a'.repeat(64) },
    { step: 'create', builder: 'hostflow-create-user', change: true, command, stdin: null, sha256: 'b'.repeat(64) },
    { step: 'create', builder: 'hostflow-set-password', change: true, command: "sudo -n sh -c 'chpasswd' 'hostflow-set-password' 'alice'", stdin: 'alice:<generated password, 20 chars>\n', sha256: 'c'.repeat(64) },
  ],
  verify: 'log in over SSH as alice with the new password and run: id -un; id -nG',
  notes: ['If alice already exists …'],
};

describe('PlanView', () => {
  it('shows every step with its builder, the command verbatim, the stdin placeholder and the login check', () => {
    const w = mountWith(PlanView, { props: { plan } });
    const steps = w.findAll('[data-test^="plan-step-"]');
    expect(steps).toHaveLength(3);
    expect(steps.map((s) => s.find('.builder').text())).toEqual(['hostflow-user-exists', 'hostflow-create-user', 'hostflow-set-password']);
    expect(steps[1]!.find('pre').text()).toBe(command);
    expect(steps[1]!.classes()).toContain('change');
    expect(steps[0]!.classes()).not.toContain('change');
    expect(w.findAll('[data-test="plan-stdin"]').map((x) => x.text())).toEqual(['alice:<generated password, 20 chars>']);
    expect(w.find('[data-test="plan-groups"]').text()).toBe('users, sudo');
    expect(w.find('[data-test="plan-verify"]').text()).toContain('id -un; id -nG');
    expect(w.text()).toContain('ops@10.0.0.1:22');
  });

  it('in Chinese', () => {
    const w = mountWith(PlanView, { props: { plan } }, { locale: 'zh-CN' });
    expect(w.text()).toContain('由实际执行它们的同一套构建器生成');
    expect(w.find('[data-test="plan-stdin"]').element.parentElement!.textContent).toContain('标准输入');
  });
});
