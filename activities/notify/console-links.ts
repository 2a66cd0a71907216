// What a message links to in the console. Group robots (DingTalk / WeCom / Feishu) post into a
// shared chat: anyone in the group can click, so a group message carries only a link to the console
// page about the occurrence — a page that requires signing in and then shows what that person's own
// permissions and scope allow — and never a signed one-click action link (those go to one approver,
// by email or as Slack buttons bound to the clicking user). Pure: the center calls it with the
// event's data after enrichment. Keyed by the id variables, like enrichment, so a new event that
// names an `allocationId` or `hostId` links to its page without a line here.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The console path (web/src/router) for an occurrence: a list or detail page, never an action. */
export function consolePath(event: string, data: Record<string, unknown>): string {
  const id = (k: string) => (typeof data[k] === 'string' && UUID.test(data[k]) ? (data[k] as string) : null);
  if (event.startsWith('registration.')) return '/admin/registrations';
  if (event.startsWith('account_opening.')) return '/account-openings';
  if (event.startsWith('security.')) return '/audit';
  if (event.startsWith('ssh_key.')) return '/ssh-keys';
  if (event.startsWith('role_grant.')) return '/profile';
  const allocation = id('allocationId');
  if (allocation) return `/allocations/${allocation}`;
  const host = id('hostId');
  if (host) return `/hosts/${host}`;
  if (event.startsWith('remote_session.')) return '/remote/sessions';
  return '/';
}

/** The absolute URL of consolePath under the public base URL (PUBLIC_BASE_URL). */
export function consoleUrl(base: string, event: string, data: Record<string, unknown>): string {
  return `${base.replace(/\/+$/, '')}${consolePath(event, data)}`;
}

/** The link line under a robot's group message, in the message's language. */
export const ROBOT_LINK_LABEL: Record<string, string> = { en: 'Open in Hostflow (sign-in required)', 'zh-CN': '在 Hostflow 中查看（需登录）' };
