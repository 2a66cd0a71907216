// classifyCommand against the real command builders: the audited executor names the builder of
// every command and records only the changing ones (no servers needed: pure functions).
import { describe, expect, it } from 'vitest';
import { classifyCommand } from '../../activities/remote/audited-executor.js';
import * as linux from '../../activities/remote/linux.js';
import * as windows from '../../activities/remote/windows.js';
import { LINUX_FACTS_COMMAND } from '../../activities/remote/facts.js';

describe('classifyCommand', () => {
  it('names Linux builders by their $0 and tells reads from changes', () => {
    expect(classifyCommand(linux.createUser({ username: 'ana', fullName: "O'Brien 'hostflow-user-exists' x", markerRef: 'r1' }))).toEqual({ builder: 'hostflow-create-user', change: true });
    expect(classifyCommand(linux.setPassword('ana').script)).toEqual({ builder: 'hostflow-set-password', change: true });
    expect(classifyCommand(linux.deleteUser('ana', { removeHome: true }))).toEqual({ builder: 'hostflow-delete-user', change: true });
    expect(classifyCommand(linux.addAuthorizedKeys('ana', ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x']).script).builder).toBe('hostflow-add-authorized-keys');
    expect(classifyCommand(linux.userExists('ana'))).toEqual({ builder: 'hostflow-user-exists', change: false });
    expect(classifyCommand(linux.listAuthorizedKeys('ana'))).toEqual({ builder: 'hostflow-list-authorized-keys', change: false });
    expect(classifyCommand(linux.tenantFootprint({ username: 'ana' }))).toEqual({ builder: 'hostflow-tenant-footprint', change: false });
    expect(classifyCommand(LINUX_FACTS_COMMAND)).toEqual({ builder: 'facts', change: false });
    expect(classifyCommand('true')).toEqual({ builder: 'noop', change: false });
  });
  it('names PowerShell builders by their first changing cmdlet; unknown commands count as changes', () => {
    expect(classifyCommand(windows.createUser({ username: 'ana', fullName: 'Ana' }).script)).toEqual({ builder: 'ps:New-LocalUser', change: true });
    expect(classifyCommand(windows.disableUser('ana'))).toEqual({ builder: 'ps:Disable-LocalUser', change: true });
    expect(classifyCommand(windows.userExists('ana'))).toEqual({ builder: 'ps:read', change: false });
    expect(classifyCommand('apt-get install -y cuda')).toEqual({ builder: 'command', change: true });
  });
});
