/**
 * Command builders for Windows hosts: pure functions from validated values to PowerShell scripts,
 * which the WinRM executor sends with `powershell -EncodedCommand`.
 *
 * Every value is validated (validation.ts) and embedded only as a single-quoted literal (`psq`),
 * where PowerShell performs no expansion at all ($, backtick, (), ; are plain characters). Secrets
 * are never in a script (the script is in powershell.exe's command line on the host): they go
 * through stdin, which the WinRM executor reads into `$HostflowStdin` (see STDIN_PRELUDE in
 * winrm-executor.ts), and builders that need one return `{ script, stdin(secret) }`. Scripts put one
 * statement per line, as a Windows administrator writes them (LocalAccounts, CIM, ScheduledTasks
 * cmdlets, `quser`/`logoff`/`net user`). The WS-Man stand-in (test/helpers/wsman-host.ts)
 * interprets what these builders emit, and grows with them; what it does not interpret fails loudly
 * there. The constructs used:
 *
 *   $ErrorActionPreference = 'Stop'                                  (first line)
 *   New-LocalUser -Name '<n>' -Password (ConvertTo-SecureString $HostflowStdin -AsPlainText -Force) -FullName '<f>' [-Description '<d>'] [-PasswordNeverExpires]
 *   Set-LocalUser -Name '<n>' -Password (ConvertTo-SecureString $HostflowStdin -AsPlainText -Force)
 *   Add-LocalGroupMember -Group '<g>' -Member '<n>'
 *   Disable-LocalUser -Name '<n>'   Enable-LocalUser -Name '<n>'   Remove-LocalUser -Name '<n>'
 *   Write-Output '<text>'   Write-Output ('<text>' + $g.Name)   exit <n>
 *   guards:  if ($null -eq (Get-LocalUser -Name '<n>' -ErrorAction SilentlyContinue)) {   ...   }
 *            if ($null -ne (Get-LocalUser -Name '<n>' -ErrorAction SilentlyContinue)) {   ...   }
 *            if ($null -eq (Get-LocalGroup -Name '<g>' -ErrorAction SilentlyContinue)) {  ...   }
 *   idempotent add:  try {  Add-LocalGroupMember ...  Write-Output ...  }
 *                    catch [Microsoft.PowerShell.Commands.MemberExistsException] {  Write-Output ...  }
 *   exact lookup:    try {  $u = Get-LocalUser -Name '<n>'  }
 *                    catch [Microsoft.PowerShell.Commands.UserNotFoundException] {  Write-Output ...  exit <n>  }
 *                    (only "not found" means absent; any other error — access denied, RPC down —
 *                    ends the script with exit 1 and no marker: the caller cannot tell, and retries)
 *   profile:         $p = Get-CimInstance -ClassName Win32_UserProfile -Filter ('SID = ''' + $u.SID + '''')
 *                    Remove-CimInstance -InputObject $p
 *   tenant:          foreach ($p in Get-CimInstance -ClassName Win32_Process) {   (owner by SID: Invoke-CimMethod GetOwnerSid)
 *                    foreach ($t in Get-ScheduledTask) {   if ($t.Principal.UserId -eq $name -or ...) {
 *                    Stop-Process -Id $p.ProcessId -Force   Unregister-ScheduledTask -TaskName ... -Confirm:$false
 *                    net user '<n>' /logonpasswordchg:yes   (expire the password; $LASTEXITCODE checked)
 *   membership:  foreach ($g in Get-LocalGroup) {
 *                  if ($null -ne (Get-LocalGroupMember -Group $g.Name -Member '<n>' -ErrorAction SilentlyContinue)) { ... }
 *                }
 *
 * Names given to -Name/-Group/-Member cannot contain the wildcard characters * ? [ ] (the
 * validators refuse them), so every lookup is an exact match.
 *
 * Results: exit codes in `WINDOWS_EXIT` (an uncaught error exits 1), `HOSTFLOW_*` lines on stdout
 * (parse with `parseMarkers` from linux.ts).
 */
