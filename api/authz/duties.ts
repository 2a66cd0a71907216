// Separation of duties: nobody decides their own request (account opening, registration, role
// grant, any later approval flow). One helper so every flow answers the same way.
import { forbidden } from '../errors.js';

export function assertNotSelf(principal: { id: string }, requesterId: string, what: string): void {
  if (principal.id === requesterId) throw forbidden(`separation of duties: you cannot decide your own ${what}`);
}
