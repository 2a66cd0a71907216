// Separation of duties, the one rule every approval flow applies (account opening, registration,
// role grants, decisions from an email link or a Slack button, and any later flow): nobody decides
// their own request. Pure and deterministic, so the API (api/authz/duties.ts) and the workflows'
// Update validators call the same function. Validators never run on replay: no patch marker needed.

/** Who acts or who asked: a user id and/or an e-mail address (a registration has only the address at first). */
export interface Party {
  id?: string | null;
  email?: string | null;
}

/** Is the actor the requester (same user id, or same e-mail address ignoring case)? */
export function isSameParty(actor: Party, requester: Party): boolean {
  if (actor.id && requester.id && actor.id === requester.id) return true;
  return Boolean(actor.email && requester.email && actor.email.toLowerCase() === requester.email.toLowerCase());
}
