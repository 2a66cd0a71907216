// Separation of duties: nobody decides their own request (account opening, registration, role
// grant, decisions from messages, any later approval flow). The rule itself is
// workflows/shared/duties.ts (the workflows' Update validators use it too); this turns it into the
// API's 403.
import { forbidden } from '../errors.js';
import { isSameParty, type Party } from '../../workflows/shared/duties.js';

export function assertNotSelf(actor: Party, requester: string | Party, what: string, message = `separation of duties: you cannot decide your own ${what}`): void {
  if (isSameParty(actor, typeof requester === 'string' ? { id: requester } : requester)) throw forbidden(message);
}

/**
 * No escalation: a principal can only hand out (in a role they define, or a role they grant)
 * permissions they hold themselves. Throws 403 naming what is beyond them.
 */
export function assertWithinOwn(principal: { permissions: ReadonlySet<string> }, granted: Iterable<string>, what: string): void {
  const beyond = [...new Set(granted)].filter((p) => !principal.permissions.has(p)).sort();
  if (beyond.length) throw forbidden(`${what} would grant permissions you do not hold: ${beyond.join(', ')}`);
}
