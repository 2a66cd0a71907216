// The plan view (web/src/components/PlanView.vue) mounted in happy-dom with plans as
// GET /account-openings/:id/plan, /allocations/:id/plan and /allocations/:id/reclaim-plan return
// them: each step with its builder, the command exactly as sent (not re-quoted or shortened), the
// stdin with the placeholders, the SHA-256 the command record will carry, the login check.
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

  const allocPlan: Schemas['AllocationPlan'] = {
    allocation_id: 'a1', status: 'pending', os_username: 'tenant1', host: { id: 'h1', slug: 'gpu-02' },
    commands: [
      { step: 'create-account', builder: 'hostflow-user-exists', change: false, command: "sh -c 'id -u \"$1\"' 'hostflow-user-exists' 'tenant1'", stdin: null, sha256: 'd'.repeat(64) },
      { step: 'create-account', builder: 'hostflow-set-password', change: true, command: "sudo -n sh -c 'chpasswd' 'hostflow-set-password' 'tenant1'", stdin: 'tenant1:<generated password, 20 chars>\n', sha256: 'e'.repeat(64) },
      { step: 'verify-login', builder: 'hostflow-add-authorized-keys', change: true, command: "sudo -n sh -c 'cat >> ~/.ssh/authorized_keys' 'hostflow-add-authorized-keys' 'tenant1'", stdin: '<throwaway ed25519 verification key, generated at run time>\n', sha256: 'f'.repeat(64) },
    ],
    notes: ['verify-login logs in over SSH as tenant1 with the throwaway key'],
  };

  it('an allocation plan: the account and host, the count of changes, the placeholders in stdin, each command\'s SHA-256; no account-opening login line', () => {
    const w = mountWith(PlanView, { props: { plan: allocPlan, kind: 'allocation' } });
    expect(w.find('[data-test="plan-account"]').text()).toBe('tenant1');
    expect(w.text()).toContain('3 commands, 2 of them change the host');
    expect(w.text()).toContain('the password and the generated keys are shown as placeholders');
    expect(w.findAll('[data-test="plan-stdin"]').map((x) => x.text())).toEqual(['tenant1:<generated password, 20 chars>', '<throwaway ed25519 verification key, generated at run time>']);
    expect(w.findAll('[data-test="plan-sha"]').map((x) => x.attributes('title'))).toEqual(['d'.repeat(64), 'e'.repeat(64), 'f'.repeat(64)]);
    expect(w.find('[data-test="plan-verify"]').exists()).toBe(false);
    expect(w.findAll('[data-test^="plan-step-"]').map((s) => s.classes().includes('change'))).toEqual([false, true, true]);
  });

  it('a reclaim plan with a command whose uid is not known yet: no SHA-256 shown for it; the reclaim wording, in Chinese too', () => {
    const reclaim: Schemas['AllocationPlan'] = { ...allocPlan, commands: [{ step: 'clean-leftovers', builder: 'hostflow-remove-tenant-files', change: true, command: "sudo -n sh -c 'find / -uid \"$2\"' 'hostflow-remove-tenant-files' 'tenant1' '<uid found on the host>'", stdin: null, sha256: null }] };
    const w = mountWith(PlanView, { props: { plan: reclaim, kind: 'reclaim' } });
    expect(w.text()).toContain('The commands reclaim will send to the host');
    expect(w.find('pre').text()).toContain('<uid found on the host>');
    expect(w.find('[data-test="plan-sha"]').exists()).toBe(false);
    const zh = mountWith(PlanView, { props: { plan: reclaim, kind: 'reclaim' } }, { locale: 'zh-CN' });
    expect(zh.text()).toContain('回收时将按步骤顺序发送到主机的命令');
    expect(zh.text()).toContain('共 1 条命令，其中 1 条会修改主机');
  });
});