import { z } from 'zod';
import type { StdinCommand } from './linux.js';
import {
  InvalidInputError,
  fullName as fullNameSchema,
  password as passwordSchema,
  validate,
  validateList,
  windowsGroupName,
  windowsUserDescription,
  windowsUsername,
} from './validation.js';

export const WINDOWS_EXIT = {
  OK: 0,
  /** userExists only: the user does not exist (also what an uncaught error gives: check stdout). */
  NOT_FOUND: 1,
  MISSING_GROUP: 3,
  /** lockUser: `net user /logonpasswordchg:yes` failed. */
  EXPIRE_FAILED: 5,
  NO_SUCH_USER: 6,
  USER_EXISTS: 9,
} as const;

/** A Windows security identifier as Get-LocalUser prints it (S-1-5-21-…-<rid>). */
const sidSchema = z.string().regex(/^S-1-[0-9]+(?:-[0-9]+){1,14}$/, 'must be a SID (S-1-5-21-...)');

/** Characters PowerShell's tokenizer treats as a single quote: ' ‘ ’ ‚ ‛ */
const PS_SINGLE_QUOTES = /['\u2018\u2019\u201A\u201B]/g;

/**
 * PowerShell single-quoted literal whose value is exactly `value`. Inside such a literal the only
 * special characters are the five single-quote variants, each escaped by doubling it (what
 * PowerShell's own CodeGeneration.EscapeSingleQuotedStringContent does). NUL is refused.
 */
export function psq(value: string): string {
  if (typeof value !== 'string') throw new TypeError('psq: value must be a string');
  if (value.includes('\0')) throw new InvalidInputError('value', 'value must not contain a NUL character');
  return `'${value.replace(PS_SINGLE_QUOTES, (q) => q + q)}'`;
}

const HEADER = "$ErrorActionPreference = 'Stop'";

const say = (marker: string, value?: string) => `Write-Output ${psq(value === undefined ? `HOSTFLOW_${marker}` : `HOSTFLOW_${marker} ${value}`)}`;

function requireUser(name: string): string[] {
  return [
    `if ($null -eq (Get-LocalUser -Name ${psq(name)} -ErrorAction SilentlyContinue)) {`,
    `  ${say('NO_SUCH_USER', name)}`,
    `  exit ${WINDOWS_EXIT.NO_SUCH_USER}`,
    '}',
  ];
}

/** The password read from stdin (never a literal: the script is visible in the host's process list). */
const SECURE_FROM_STDIN = '(ConvertTo-SecureString $HostflowStdin -AsPlainText -Force)';

/** What the caller sends as stdin for a script using SECURE_FROM_STDIN: the validated password, as is. */
const passwordStdin = (password: string) => validate(passwordSchema, password, 'password');

const lines = (...ls: (string | string[])[]) => ls.flat().join('\n') + '\n';

/**
 * `$u = Get-LocalUser -Name '<n>'` (Stop on error) with a catch for "not found" only, printing
 * `HOSTFLOW_NO_SUCH_USER <name>` and exiting `exitCode`; any other failure is not caught.
 */
function lookupUser(name: string, exitCode: number): string[] {
  return [
    'try {',
    `  $u = Get-LocalUser -Name ${psq(name)}`,
    '}',
    'catch [Microsoft.PowerShell.Commands.UserNotFoundException] {',
    `  ${say('NO_SUCH_USER', name)}`,
    `  exit ${exitCode}`,
    '}',
  ];
}

/**
 * Exit 0 and `HOSTFLOW_USER_EXISTS` if the local user exists, exit 1 and `HOSTFLOW_NO_SUCH_USER`
 * if Windows says it does not. Any other failure (access denied, the SAM/RPC unavailable) is an
 * uncaught error: exit 1 with neither marker — "could not tell", never "absent".
 */
export function userExists(username: string): string {
  const n = validate(windowsUsername, username, 'username');
  return lines(HEADER, lookupUser(n, WINDOWS_EXIT.NOT_FOUND), say('USER_EXISTS', n), 'exit 0');
}

export interface CreateWindowsUserInput {
  username: string;
  fullName: string;
  /** At most 48 characters (New-LocalUser's limit); omitted from the command when empty. */
  description?: string;
  passwordNeverExpires?: boolean;
}

/**
 * `New-LocalUser` after checking the user does not exist (exit 9, `HOSTFLOW_USER_EXISTS`). Prints
 * `HOSTFLOW_USER_CREATED <name>`.
 *
 * The password is not in the script: pass `stdin(password)` as `ExecOptions.stdin` (it travels in
 * the WS-Man Send stream and is read into `$HostflowStdin`). Without stdin, ConvertTo-SecureString
 * gets $null, fails, and no user is created.
 */
export function createUser(input: CreateWindowsUserInput): StdinCommand<(password: string) => string> {
  const n = validate(windowsUsername, input.username, 'username');
  const f = validate(fullNameSchema, input.fullName, 'fullName');
  const d = validate(windowsUserDescription, input.description ?? '', 'description');
  const never = validate(z.boolean(), input.passwordNeverExpires ?? false, 'passwordNeverExpires');
  let cmd = `New-LocalUser -Name ${psq(n)} -Password ${SECURE_FROM_STDIN} -FullName ${psq(f)}`;
  if (d !== '') cmd += ` -Description ${psq(d)}`;
  if (never) cmd += ' -PasswordNeverExpires';
  const script = lines(
    HEADER,
    `if ($null -ne (Get-LocalUser -Name ${psq(n)} -ErrorAction SilentlyContinue)) {`,
    `  ${say('USER_EXISTS', n)}`,
    `  exit ${WINDOWS_EXIT.USER_EXISTS}`,
    '}',
    cmd,
    say('USER_CREATED', n),
  );
  return { script, stdin: passwordStdin };
}

/**
 * `Add-LocalGroupMember` per group, idempotent ("already a member" prints
 * `HOSTFLOW_ALREADY_MEMBER <g>`, otherwise `HOSTFLOW_ADDED_GROUP <g>`). Checks first that the user
 * (exit 6) and every group exist (exit 3 with `HOSTFLOW_MISSING_GROUP <g>` for the first missing
 * one), so nothing changes when one is missing.
 */
export function addToGroups(username: string, groups: readonly string[]): string {
  const n = validate(windowsUsername, username, 'username');
  const gs = validateList(windowsGroupName, groups, 'groups');
  const checks = gs.flatMap((g) => [
    `if ($null -eq (Get-LocalGroup -Name ${psq(g)} -ErrorAction SilentlyContinue)) {`,
    `  ${say('MISSING_GROUP', g)}`,
    `  exit ${WINDOWS_EXIT.MISSING_GROUP}`,
    '}',
  ]);
  const adds = gs.flatMap((g) => [
    'try {',
    `  Add-LocalGroupMember -Group ${psq(g)} -Member ${psq(n)}`,
    `  ${say('ADDED_GROUP', g)}`,
    '}',
    'catch [Microsoft.PowerShell.Commands.MemberExistsException] {',
    `  ${say('ALREADY_MEMBER', g)}`,
    '}',
  ]);
  return lines(HEADER, requireUser(n), checks, adds);
}

/** `Disable-LocalUser` (exit 6 if missing). Prints `HOSTFLOW_DISABLED <name>`. */
export function disableUser(username: string): string {
  const n = validate(windowsUsername, username, 'username');
  return lines(HEADER, requireUser(n), `Disable-LocalUser -Name ${psq(n)}`, say('DISABLED', n));
}

/** `Enable-LocalUser` (exit 6 if missing). Prints `HOSTFLOW_ENABLED <name>`. */
export function enableUser(username: string): string {
  const n = validate(windowsUsername, username, 'username');
  return lines(HEADER, requireUser(n), `Enable-LocalUser -Name ${psq(n)}`, say('ENABLED', n));
}

/**
 * `Set-LocalUser -Password` (exit 6 if missing), the password read from stdin as in createUser:
 * pass `stdin(password)` as `ExecOptions.stdin`. Prints `HOSTFLOW_PASSWORD_SET <name>`.
 */
export function setPassword(username: string): StdinCommand<(password: string) => string> {
  const n = validate(windowsUsername, username, 'username');
  const script = lines(HEADER, requireUser(n), `Set-LocalUser -Name ${psq(n)} -Password ${SECURE_FROM_STDIN}`, say('PASSWORD_SET', n));
  return { script, stdin: passwordStdin };
}

/**
 * `Remove-LocalUser`, idempotent: a user Windows reports as not found prints
 * `HOSTFLOW_NO_SUCH_USER <name>` and exits 0 (any other lookup failure fails the script). With
 * `removeProfile` (a platform-created account's deletion), the user's profile — C:\Users\<name>
 * and its registry hive, the Win32_UserProfile with the user's SID — is deleted first
 * (`HOSTFLOW_PROFILE_REMOVED <name>`; none yet, because the user never logged on: nothing to do).
 * Removing a loaded profile (the user is logged on) fails the script and leaves the user in
 * place, so a retry after the logoff finishes the job. Prints `HOSTFLOW_USER_DELETED <name>`.
 */
export function deleteUser(username: string, opts: { removeProfile?: boolean } = {}): string {
  const n = validate(windowsUsername, username, 'username');
  const removeProfile = validate(z.boolean(), opts.removeProfile ?? false, 'removeProfile');
  return lines(
    HEADER,
    lookupUser(n, 0),
    removeProfile
      ? [
          "$p = Get-CimInstance -ClassName Win32_UserProfile -Filter ('SID = ''' + $u.SID + '''')",
          'if ($null -ne $p) {',
          '  Remove-CimInstance -InputObject $p',
          `  ${say('PROFILE_REMOVED', n)}`,
          '}',
        ]
      : [],
    `Remove-LocalUser -Name ${psq(n)}`,
    say('USER_DELETED', n),
  );
}

/**
 * The local groups the user belongs to: one `HOSTFLOW_MEMBER_OF <group>` line each (exit 0), or
 * exit 6 with `HOSTFLOW_NO_SUCH_USER <name>`. `-Member` resolves the name to the user's SID, so a
 * group lists the user only if that very account is a member. A group whose members Windows cannot
 * read (Get-LocalGroupMember fails on orphaned SIDs) is either left out or fails the script: both
 * fail closed (a verification that expects the group reports it missing).
 */
export function userGroups(username: string): string {
  const n = validate(windowsUsername, username, 'username');
  return lines(
    HEADER,
    requireUser(n),
    'foreach ($g in Get-LocalGroup) {',
    `  if ($null -ne (Get-LocalGroupMember -Group $g.Name -Member ${psq(n)} -ErrorAction SilentlyContinue)) {`,
    "    Write-Output ('HOSTFLOW_MEMBER_OF ' + $g.Name)",
    '  }',
    '}',
    // Explicit: the last lookup may have failed (not a member), which would make the exit code 1.
    'exit 0',
  );
}

/**
 * The sessions on the host, as `quser` (query.exe) lists them: run as is (no error preference: a
 * native program's "No User exists for *" on stderr with exit 1 means none), then `exit 0`.
 * Parse with `parseQuser`.
 */
export function listSessions(): string {
  return lines('quser', 'exit 0');
}

export interface WindowsSession {
  username: string;
  sessionName: string;
  id: number;
  state: string;
}

/**
 * query.exe's table: a header line, then one line per session (`>` in the first column marks the
 * caller's own). SESSIONNAME is empty for a disconnected session, so columns are found from the
 * right: the ID is the first all-digit field after the user name.
 */
export function parseQuser(stdout: string): WindowsSession[] {
  const out: WindowsSession[] = [];
  for (const raw of stdout.split(/\r?\n/).slice(1)) {
    const line = raw.replace(/^[ >]/, '');
    if (!line.trim()) continue;
    const fields = line.trim().split(/\s+/);
    const idAt = fields.findIndex((f, i) => i > 0 && /^\d+$/.test(f));
    if (idAt < 1 || !fields[idAt + 1]) continue;
    out.push({ username: fields[0]!, sessionName: idAt > 1 ? fields[1]! : '', id: Number(fields[idAt]), state: fields[idAt + 1]! });
  }
  return out;
}

/** `logoff <id>` for each session (ids from parseQuser); prints `HOSTFLOW_LOGGED_OFF <id>` after each. */
export function logoffSessions(ids: readonly number[]): string {
  const valid = validate(z.array(z.number().int().min(0).max(65535)).min(1), [...ids], 'sessionIds');
  return lines(HEADER, valid.flatMap((id) => [`logoff ${id}`, say('LOGGED_OFF', String(id))]));
}

/** `HOSTFLOW_SID <sid>` of the local user (exit 0), or exit 6 with `HOSTFLOW_NO_SUCH_USER <name>`. */
export function userSid(username: string): string {
  const n = validate(windowsUsername, username, 'username');
  return lines(HEADER, lookupUser(n, WINDOWS_EXIT.NO_SUCH_USER), "Write-Output ('HOSTFLOW_SID ' + $u.SID)", 'exit 0');
}

/**
 * Reclaim's lock: the account is disabled (no new logon, RDP or network) and its password expired
 * ("User must change password at next logon", what `net user /logonpasswordchg:yes` sets), so even
 * a re-enabled account cannot log on with the old password. Exit 6 if the user is missing, 5 if
 * net.exe failed. Prints `HOSTFLOW_LOCKED <name>`.
 */
export function lockUser(username: string): string {
  const n = validate(windowsUsername, username, 'username');
  return lines(
    HEADER,
    requireUser(n),
    `net user ${psq(n)} /logonpasswordchg:yes | Out-Null`,
    'if ($LASTEXITCODE -ne 0) {',
    `  ${say('EXPIRE_FAILED', n)}`,
    `  exit ${WINDOWS_EXIT.EXPIRE_FAILED}`,
    '}',
    `Disable-LocalUser -Name ${psq(n)}`,
    say('LOCKED', n),
  );
}

/** The three spellings Task Scheduler keeps a task's principal in: `name`, `COMPUTER\name`, or the SID. */
function tenantVars(username: string, sid: string): string[] {
  return [`$sid = ${psq(sid)}`, `$name = ${psq(username)}`, "$qualified = ($env:COMPUTERNAME + '\\' + $name)"];
}
const TASK_OF_TENANT = 'if ($t.Principal.UserId -eq $name -or $t.Principal.UserId -eq $qualified -or $t.Principal.UserId -eq $sid) {';

/**
 * What the tenant (the account `username`, security identifier `sid`) still has on the host, looked
 * up by SID so it works after the account is gone: processes (Win32_Process, owner from
 * GetOwnerSid; one that exits meanwhile is skipped), scheduled tasks whose principal is the tenant,
 * and the user profile (Win32_UserProfile). Lines: `HOSTFLOW_PROCESS <pid> <name>`,
 * `HOSTFLOW_TASK <path><name>`, `HOSTFLOW_PROFILE <local path>`. Sessions come from `quser`
 * (listSessions), by name. Parse with `parseTenantFootprint`.
 */
export function tenantFootprint(input: { username: string; sid: string }): string {
  const n = validate(windowsUsername, input.username, 'username');
  const sid = validate(sidSchema, input.sid, 'sid');
  return lines(
    HEADER,
    tenantVars(n, sid),
    'foreach ($p in Get-CimInstance -ClassName Win32_Process) {',
    '  $o = Invoke-CimMethod -InputObject $p -MethodName GetOwnerSid -ErrorAction SilentlyContinue',
    '  if ($o.Sid -eq $sid) {',
    "    Write-Output ('HOSTFLOW_PROCESS ' + $p.ProcessId + ' ' + $p.Name)",
    '  }',
    '}',
    'foreach ($t in Get-ScheduledTask) {',
    `  ${TASK_OF_TENANT}`,
    "    Write-Output ('HOSTFLOW_TASK ' + $t.TaskPath + $t.TaskName)",
    '  }',
    '}',
    "$prof = Get-CimInstance -ClassName Win32_UserProfile -Filter ('SID = ''' + $sid + '''')",
    'if ($null -ne $prof) {',
    "  Write-Output ('HOSTFLOW_PROFILE ' + $prof.LocalPath)",
    '}',
    'exit 0',
  );
}

export interface WindowsFootprint {
  processes: Array<{ pid: number; name: string }>;
  tasks: string[];
  profile: string | null;
}

export function parseTenantFootprint(stdout: string): WindowsFootprint {
  const f: WindowsFootprint = { processes: [], tasks: [], profile: null };
  for (const line of stdout.split(/\r?\n/)) {
    const m = /^HOSTFLOW_(PROCESS|TASK|PROFILE) (.*)$/.exec(line.trimEnd());
    if (!m) continue;
    if (m[1] === 'PROCESS') {
      const [pid, ...name] = m[2]!.split(' ');
      if (/^\d+$/.test(pid!)) f.processes.push({ pid: Number(pid), name: name.join(' ') });
    } else if (m[1] === 'TASK') f.tasks.push(m[2]!);
    else f.profile = m[2]!;
  }
  return f;
}

/**
 * Ends the tenant's work: its scheduled tasks are unregistered first (a task could start the
 * processes again), then every process it owns (by SID) is stopped with `Stop-Process -Force`
 * (TerminateProcess; one that already exited is no error). Lines `HOSTFLOW_TASK_REMOVED <path><name>`
 * and `HOSTFLOW_STOPPED <pid>`.
 */
export function stopTenant(input: { username: string; sid: string }): string {
  const n = validate(windowsUsername, input.username, 'username');
  const sid = validate(sidSchema, input.sid, 'sid');
  return lines(
    HEADER,
    tenantVars(n, sid),
    'foreach ($t in Get-ScheduledTask) {',
    `  ${TASK_OF_TENANT}`,
    '    Unregister-ScheduledTask -TaskName $t.TaskName -TaskPath $t.TaskPath -Confirm:$false',
    "    Write-Output ('HOSTFLOW_TASK_REMOVED ' + $t.TaskPath + $t.TaskName)",
    '  }',
    '}',
    'foreach ($p in Get-CimInstance -ClassName Win32_Process) {',
    '  $o = Invoke-CimMethod -InputObject $p -MethodName GetOwnerSid -ErrorAction SilentlyContinue',
    '  if ($o.Sid -eq $sid) {',
    '    Stop-Process -Id $p.ProcessId -Force -ErrorAction SilentlyContinue',
    "    Write-Output ('HOSTFLOW_STOPPED ' + $p.ProcessId)",
    '  }',
    '}',
    'exit 0',
  );
}

/**
 * Deletes the profile of `sid` (C:\Users\<name> and its hive) if one is left, e.g. after the account
 * was removed without it. Fails while it is loaded (a session still open). `HOSTFLOW_PROFILE_REMOVED <sid>`.
 */
export function removeProfile(sid: string): string {
  const s = validate(sidSchema, sid, 'sid');
  return lines(
    HEADER,
    `$sid = ${psq(s)}`,
    "$prof = Get-CimInstance -ClassName Win32_UserProfile -Filter ('SID = ''' + $sid + '''')",
    'if ($null -ne $prof) {',
    '  Remove-CimInstance -InputObject $prof',
    `  ${say('PROFILE_REMOVED', s)}`,
    '}',
    'exit 0',
  );
}
