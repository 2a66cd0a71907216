// The event catalogue: every event a lifecycle emits, in one place. Each line names the event, the
// variables its templates may use, which of them are moments (shown in the recipient's time zone),
// and the built-in subject/body in both languages (`${var}` as in seed 004 §2.7). Adding an event is
// one line here plus the `notify({ event, ... })` call where it happens. Pure (no I/O): workflows
// import its types.

export const LANGUAGES = ['en', 'zh-CN'] as const;
export type Language = (typeof LANGUAGES)[number];

export interface EventDef {
  vars: readonly string[];
  /** Variables holding a moment (ms since epoch or ISO): rendered in the recipient's time zone. */
  dates?: readonly string[];
  /** Built-in text (template version 0) per language: [subject, body]. */
  text: Record<Language, readonly [string, string]>;
  /** Approval requests: messages carry approve/reject actions (Slack buttons, signed email links). */
  approval?: 'account-opening';
  /**
   * Secret variables (a one-time link, a token): never in the event's data, the send log, the
   * database or workflow history. The activity that emits passes an issuer; the center calls it
   * only when the message really goes out to its direct recipient, renders the secret into that
   * message at send time, and stores the render with each secret shown as `<redacted>`.
   */
  secrets?: readonly string[];
  /** A message the recipient cannot opt out of (it carries a link they asked for): no unsubscribe link or opt-out. */
  transactional?: boolean;
}

const ev = (vars: readonly string[], en: readonly [string, string], zh: readonly [string, string], extra: Partial<EventDef> = {}): EventDef => ({ vars, text: { en, 'zh-CN': zh }, ...extra });

