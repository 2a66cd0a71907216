import type { HostStatus } from './entities/host.entity.js';

/**
 * The host status machine, in one place:
 * pending → onboarding → online ⇄ maintenance → offline / failed (and back through onboarding).
 */
export const HOST_TRANSITIONS: Readonly<Record<HostStatus, readonly HostStatus[]>> = {
  pending: ['onboarding'],
  onboarding: ['online', 'failed'],
  online: ['maintenance', 'offline'],
  maintenance: ['online', 'offline', 'failed'],
  offline: ['onboarding', 'online', 'maintenance'],
  failed: ['onboarding', 'maintenance'],
};

export function canTransition(from: HostStatus, to: HostStatus): boolean {
  return HOST_TRANSITIONS[from].includes(to);
}

export class HostTransitionError extends Error {
  constructor(
    public readonly from: HostStatus,
    public readonly to: HostStatus,
  ) {
    super(`host cannot go from ${from} to ${to} (allowed: ${HOST_TRANSITIONS[from].join(', ') || 'none'})`);
  }
}

export function assertTransition(from: HostStatus, to: HostStatus): void {
  if (!canTransition(from, to)) throw new HostTransitionError(from, to);
}
