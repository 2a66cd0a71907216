/**
 * Who sent an Update, as the API resolved them: permissions come from the roles table
 * (api/authz). Validators check the permission; actors recorded before permissions existed (in
 * replayed histories) carry only role names, so those fall back to the built-in role names.
 * Validators never run on replay and emit no commands, so this needs no patch marker.
 */
export function actorMay(actor: { roles: string[]; permissions?: string[] }, permission: string, legacyRoles: string[]): boolean {
  if (actor.permissions) return actor.permissions.includes(permission);
  return legacyRoles.some((r) => actor.roles.includes(r));
}