export const EVENTS = {
  'account_opening.submitted': ev(['applicant', 'username', 'host', 'requestId', 'expiresAt'], ['Account request: ${username} on ${host}', '${applicant} asks for the account ${username} on ${host}. Decide before ${expiresAt}. Request: ${requestId}'], ['账号申请：${host} 上的 ${username}', '${applicant} 申请在 ${host} 上开通账号 ${username}，请在 ${expiresAt} 前审批。申请单：${requestId}'], { dates: ['expiresAt'], approval: 'account-opening' }),
  'account_opening.approved': ev(['username', 'host', 'requestId', 'approver'], ['Your account request was approved', 'Your request for ${username} on ${host} was approved by ${approver}; the account is being created. Request: ${requestId}'], ['您的账号申请已通过', '您在 ${host} 上的账号 ${username} 申请已由 ${approver} 批准，正在开通。申请单：${requestId}']),
  'account_opening.rejected': ev(['username', 'host', 'requestId', 'reason'], ['Your account request was rejected', 'Your account opening request was rejected. Reason: ${reason}'], ['您的账号申请被驳回', '您的账号开通申请被驳回。原因：${reason}']),
  'account_opening.expired': ev(['username', 'host', 'requestId'], ['Your account request expired', 'Your account opening request received no decision in time and has expired. You can submit it again.'], ['您的账号申请已过期', '您的账号开通申请未在期限内审批，已过期，可重新提交。']),
  'account_opening.done': ev(['username', 'host', 'requestId'], ['Your account is ready', 'Your account has been created. Reveal its password once in Hostflow (POST /api/v1/account-openings/${requestId}/credentials/reveal).'], ['您的账号已开通', '您的账号已创建。请在 Hostflow 中查看一次性密码（POST /api/v1/account-openings/${requestId}/credentials/reveal）。']),
  'account_opening.failed': ev(['username', 'host', 'requestId', 'error'], ['Your account request failed', 'Creating ${username} on ${host} failed: ${error}. An operator can process it again. Request: ${requestId}'], ['账号开通失败', '在 ${host} 上创建 ${username} 失败：${error}。运维人员可重新处理。申请单：${requestId}']),
  'host.offline': ev(['host', 'hostId', 'failures'], ['Host ${host} is offline', 'Host ${host} failed ${failures} consecutive checks and is now offline.'], ['主机 ${host} 离线', '主机 ${host} 连续 ${failures} 次检查失败，已标记为离线。']),
  'host.online': ev(['host', 'hostId'], ['Host ${host} is online', 'Host ${host} answers again and is back online.'], ['主机 ${host} 已恢复', '主机 ${host} 重新响应，已恢复在线。']),
  'host.onboarded': ev(['host', 'hostId'], ['Host ${host} is onboarded and online', 'Host ${host} passed every onboarding step and is online: it can be allocated now.'], ['主机 ${host} 已完成接入', '主机 ${host} 已通过全部接入步骤并上线，可以分配了。']),
  'host.onboarding_failed': ev(['host', 'hostId', 'step', 'error'], ['Onboarding of ${host} failed at ${step}', 'Onboarding of host ${host} failed at the step ${step}: ${error}\nFix the cause, then retry the onboarding from that step.'], ['主机 ${host} 接入失败（${step}）', '主机 ${host} 在步骤 ${step} 接入失败：${error}\n排除原因后可从该步骤重试接入。']),
  'host.awaiting_confirmation': ev(['host', 'hostId', 'differences'], ['Onboarding of ${host} waits for your confirmation', 'The facts collected on host ${host} differ from what was expected:\n${differences}\n\nConfirm or reject them to continue the onboarding.'], ['主机 ${host} 接入待确认', '主机 ${host} 采集到的配置与预期不符：\n${differences}\n\n请确认或驳回以继续接入。']),
  'allocation.ready': ev(['host', 'summary', 'allocationId'], ['Your host ${host} is ready', '${summary}'], ['您的主机 ${host} 已就绪', '${summary}']),
  'lease.reminder': ev(['host', 'hostSlug', 'days', 'daysText', 'remainingZh', 'endsAt', 'allocationId'], ['Your lease of ${host} ends in ${daysText}', 'Your lease of host ${host} (${hostSlug}) ends on ${endsAt}.\nAsk your account manager to extend it, or save your data before then.\n\nAllocation: ${allocationId}'], ['您租用的 ${host} 将在 ${remainingZh}后到期', '您租用的主机 ${host}（${hostSlug}）将于 ${endsAt} 到期。\n如需续租请联系客户经理，否则请提前保存数据。\n\n分配：${allocationId}'], { dates: ['endsAt'] }),
  'lease.ended': ev(['host', 'hostSlug', 'endsAt', 'bufferEndsAt', 'allocationId'], ['Your lease of ${host} has ended: final notice', 'Your lease of host ${host} (${hostSlug}) ended on ${endsAt}.\nThe host will be reclaimed on ${bufferEndsAt}: your account, keys and files on it will be deleted. Save your data before then.\n\nAllocation: ${allocationId}'], ['您租用的 ${host} 已到期：最后通知', '您租用的主机 ${host}（${hostSlug}）已于 ${endsAt} 到期。\n主机将于 ${bufferEndsAt} 回收，账号、密钥和文件将被删除，请在此之前保存数据。\n\n分配：${allocationId}'], { dates: ['endsAt', 'bufferEndsAt'] }),
  'reclaim.started': ev(['host', 'hostSlug', 'allocationId'], ['${host} is being reclaimed', 'Host ${host} (${hostSlug}) is being reclaimed now. Allocation: ${allocationId}'], ['${host} 正在回收', '主机 ${host}（${hostSlug}）正在回收。分配：${allocationId}']),
  'reclaim.blocked': ev(['host', 'hostSlug', 'tasks', 'graceEndsAt', 'allocationId'], ['Tasks still running on ${host}: they will be stopped on ${graceEndsAt}', 'Host ${host} (${hostSlug}) is being reclaimed, but tasks of yours are still running:\n${tasks}\n\nThey will be stopped (SIGTERM, then SIGKILL) on ${graceEndsAt}.'], ['${host} 上仍有任务运行，将于 ${graceEndsAt} 停止', '主机 ${host}（${hostSlug}）正在回收，但您仍有任务在运行：\n${tasks}\n\n它们将于 ${graceEndsAt} 被停止（先 SIGTERM，后 SIGKILL）。'], { dates: ['graceEndsAt'] }),
  'reclaim.done': ev(['host', 'hostSlug', 'allocationId'], ['${host} has been reclaimed', 'Host ${host} (${hostSlug}) was reclaimed: the account, its keys and files are gone, and the host is back in the pool. Allocation: ${allocationId}'], ['${host} 已回收', '主机 ${host}（${hostSlug}）已回收：账号、密钥和文件已删除，主机已回到资源池。分配：${allocationId}']),
  'reclaim.failed': ev(['host', 'hostSlug', 'allocationId', 'step', 'error'], ['Reclaim of ${host} failed at ${step}', 'Reclaiming host ${host} (${hostSlug}) failed at the step ${step}: ${error}\nThe host stays in maintenance; retry the reclaim once the cause is fixed. Allocation: ${allocationId}'], ['${host} 回收失败（${step}）', '主机 ${host}（${hostSlug}）在步骤 ${step} 回收失败：${error}\n主机保持维护状态，排除原因后请重试回收。分配：${allocationId}']),
  'ssh_key.revoked': ev(['keyId', 'keyName', 'fingerprint', 'hosts'], ['Your SSH key ${keyName} was revoked', 'Your SSH key ${keyName} (${fingerprint}) was revoked and removed from ${hosts} host(s). Logins with it are refused from now on.'], ['您的 SSH 密钥 ${keyName} 已被吊销', '您的 SSH 密钥 ${keyName}（${fingerprint}）已被吊销，并已从 ${hosts} 台主机上移除，此后无法再用它登录。']),
  'security.login_failures': ev(['username', 'ip', 'at', 'severity', 'detail'], ['Security alert: repeated login failures for ${username}', 'The account ${username} had repeated failed logins (last from ${ip} at ${at}): ${detail}. Severity: ${severity}.'], ['安全告警：${username} 多次登录失败', '账号 ${username} 多次登录失败（最近一次来自 ${ip}，${at}）：${detail}。级别：${severity}。'], { dates: ['at'] }),
  'security.new_ip_login': ev(['username', 'ip', 'at', 'severity', 'detail'], ['Security alert: ${username} logged in from a new address', 'The account ${username} logged in from ${ip}, an address it never used before, at ${at}. If this was not you, change your password and end your sessions. Severity: ${severity}.'], ['安全告警：${username} 从新地址登录', '账号 ${username} 于 ${at} 从从未使用过的地址 ${ip} 登录。如非本人操作，请修改密码并结束所有会话。级别：${severity}。'], { dates: ['at'] }),
  'security.off_hours_access': ev(['username', 'ip', 'at', 'severity', 'detail'], ['Security alert: off-hours access by ${username}', '${username} accessed Hostflow outside working hours at ${at} from ${ip}: ${detail}. Severity: ${severity}.'], ['安全告警：${username} 非工作时间访问', '${username} 于非工作时间 ${at} 从 ${ip} 访问 Hostflow：${detail}。级别：${severity}。'], { dates: ['at'] }),
  'security.refresh_token_reuse': ev(['username', 'ip', 'at', 'severity', 'detail'], ['Security alert: a used refresh token of ${username} was presented again', 'A refresh token of ${username} was used a second time (from ${ip} at ${at}): the session family was revoked. If this was not you, change your password. Severity: ${severity}.'], ['安全告警：${username} 的刷新令牌被重复使用', '${username} 的刷新令牌被再次使用（来自 ${ip}，${at}），该会话族已全部吊销。如非本人操作，请修改密码。级别：${severity}。'], { dates: ['at'] }),
  'security.repeated_forbidden': ev(['username', 'ip', 'at', 'severity', 'detail'], ['Security alert: repeated refused requests by ${username}', '${username} (from ${ip}) was refused (403) repeatedly up to ${at}: ${detail}. Severity: ${severity}.'], ['安全告警：${username} 多次越权请求被拒', '${username}（来自 ${ip}）截至 ${at} 多次请求被拒绝（403）：${detail}。级别：${severity}。'], { dates: ['at'] }),
  'role_grant.reminder': ev(['role', 'until'], ['Your role ${role} ends tomorrow', 'Your time-bound role "${role}" ends at ${until}. Ask an admin to extend it if you still need it.'], ['您的角色 ${role} 将于明天到期', '您的限时角色「${role}」将于 ${until} 到期，如需继续使用请联系管理员延期。'], { dates: ['until'] }),
  'role_grant.expired': ev(['role', 'until'], ['Your role ${role} has ended', 'Your time-bound role "${role}" ended at ${until} and was removed from your account.'], ['您的角色 ${role} 已到期', '您的限时角色「${role}」已于 ${until} 到期并被移除。'], { dates: ['until'] }),
  'role_grant.revoked': ev(['role', 'reason'], ['Your role ${role} was revoked', 'Your time-bound role "${role}" was revoked. Reason: ${reason}'], ['您的角色 ${role} 已被撤销', '您的限时角色「${role}」已被撤销。原因：${reason}']),
  'remote_session.staff_connected': ev(['staff', 'host', 'hostSlug', 'protocol', 'at', 'sessionId', 'allocationId'], ['Hostflow staff connected to your host ${host}', '${staff} of the Hostflow staff opened a ${protocol} session on your rented host ${host} (${hostSlug}) at ${at}. The session is recorded and audited. Session: ${sessionId}'], ['Hostflow 工作人员连接了您的主机 ${host}', 'Hostflow 工作人员 ${staff} 于 ${at} 在您租用的主机 ${host}（${hostSlug}）上打开了 ${protocol} 会话，该会话已录像并审计。会话：${sessionId}'], { dates: ['at'] }),
  'registration.verify': ev(['name', 'link', 'token', 'apiBase', 'expiresAt'], ['Confirm your email address for Hostflow', 'Hello ${name},\n\nconfirm your email address to send your registration for review:\n\n${link}\n\n(API: POST ${apiBase}/api/v1/registrations/verify {"token": "${token}"})\n\nThe link works once, until ${expiresAt}.'], ['请确认您在 Hostflow 的邮箱地址', '${name} 您好：\n\n请确认您的邮箱地址，以便提交注册申请供审核：\n\n${link}\n\n（API：POST ${apiBase}/api/v1/registrations/verify {"token": "${token}"}）\n\n该链接仅可使用一次，有效期至 ${expiresAt}。'], { dates: ['expiresAt'], secrets: ['link', 'token'], transactional: true }),
  'registration.resubmit': ev(['name', 'comment', 'link', 'token', 'apiBase', 'registrationId', 'expiresAt'], ['Your Hostflow registration needs changes', 'Hello ${name},\n\nthe reviewer of your registration asked for changes:\n\n${comment}\n\nCorrect your registration here:\n\n${link}\n\n(API: PUT ${apiBase}/api/v1/registrations/${registrationId} {"token": "${token}", ...})\n\nThe link works once, until ${expiresAt}.'], ['您的 Hostflow 注册申请需要修改', '${name} 您好：\n\n审核人要求您修改注册申请：\n\n${comment}\n\n请在此修改：\n\n${link}\n\n（API：PUT ${apiBase}/api/v1/registrations/${registrationId} {"token": "${token}", ...}）\n\n该链接仅可使用一次，有效期至 ${expiresAt}。'], { dates: ['expiresAt'], secrets: ['link', 'token'], transactional: true }),
  'registration.activation': ev(['name', 'username', 'roles', 'link', 'expiresAt'], ['Your Hostflow account is ready: set your password', 'Hello ${name},\n\nyour Hostflow account "${username}" is active with the roles ${roles}.\nSet your password here (the link works once, until ${expiresAt}):\n\n${link}\n\nThen log in with the username ${username}.'], ['您的 Hostflow 账号已开通：请设置密码', '${name} 您好：\n\n您的 Hostflow 账号「${username}」已开通，角色：${roles}。\n请在此设置密码（链接仅可使用一次，有效期至 ${expiresAt}）：\n\n${link}\n\n然后使用用户名 ${username} 登录。'], { dates: ['expiresAt'], secrets: ['link'], transactional: true }),
  // The registration's reviewers (department admins, then whoever may approve roles) and its applicant (an address, not a user yet).
  'registration.department_review': ev(['name', 'email', 'roles', 'reason', 'registrationId', 'expiresAt', 'consoleUrl'], ['Registration of ${name} waits for department review', '${name} <${email}> asks for the roles ${roles}.\nReason: ${reason}\n\nReview it in Hostflow: ${consoleUrl} (API: GET /api/v1/registrations/${registrationId}). It expires at ${expiresAt}.'], ['${name} 的注册申请等待部门审核', '${name} <${email}> 申请角色：${roles}。\n理由：${reason}\n\n请在 Hostflow 中审核：${consoleUrl}（API：GET /api/v1/registrations/${registrationId}），截止时间 ${expiresAt}。'], { dates: ['expiresAt'] }),
  'registration.department_reminder': ev(['name', 'email', 'roles', 'reason', 'registrationId', 'expiresAt', 'consoleUrl'], ['Reminder: registration of ${name} waits for department review', '${name} <${email}> still waits for your department review (roles ${roles}).\nReason: ${reason}\n\nReview it in Hostflow: ${consoleUrl} (API: GET /api/v1/registrations/${registrationId}). It expires at ${expiresAt}.'], ['提醒：${name} 的注册申请仍在等待部门审核', '${name} <${email}> 的注册申请（角色：${roles}）仍在等待您的部门审核。\n理由：${reason}\n\n请在 Hostflow 中审核：${consoleUrl}（API：GET /api/v1/registrations/${registrationId}），截止时间 ${expiresAt}。'], { dates: ['expiresAt'] }),
  'registration.role_approval': ev(['name', 'email', 'roles', 'reason', 'registrationId', 'expiresAt', 'consoleUrl'], ['Registration of ${name} waits for role approval', '${name} <${email}> asks for the roles ${roles}; the department has approved.\nReason: ${reason}\n\nDecide in Hostflow: ${consoleUrl} (API: GET /api/v1/registrations/${registrationId}). It expires at ${expiresAt}.'], ['${name} 的注册申请等待角色审批', '${name} <${email}> 申请角色：${roles}，部门已审核通过。\n理由：${reason}\n\n请在 Hostflow 中审批：${consoleUrl}（API：GET /api/v1/registrations/${registrationId}），截止时间 ${expiresAt}。'], { dates: ['expiresAt'] }),
  'registration.role_reminder': ev(['name', 'email', 'roles', 'reason', 'registrationId', 'expiresAt', 'consoleUrl'], ['Reminder: registration of ${name} waits for role approval', '${name} <${email}> still waits for role approval (roles ${roles}).\nReason: ${reason}\n\nDecide in Hostflow: ${consoleUrl} (API: GET /api/v1/registrations/${registrationId}). It expires at ${expiresAt}.'], ['提醒：${name} 的注册申请仍在等待角色审批', '${name} <${email}> 的注册申请（角色：${roles}）仍在等待角色审批。\n理由：${reason}\n\n请在 Hostflow 中审批：${consoleUrl}（API：GET /api/v1/registrations/${registrationId}），截止时间 ${expiresAt}。'], { dates: ['expiresAt'] }),
  'registration.rejected': ev(['name', 'reason', 'registrationId'], ['Your Hostflow registration was rejected', 'Hello ${name},\n\nyour Hostflow registration was rejected.\nReason: ${reason}'], ['您的 Hostflow 注册申请被驳回', '${name} 您好：\n\n您的 Hostflow 注册申请被驳回。\n原因：${reason}'], { transactional: true }),
  'registration.expired': ev(['name', 'registrationId'], ['Your Hostflow registration expired', 'Hello ${name},\n\nyour Hostflow registration was not completed in time and has expired. You can register again.'], ['您的 Hostflow 注册申请已过期', '${name} 您好：\n\n您的 Hostflow 注册申请未在期限内完成，已过期，您可以重新注册。'], { transactional: true }),
  'registration.verified': ev(['name', 'registrationId'], ['Your Hostflow registration is under review', 'Hello ${name},\n\nyour email address is confirmed; your registration now waits for the review of your department.'], ['您的 Hostflow 注册申请正在审核', '${name} 您好：\n\n您的邮箱地址已确认，注册申请正在等待部门审核。'], { transactional: true }),
  'notification.test': ev(['by', 'note'], ['Hostflow test notification', 'This is a test notification sent by ${by}. ${note}'], ['Hostflow 测试通知', '这是 ${by} 发送的测试通知。${note}']),
} as const satisfies Record<string, EventDef>;

