// Separation of duties: nobody decides their own request (account opening, registration, role
// grant, any later approval flow). One helper so every flow answers the same way.
import { forbidden } from '../errors.js';

export function assertNotSelf(principal: { id: string }, requesterId: string, what: string): void {
  if (principal.id === requesterId) throw forbidden(`separation of duties: you cannot decide your own ${what}`);
}

/**
 * No escalation: a principal can only hand out (in a role they define, or a role they grant)
 * permissions they hold themselves. Throws 403 naming what is beyond them.
 */
export function assertWithinOwn(principal: { permissions: ReadonlySet<string> }, granted: Iterable<string>, what: string): void {
  const beyond = [...new Set(granted)].filter((p) => !principal.permissions.has(p)).sort();
  if (beyond.length) throw forbidden(`${what} would grant permissions you do not hold: ${beyond.join(', ')}`);
}