export type EventName = keyof typeof EVENTS;

/**
 * Variables the center adds to every event (templates may use them; lifecycles never pass them):
 * `consoleUrl`, the console page about the occurrence (a page that requires signing in; see
 * console-links.ts).
 */
export const CENTER_VARS = ['consoleUrl'] as const;
/** Every variable a template of the event may use. */
export const templateVarsOf = (def: EventDef): string[] => [...new Set([...def.vars, ...CENTER_VARS])];
export const EVENT_NAMES = Object.keys(EVENTS) as EventName[];
export const isEventName = (s: string): s is EventName => Object.hasOwn(EVENTS, s);

/** Who a lifecycle addresses directly (its default audience); subscriptions add more. */
export interface Audience {
  userIds?: string[];
  /** Everyone holding the role (e.g. `admin` for host alerts). */
  roles?: string[];
  /** Everyone whose roles grant the permission (e.g. approvers: `account_opening.approve`). */
  permission?: string;
  /** Users never addressed (the applicant of their own approval request). */
  exceptUserIds?: string[];
  /**
   * The person the occurrence is about, resolved by the center from the event's ids: the
   * allocation's customer user (`allocationId`), the key's owner (`keyId`), the security event's
   * user (`securityEventId`). Lifecycles name ids, not people.
   */
  owner?: boolean;
  /** Email addresses that are not (yet) users, e.g. a registration's applicant: email only. */
  emails?: string[];
}

/** The `notify` activity's input: one event occurrence. */
export interface EmitInput {
  event: EventName;
  /** Business id of this occurrence, e.g. `account-opening/<id>/done`: with recipient and channel, the message key. */
  key: string;
  data: Record<string, string | number | null>;
  to?: Audience;
  /** Language of the `emails` recipients (they have no preference stored); the platform default otherwise. */
  language?: Language;
}
