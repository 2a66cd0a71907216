/**
 * Command builders for Linux hosts: pure functions from validated values to one command line for
 * `RemoteExecutor.exec` (SSH runs it with the admin's login shell, which must be POSIX: sh, bash,
 * dash or zsh).
 *
 * How values reach the host: every script below is a constant (no value is ever spliced into
 * script text). The command is `[sudo -n] sh -c '<constant script>' <name> '<arg1>' '<arg2>' ...`:
 * values are positional parameters, each validated (validation.ts) and POSIX single-quoted (`shq`),
 * and the script only uses them as "$1"-style quoted expansions and `--`-terminated arguments.
 * Secrets (passwords) and key material go through stdin (`ExecOptions.stdin`), never through argv.
 *
 * Privilege: the SSH user is a non-root admin with passwordless sudo. Builders that change the
 * system run the whole script as root with `sudo -n sh -c ...` (`-n`: fail instead of prompting; a
 * sudo failure shows as exit 1 with `sudo:` on stderr). Read-only builders (userExists, userGroups)
 * run as the admin. authorized_keys edits run as the target user
 * (`sudo -n -u <user>`), so a symlink planted in the user's home cannot redirect a root write.
 *
 * Results: exit codes in `LINUX_EXIT`; scripts print `HOSTFLOW_*` marker lines on stdout saying what
 * they found or changed (so check-then-act activities can report it), parsed by `parseMarkers`.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import {
  InvalidInputError,
  fullName as fullNameSchema,
  linuxGroupName,
  linuxUsername,
  loginShell,
  markerRef,
  password as passwordSchema,
  sshKeyFingerprint,
  sshPublicKey,
  validate,
  validateList,
} from './validation.js';

/** Exit codes the scripts use (chosen to match useradd/usermod/userdel where those have one). */
export const LINUX_EXIT = {
  OK: 0,
  /** userExists only: the user does not exist. */
  NOT_FOUND: 1,
  /** The stdin given to the script is not what it expects. */
  BAD_INPUT: 2,
  /** One or more groups do not exist (a `HOSTFLOW_MISSING_GROUP <name>` line each). */
  MISSING_GROUP: 3,
  /** The login shell is not an executable on the host. */
  MISSING_SHELL: 4,
  /** getent failed for another reason than "not found" (NSS/LDAP trouble). */
  LOOKUP_FAILED: 5,
  /** The user does not exist (usermod/userdel use 6 too). */
  NO_SUCH_USER: 6,
  /** The user has no absolute home directory. */
  NO_HOME: 7,
  /** The user already exists (useradd uses 9 too). */
  USER_EXISTS: 9,
} as const;

/** Where root records which accounts the platform created: one file per username, mode 0600, content = request/allocation id. */
export const LINUX_MARKER_DIR = '/var/lib/hostflow/accounts';

// ---------------------------------------------------------------------------------------------
// Quoting
// ---------------------------------------------------------------------------------------------

/**
 * POSIX shell single-quoting: the result is one word whose value is exactly `value`, with no
 * expansion of any kind (`'` becomes `'\''`). NUL cannot be passed through argv and is refused.
 */
export function shq(value: string): string {
  if (typeof value !== 'string') throw new TypeError('shq: value must be a string');
  if (value.includes('\0')) throw new InvalidInputError('value', 'value must not contain a NUL character');
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** `sh -c '<script>' <name> <args...>`, every argument quoted. */
function sh(name: string, script: string, args: readonly string[]): string {
  return ['sh', '-c', shq(script), shq(name), ...args.map(shq)].join(' ');
}

/** The same, run as root through passwordless sudo. */
function sudoSh(name: string, script: string, args: readonly string[]): string {
  return `sudo -n ${sh(name, script, args)}`;
}

// ---------------------------------------------------------------------------------------------
// Script fragments (constants only; values are "$1"...)
// ---------------------------------------------------------------------------------------------

/** Raw template for shell text: backslashes stay as written; `\${` yields a literal shell `${`. */
function shText(strings: TemplateStringsArray, ...constants: (string | number)[]): string {
  return String.raw(strings, ...constants).replaceAll('\\${', '${');
}

const REQUIRE_USER = shText`if ! getent passwd "$user" >/dev/null; then
  printf 'HOSTFLOW_NO_SUCH_USER %s\n' "$user"
  exit ${LINUX_EXIT.NO_SUCH_USER}
fi`;

/** Groups are "$@": print every missing one, then exit 3 if any. */
const REQUIRE_GROUPS = shText`missing=0
for g in "$@"; do
  if ! getent group "$g" >/dev/null; then
    printf 'HOSTFLOW_MISSING_GROUP %s\n' "$g"
    missing=1
  fi
done
if [ "$missing" -ne 0 ]; then
  exit ${LINUX_EXIT.MISSING_GROUP}
fi`;

const MARKER_FILE = `${LINUX_MARKER_DIR}/"$user"`;

/** Atomically writes "$ref" to the marker file (directory and file readable by root only). */
const WRITE_MARKER = shText`(
  umask 077
  mkdir -p -- ${LINUX_MARKER_DIR}
  printf '%s\n' "$ref" > ${LINUX_MARKER_DIR}/."$user".tmp
  mv -f -- ${LINUX_MARKER_DIR}/."$user".tmp ${MARKER_FILE}
)`;

// ---------------------------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------------------------

/** Exit 0 if the user exists, 1 if not (5 if the lookup itself failed). Runs as the admin. */
export function userExists(username: string): string {
  const user = validate(linuxUsername, username, 'username');
  const script = shText`user=$1
getent passwd "$user" >/dev/null
rc=$?
case $rc in
  0) exit 0 ;;
  2) exit ${LINUX_EXIT.NOT_FOUND} ;;
  *) printf 'getent failed with exit code %s\n' "$rc" >&2
     exit ${LINUX_EXIT.LOOKUP_FAILED} ;;
esac`;
  return sh('hostflow-user-exists', script, [user]);
}

export interface CreateLinuxUserInput {
  username: string;
  fullName: string;
  /** Supplementary groups; they must exist already (nothing is created implicitly). */
  groups?: readonly string[];
  /** Login shell, default /bin/bash; must be executable on the host. */
  shell?: string;
  /**
   * When given, the platform marker is written (before useradd, removed again if useradd fails),
   * so a crash between the two cannot leave a platform-created account without its marker.
   */
  markerRef?: string;
}

/**
 * `useradd -m -s <shell> -c <gecos> [-G g1,g2] -- <username>` as root, after checking that the user
 * does not exist (exit 9, `HOSTFLOW_USER_EXISTS`), every group exists (exit 3, one
 * `HOSTFLOW_MISSING_GROUP <name>` line each) and the shell is executable (exit 4). Prints
 * `HOSTFLOW_USER_CREATED <name>` on success.
 *
 * The account is left without a usable password (`!` in /etc/shadow: locked, and with
 * `UsePAM no` sshd refuses even key logins) until `setPassword` runs.
 * If /home/<name> is left over from an earlier account, useradd keeps it as it is (and warns).
 */
export function createUser(input: CreateLinuxUserInput): string {
  const user = validate(linuxUsername, input.username, 'username');
  const gecos = validate(fullNameSchema, input.fullName, 'fullName');
  const groups = validateList(linuxGroupName, input.groups ?? [], 'groups');
  const shell = validate(loginShell, input.shell ?? '/bin/bash', 'shell');
  const ref = input.markerRef === undefined ? '' : validate(markerRef, input.markerRef, 'markerRef');
  const script = shText`set -eu
user=$1 gecos=$2 shell=$3 ref=$4
shift 4
if getent passwd "$user" >/dev/null; then
  printf 'HOSTFLOW_USER_EXISTS %s\n' "$user"
  exit ${LINUX_EXIT.USER_EXISTS}
fi
${REQUIRE_GROUPS}
if [ ! -x "$shell" ]; then
  printf 'HOSTFLOW_MISSING_SHELL %s\n' "$shell"
  exit ${LINUX_EXIT.MISSING_SHELL}
fi
groups=
for g in "$@"; do
  groups=\${groups:+$groups,}$g
done
if [ -n "$ref" ]; then
  ${WRITE_MARKER}
fi
rc=0
if [ -n "$groups" ]; then
  useradd -m -s "$shell" -c "$gecos" -G "$groups" -- "$user" || rc=$?
else
  useradd -m -s "$shell" -c "$gecos" -- "$user" || rc=$?
fi
if [ "$rc" -ne 0 ]; then
  if [ -n "$ref" ]; then
    rm -f -- ${MARKER_FILE}
  fi
  exit "$rc"
fi
printf 'HOSTFLOW_USER_CREATED %s\n' "$user"`;
  return sudoSh('hostflow-create-user', script, [user, gecos, shell, ref, ...groups]);
}

/** A command whose input (secret or bulky) must be passed as `ExecOptions.stdin`. */
export interface StdinCommand<S> {
  script: string;
  stdin: S;
}

/**
 * Sets a password with `chpasswd` as root. The password never appears in the command line or the
 * process list: the caller passes `stdin(password)` (one line `username:password`) as
 * `ExecOptions.stdin`. The script refuses a stdin line for another user (exit 2) and a missing user
 * (exit 6); prints `HOSTFLOW_PASSWORD_SET <name>`. Setting a password also unlocks the `!` left by
 * createUser.
 */
export function setPassword(username: string): StdinCommand<(password: string) => string> {
  const user = validate(linuxUsername, username, 'username');
  const script = shText`set -eu
user=$1
${REQUIRE_USER}
line=
IFS= read -r line || true
case $line in
  "$user":?*) ;;
  *) echo 'hostflow-set-password: stdin must be one line "<username>:<password>" for this user' >&2
     exit ${LINUX_EXIT.BAD_INPUT} ;;
esac
printf '%s\n' "$line" | chpasswd
printf 'HOSTFLOW_PASSWORD_SET %s\n' "$user"`;
  return {
    script: sudoSh('hostflow-set-password', script, [user]),
    stdin: (password: string) => `${user}:${validate(passwordSchema, password, 'password')}\n`,
  };
}

/**
 * `usermod -aG g1,g2 -- <username>` as root, idempotent: prints `HOSTFLOW_ALREADY_MEMBER <g>` or
 * `HOSTFLOW_ADDED_GROUP <g>` per group; exit 3 (and nothing changed) if a group is missing, 6 if the
 * user is missing.
 */
export function addToGroups(username: string, groups: readonly string[]): string {
  const user = validate(linuxUsername, username, 'username');
  const gs = validateList(linuxGroupName, groups, 'groups');
  const script = shText`set -eu
user=$1
shift
${REQUIRE_USER}
${REQUIRE_GROUPS}
add=
for g in "$@"; do
  if id -nG -- "$user" | tr ' ' '\n' | grep -Fxq -- "$g"; then
    printf 'HOSTFLOW_ALREADY_MEMBER %s\n' "$g"
  else
    add=\${add:+$add,}$g
  fi
done
if [ -n "$add" ]; then
  usermod -aG "$add" -- "$user"
  printf '%s\n' "$add" | tr ',' '\n' | while IFS= read -r g; do
    printf 'HOSTFLOW_ADDED_GROUP %s\n' "$g"
  done
fi`;
  return sudoSh('hostflow-add-to-groups', script, [user, ...gs]);
}

/**
 * Locks the password and expires the account (`usermod -L -e 1`): with the expiry, sshd refuses key
 * logins as well. With `expirePassword` (reclaim) the password is expired too (`chage -d 0`), so
 * even a PAM stack that ignored the account expiry would demand a new password first. Running
 * processes are untouched (see endTenantActivity). Prints `HOSTFLOW_LOCKED`.
 */
export function lockUser(username: string, opts: { expirePassword?: boolean } = {}): string {
  const user = validate(linuxUsername, username, 'username');
  const expire = validate(z.boolean(), opts.expirePassword ?? false, 'expirePassword');
  const script = shText`set -eu
user=$1 expire=$2
${REQUIRE_USER}
usermod -L -e 1 -- "$user"
if [ "$expire" = yes ]; then
  chage -d 0 -- "$user"
fi
printf 'HOSTFLOW_LOCKED %s\n' "$user"`;
  return sudoSh('hostflow-lock-user', script, [user, expire ? 'yes' : 'no']);
}

/** Undoes lockUser (`usermod -U -e ''`). An account that never had a password stays without one. */
export function unlockUser(username: string): string {
  const user = validate(linuxUsername, username, 'username');
  const script = shText`set -eu
user=$1
${REQUIRE_USER}
usermod -U -e '' -- "$user"
printf 'HOSTFLOW_UNLOCKED %s\n' "$user"`;
  return sudoSh('hostflow-unlock-user', script, [user]);
}

/**
 * `userdel [-r] -- <username>` as root, then removes the platform marker. Idempotent: a missing
 * user prints `HOSTFLOW_NO_SUCH_USER <name>` and exits 0. userdel refuses (exit 8) while the user
 * has processes: run killUserProcesses first. Prints `HOSTFLOW_USER_DELETED <name>`.
 */
export function deleteUser(username: string, opts: { removeHome: boolean }): string {
  const user = validate(linuxUsername, username, 'username');
  const removeHome = validate(z.boolean(), opts.removeHome, 'removeHome');
  const script = shText`set -eu
user=$1 remove_home=$2
if getent passwd "$user" >/dev/null; then
  if [ "$remove_home" = yes ]; then
    userdel -r -- "$user"
  else
    userdel -- "$user"
  fi
  printf 'HOSTFLOW_USER_DELETED %s\n' "$user"
else
  printf 'HOSTFLOW_NO_SUCH_USER %s\n' "$user"
fi
rm -f -- ${MARKER_FILE}`;
  return sudoSh('hostflow-delete-user', script, [user, removeHome ? 'yes' : 'no']);
}

// ---------------------------------------------------------------------------------------------
// Processes and groups
// ---------------------------------------------------------------------------------------------

export type KillSignal = 'TERM' | 'KILL';

/**
 * `pkill -<signal> -u <username>` as root. "No process matched" (pkill exit 1) is success and prints
 * `HOSTFLOW_NO_PROCESSES`; otherwise `HOSTFLOW_SIGNALLED`. A missing user prints
 * `HOSTFLOW_NO_SUCH_USER` and exits 0 (nothing can run as them).
 */
export function killUserProcesses(username: string, signal: KillSignal): string {
  const user = validate(linuxUsername, username, 'username');
  const sig = validate(z.enum(['TERM', 'KILL'], 'signal must be TERM or KILL'), signal, 'signal');
  const script = shText`set -eu
user=$1 sig=$2
if ! getent passwd "$user" >/dev/null; then
  printf 'HOSTFLOW_NO_SUCH_USER %s\n' "$user"
  exit 0
fi
rc=0
pkill "-$sig" -u "$user" || rc=$?
case $rc in
  0) printf 'HOSTFLOW_SIGNALLED %s\n' "$sig" ;;
  1) echo 'HOSTFLOW_NO_PROCESSES' ;;
  *) exit "$rc" ;;
esac`;
  return sudoSh('hostflow-kill-user-processes', script, [user, sig]);
}

/** `id -nG -- <username>` as the admin: the user's group names on one line, space-separated. */
export function userGroups(username: string): string {
  const user = validate(linuxUsername, username, 'username');
  const script = shText`set -eu
user=$1
${REQUIRE_USER}
id -nG -- "$user"`;
  return sh('hostflow-user-groups', script, [user]);
}

// ---------------------------------------------------------------------------------------------
// Reclaim: what of a tenant is still on the host, and ending all of it
// ---------------------------------------------------------------------------------------------

/** Uids below this are system accounts: reclaim scripts refuse to touch them. */
export const LINUX_MIN_TENANT_UID = 1000;
const uidSchema = z.number().int().min(LINUX_MIN_TENANT_UID, `uid must be at least ${LINUX_MIN_TENANT_UID}`).max(4294967294);
const allocationIdSchema = z.uuid('allocationId must be a UUID');
const optionalUid = (uid: number | undefined) => (uid === undefined ? '' : String(validate(uidSchema, uid, 'uid')));

/**
 * "$user" and (possibly empty) "$uid" → the account's uid, `exists=yes|no`, `home`. When the
 * account exists its passwd uid wins (a different known uid prints `HOSTFLOW_UID_CHANGED <old>
 * <new>`); when it is gone the caller's uid is used. Prints `HOSTFLOW_NO_SUCH_USER <name>` and/or
 * `HOSTFLOW_UID <n>`; with no uid at all there is nothing to look for: exit 0. When the account is
 * gone and its recorded uid now belongs to another existing account (useradd hands freed uids out
 * again), nothing of that uid is the tenant's: prints `HOSTFLOW_UID_REASSIGNED <uid> <owner>` and
 * exits 0 (never counts, kills or deletes what the new owner has). A uid below
 * LINUX_MIN_TENANT_UID (a system account) is refused: exit 2.
 */
const RESOLVE_TENANT = shText`exists=no
home=
if entry=$(getent passwd "$user"); then
  exists=yes
  puid=$(printf '%s\n' "$entry" | cut -d: -f3)
  home=$(printf '%s\n' "$entry" | cut -d: -f6)
  if [ -n "$uid" ] && [ "$uid" != "$puid" ]; then
    printf 'HOSTFLOW_UID_CHANGED %s %s\n' "$uid" "$puid"
  fi
  uid=$puid
else
  printf 'HOSTFLOW_NO_SUCH_USER %s\n' "$user"
  if [ -n "$uid" ] && owner=$(getent passwd "$uid" | cut -d: -f1) && [ -n "$owner" ] && [ "$owner" != "$user" ]; then
    printf 'HOSTFLOW_UID_REASSIGNED %s %s\n' "$uid" "$owner"
    exit 0
  fi
fi
if [ -z "$uid" ]; then
  exit 0
fi
case $uid in
  *[!0-9]*) exit ${LINUX_EXIT.BAD_INPUT} ;;
esac
if [ "$uid" -lt ${LINUX_MIN_TENANT_UID} ]; then
  printf 'HOSTFLOW_SYSTEM_UID %s\n' "$uid"
  exit ${LINUX_EXIT.BAD_INPUT}
fi
printf 'HOSTFLOW_UID %s\n' "$uid"`;

/** Pids of "$uid" (effective or real uid; zombies left out: they run nothing). */
const PIDS_OF_UID = shText`pids_of_uid() {
  ps -e -o pid=,uid=,ruid=,stat= 2>/dev/null | awk -v u="$uid" '$4 !~ /^Z/ && ($2 == u || $3 == u) { print $1 }'
}`;

/**
 * Running docker containers: "$id|$main_pid_uid|$attributed|$image" per line on stdout, where
 * attributed = yes when the container carries the label `hostflow.allocation=<$alloc>` or its main
 * process runs as "$uid" (rootless docker of the tenant, or `docker run --user <uid>`). Prints
 * `HOSTFLOW_CONTAINER_RUNTIME_DOWN` when the docker CLI is there but its daemon does not answer.
 */
const LIST_CONTAINERS = shText`list_containers() {
  command -v docker >/dev/null 2>&1 || return 0
  if ! ids=$(docker ps -q 2>/dev/null); then
    echo 'HOSTFLOW_CONTAINER_RUNTIME_DOWN' >&2
    return 0
  fi
  for id in $ids; do
    info=$(docker inspect -f '{{.State.Pid}}|{{index .Config.Labels "hostflow.allocation"}}|{{.Config.Image}}' "$id" 2>/dev/null) || continue
    cpid=\${info%%|*}
    rest=\${info#*|}
    label=\${rest%%|*}
    image=\${rest#*|}
    owner=$(ps -o uid= -p "$cpid" 2>/dev/null | tr -d ' ')
    attributed=no
    if [ -n "$alloc" ] && [ "$label" = "$alloc" ]; then
      attributed=yes
    elif [ -n "$owner" ] && [ "$owner" = "$uid" ]; then
      attributed=yes
    fi
    printf '%s|%s|%s|%s\n' "$id" "\${owner:-?}" "$attributed" "$image"
  done
}`;

export interface TenantFootprintInput {
  username: string;
  /** The account's uid as recorded earlier: used when the account is gone already. */
  uid?: number;
  /** Containers labelled `hostflow.allocation=<allocationId>` count as the tenant's. */
  allocationId?: string;
  /**
   * Files owned by the uid: `outside-home-tmp` (the task check: what the tenant left around the
   * system), `everywhere` (verification after the account and its home are gone), `none`.
   */
  files?: 'outside-home-tmp' | 'everywhere' | 'none';
  /** Bounds of the file scan: it stops after this many files or seconds (then says so). */
  maxFiles?: number;
  maxSeconds?: number;
}

/**
 * Everything of one tenant that is still on the host, as root (reclaim's task check and its
 * verification). One line per finding:
 *
 *   HOSTFLOW_UID <n>                       the uid looked for (see RESOLVE_TENANT)
 *   HOSTFLOW_UID_REASSIGNED <uid> <name>   the account is gone and its uid is another account's now: nothing else is looked at
 *   HOSTFLOW_PROC <pid> <comm>             a live process whose effective or real uid is the tenant's
 *                                          (re-parented daemons, nohup loops, at/cron children included)
 *   HOSTFLOW_GPU <pid> <name>              a GPU compute app (`nvidia-smi --query-compute-apps`) of that uid
 *   HOSTFLOW_CONTAINER <id> <owner uid|?> <yes|no> <image>   a running docker container; yes = attributed
 *   HOSTFLOW_SESSION <tty>                 a login session (`who`)
 *   HOSTFLOW_LINGER                        lingering enabled (/var/lib/systemd/linger/<user>)
 *   HOSTFLOW_USER_MANAGER                  `user@<uid>.service` is active (systemd hosts)
 *   HOSTFLOW_USER_UNIT <unit>              a running unit of that user manager
 *   HOSTFLOW_USER_UNIT_ENABLED <unit>      a unit enabled in ~/.config/systemd/user (*.wants)
 *   HOSTFLOW_AT <job>                      an `at` job of the user (atq as root lists everyone's)
 *   HOSTFLOW_AT_FILE <name>                an at spool file owned by the uid (jobs of a deleted user)
 *   HOSTFLOW_CRONTAB <path>                the user's crontab file
 *   HOSTFLOW_FILE <path>                   up to 20 sample paths of files owned by the uid ...
 *   HOSTFLOW_FILES <count> <complete|truncated|timed-out>   ... and their count
 *   HOSTFLOW_HOME <path>                   the account is gone but /home/<user> is not
 *   HOSTFLOW_MARKER_PRESENT                the platform marker of the user is still there
 *
 * and what could not be looked at (reported, never silently skipped): `HOSTFLOW_NO_SYSTEMD`,
 * `HOSTFLOW_NO_GPU_TOOL`, `HOSTFLOW_NO_AT`, `HOSTFLOW_CONTAINER_RUNTIME_DOWN`.
 *
 * nvidia-smi is looked up on the admin's PATH (where driver installs put it; sudo's secure_path
 * may not have it) before the rest runs as root. Exit 0 (also when the account is gone).
 */
export function tenantFootprint(input: TenantFootprintInput): string {
  const user = validate(linuxUsername, input.username, 'username');
  const uid = optionalUid(input.uid);
  const alloc = input.allocationId === undefined ? '' : validate(allocationIdSchema, input.allocationId, 'allocationId');
  const files = validate(z.enum(['outside-home-tmp', 'everywhere', 'none']), input.files ?? 'none', 'files');
  const maxFiles = String(validate(z.number().int().min(1).max(1_000_000), input.maxFiles ?? 10_000, 'maxFiles'));
  const maxSeconds = String(validate(z.number().int().min(1).max(3600), input.maxSeconds ?? 40, 'maxSeconds'));
  const inner = shText`set -u
user=$1 uid=$2 alloc=$3 scan=$4 maxfiles=$5 maxsecs=$6 smi=$7
${RESOLVE_TENANT}
${PIDS_OF_UID}
${LIST_CONTAINERS}
ps -e -o pid=,uid=,ruid=,stat=,comm= 2>/dev/null | while read -r pid euid ruid stat comm; do
  case $stat in
    Z*) continue ;;
  esac
  if [ "$euid" = "$uid" ] || [ "$ruid" = "$uid" ]; then
    printf 'HOSTFLOW_PROC %s %s\n' "$pid" "$comm"
  fi
done
if [ -n "$smi" ] && [ -x "$smi" ]; then
  "$smi" --query-compute-apps=pid,process_name --format=csv,noheader 2>/dev/null | while IFS=', ' read -r pid name; do
    case $pid in
      ''|*[!0-9]*) continue ;;
    esac
    owner=$(ps -o uid= -p "$pid" 2>/dev/null | tr -d ' ')
    if [ "$owner" = "$uid" ]; then
      printf 'HOSTFLOW_GPU %s %s\n' "$pid" "$name"
    fi
  done
else
  echo 'HOSTFLOW_NO_GPU_TOOL'
fi
list_containers 2>&1 | while IFS='|' read -r id owner attributed image; do
  case $id in
    HOSTFLOW_*) printf '%s\n' "$id" ;;
    *) printf 'HOSTFLOW_CONTAINER %s %s %s %s\n' "$id" "$owner" "$attributed" "$image" ;;
  esac
done
who 2>/dev/null | awk -v u="$user" '$1 == u { print "HOSTFLOW_SESSION " $2 }'
if [ -e /var/lib/systemd/linger/"$user" ]; then
  echo 'HOSTFLOW_LINGER'
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  if systemctl is-active --quiet "user@$uid.service" 2>/dev/null; then
    echo 'HOSTFLOW_USER_MANAGER'
    systemctl --user -M "$user@" list-units --type=service,timer,socket --state=active --no-legend --plain 2>/dev/null | awk '{ print "HOSTFLOW_USER_UNIT " $1 }'
  fi
else
  echo 'HOSTFLOW_NO_SYSTEMD'
fi
if [ -n "$home" ] && [ -d "$home/.config/systemd/user" ]; then
  find "$home/.config/systemd/user" -mindepth 2 -maxdepth 2 -path '*.wants/*' 2>/dev/null | while IFS= read -r f; do
    printf 'HOSTFLOW_USER_UNIT_ENABLED %s\n' "\${f##*/}"
  done
fi
if command -v atq >/dev/null 2>&1; then
  atq 2>/dev/null | awk -v u="$user" -v id="$uid" '$NF == u || $NF == id { print "HOSTFLOW_AT " $1 }'
else
  echo 'HOSTFLOW_NO_AT'
fi
for d in /var/spool/cron/atjobs /var/spool/at; do
  if [ -d "$d" ]; then
    find "$d" -mindepth 1 -maxdepth 1 -type f -uid "$uid" ! -name '.*' 2>/dev/null | while IFS= read -r f; do
      printf 'HOSTFLOW_AT_FILE %s\n' "\${f##*/}"
    done
  fi
done
for f in /var/spool/cron/crontabs/"$user" /var/spool/cron/"$user"; do
  if [ -f "$f" ]; then
    printf 'HOSTFLOW_CRONTAB %s\n' "$f"
  fi
done
if [ "$exists" = no ] && [ -d /home/"$user" ]; then
  printf 'HOSTFLOW_HOME /home/%s\n' "$user"
fi
if [ -e ${MARKER_FILE} ]; then
  echo 'HOSTFLOW_MARKER_PRESENT'
fi
if [ "$scan" != none ]; then
  set -- -path /proc -prune -o -path /sys -prune -o
  if [ "$scan" = outside-home-tmp ]; then
    set -- "$@" -path /tmp -prune -o -path /var/tmp -prune -o -path /dev/shm -prune -o
    if [ -n "$home" ]; then
      set -- "$@" -path "$home" -prune -o
    fi
  fi
  rcf=$(mktemp)
  { timeout "$maxsecs" find / -xdev "$@" -uid "$uid" -print 2>/dev/null; echo "$?" > "$rcf"; } | awk -v max="$maxfiles" '
    { n++; if (n <= 20) { s = $0; gsub(/[^[:print:]]/, "?", s); print "HOSTFLOW_FILE " substr(s, 1, 300) } if (n >= max) { cut = 1; exit } }
    END { printf "HOSTFLOW_FILES %d %s\n", n, (cut ? "truncated" : "complete") }' > "$rcf.out"
  rc=$(cat "$rcf" 2>/dev/null || echo 0)
  if [ "$rc" = 124 ]; then
    sed 's/^\(HOSTFLOW_FILES [0-9]*\) complete$/\1 timed-out/' "$rcf.out"
  else
    cat "$rcf.out"
  fi
  rm -f -- "$rcf" "$rcf.out"
fi
exit 0`;
  const outer = shText`smi=$(command -v nvidia-smi 2>/dev/null || true)
exec sudo -n sh -c ${shq(inner)} hostflow-tenant-footprint "$1" "$2" "$3" "$4" "$5" "$6" "$smi"`;
  return sh('hostflow-tenant-footprint', outer, [user, uid, alloc, files, maxFiles, maxSeconds]);
}

/** Parsed `tenantFootprint` output. */
export interface TenantFootprint {
  userExists: boolean;
  uid: number | null;
  /** The account is gone and its recorded uid belongs to another account now: nothing of it was looked at. */
  uidReassigned: { uid: number; owner: string } | null;
  /** Live processes of the uid other than its SSH connection handlers. */
  processes: { pid: number; comm: string }[];
  /** `sshd` processes of the uid: open SSH connections. */
  sshConnections: number;
  gpuProcesses: { pid: number; name: string }[];
  containers: { id: string; ownerUid: number | null; attributed: boolean; image: string }[];
  sessions: string[];
  linger: boolean;
  userManager: boolean;
  userUnits: string[];
  enabledUserUnits: string[];
  atJobs: string[];
  crontabs: string[];
  files: { count: number; status: 'complete' | 'truncated' | 'timed-out' | 'not-scanned'; sample: string[] };
  leftoverHome: string | null;
  marker: boolean;
  /** What this host could not be asked (no systemd, no nvidia-smi, no atq, docker daemon down). */
  unavailable: string[];
}

export function parseTenantFootprint(stdout: string): TenantFootprint {
  const out: TenantFootprint = {
    userExists: true, uid: null, uidReassigned: null, processes: [], sshConnections: 0, gpuProcesses: [], containers: [], sessions: [], linger: false, userManager: false,
    userUnits: [], enabledUserUnits: [], atJobs: [], crontabs: [], files: { count: 0, status: 'not-scanned', sample: [] }, leftoverHome: null, marker: false, unavailable: [],
  };
  const atFiles: string[] = [];
  for (const { marker, value } of parseMarkers(stdout)) {
    const [a = '', ...rest] = value.split(' ');
    switch (marker) {
      case 'NO_SUCH_USER': out.userExists = false; break;
      case 'UID': if (/^\d+$/.test(a)) out.uid = Number(a); break;
      case 'UID_REASSIGNED': if (/^\d+$/.test(a) && rest[0]) out.uidReassigned = { uid: Number(a), owner: rest[0] }; break;
      case 'PROC':
        if (!/^\d+$/.test(a)) break;
        if (rest.join(' ') === 'sshd') out.sshConnections += 1;
        else out.processes.push({ pid: Number(a), comm: rest.join(' ') });
        break;
      case 'GPU': if (/^\d+$/.test(a)) out.gpuProcesses.push({ pid: Number(a), name: rest.join(' ') }); break;
      case 'CONTAINER': {
        const [owner = '?', attributed = 'no', ...image] = rest;
        out.containers.push({ id: a, ownerUid: /^\d+$/.test(owner) ? Number(owner) : null, attributed: attributed === 'yes', image: image.join(' ') });
        break;
      }
      case 'SESSION': out.sessions.push(value); break;
      case 'LINGER': out.linger = true; break;
      case 'USER_MANAGER': out.userManager = true; break;
      case 'USER_UNIT': out.userUnits.push(value); break;
      case 'USER_UNIT_ENABLED': out.enabledUserUnits.push(value); break;
      case 'AT': out.atJobs.push(value); break;
      case 'AT_FILE': atFiles.push(value); break;
      case 'CRONTAB': out.crontabs.push(value); break;
      case 'FILE': out.files.sample.push(value); break;
      case 'FILES': out.files.count = Number(a) || 0; out.files.status = rest[0] === 'truncated' || rest[0] === 'timed-out' ? rest[0] : 'complete'; break;
      case 'HOME': out.leftoverHome = value; break;
      case 'MARKER_PRESENT': out.marker = true; break;
      case 'NO_SYSTEMD': out.unavailable.push('systemd'); break;
      case 'NO_GPU_TOOL': out.unavailable.push('nvidia-smi'); break;
      case 'NO_AT': out.unavailable.push('at'); break;
      case 'CONTAINER_RUNTIME_DOWN': out.unavailable.push('docker daemon'); break;
    }
  }
  // atq names a deleted user's jobs "???": the spool files (owned by the uid) still count.
  if (atFiles.length > out.atJobs.length) out.atJobs = atFiles;
  return out;
}

/**
 * What a footprint still holds, by category with counts (no names, paths or commands: safe for
 * workflow history and the customer-visible error). Empty = clean. SSH connection handlers count
 * as processes here: after reclaim nothing of the uid may run.
 */
export function footprintLeftovers(f: TenantFootprint): Record<string, number> {
  const all: Record<string, number> = {
    account: f.userExists ? 1 : 0,
    marker: f.marker ? 1 : 0,
    processes: f.processes.length + f.sshConnections,
    'gpu-processes': f.gpuProcesses.length,
    containers: f.containers.filter((c) => c.attributed).length,
    sessions: f.sessions.length,
    linger: f.linger ? 1 : 0,
    'user-units': f.userUnits.length + (f.userManager ? 1 : 0) + f.enabledUserUnits.length,
    'at-jobs': f.atJobs.length,
    crontab: f.crontabs.length,
    files: f.files.count,
    // A scan cut short by its time bound could not tell: never "clean" on its word.
    'files-scan-timed-out': f.files.status === 'timed-out' ? 1 : 0,
    home: f.leftoverHome ? 1 : 0,
  };
  return Object.fromEntries(Object.entries(all).filter(([, n]) => n > 0));
}

/**
 * Ends everything of a tenant, as root, idempotently (reclaim, after the account is locked):
 * first what could start new processes — the crontab (`crontab -r -u`), `at` jobs (`atrm` for the
 * user's jobs in `atq`, then spool files owned by the uid), lingering (`loginctl disable-linger`,
 * the linger file), the systemd user manager (`loginctl terminate-user`, where systemd runs),
 * docker containers attributed to the tenant (`docker rm -f`; see tenantFootprint) — then every
 * process of the uid (effective or real): SIGSTOP all (a respawning loop cannot fork while
 * stopped) and SIGKILL all, until none is left or 50 rounds passed. Markers:
 * `HOSTFLOW_CRONTAB_REMOVED`, `HOSTFLOW_AT_REMOVED <job>`, `HOSTFLOW_LINGER_REMOVED`,
 * `HOSTFLOW_USER_TERMINATED`, `HOSTFLOW_NO_SYSTEMD`, `HOSTFLOW_CONTAINER_REMOVED <id>`,
 * `HOSTFLOW_KILL_ROUNDS <n>`, `HOSTFLOW_REMAINING <n>` (processes still alive: 0 = done).
 * Works by uid when the account is gone already. Exit 0.
 */
export function endTenantActivity(input: { username: string; uid?: number; allocationId?: string }): string {
  const user = validate(linuxUsername, input.username, 'username');
  const uid = optionalUid(input.uid);
  const alloc = input.allocationId === undefined ? '' : validate(allocationIdSchema, input.allocationId, 'allocationId');
  const script = shText`set -u
user=$1 uid=$2 alloc=$3
${RESOLVE_TENANT}
${PIDS_OF_UID}
${LIST_CONTAINERS}
if [ "$exists" = yes ] && command -v crontab >/dev/null 2>&1 && crontab -l -u "$user" >/dev/null 2>&1; then
  crontab -r -u "$user" 2>/dev/null && echo 'HOSTFLOW_CRONTAB_REMOVED'
fi
for f in /var/spool/cron/crontabs/"$user" /var/spool/cron/"$user"; do
  if [ -f "$f" ]; then
    rm -f -- "$f"
    echo 'HOSTFLOW_CRONTAB_REMOVED'
  fi
done
if command -v atq >/dev/null 2>&1; then
  for j in $(atq 2>/dev/null | awk -v u="$user" -v id="$uid" '$NF == u || $NF == id { print $1 }'); do
    atrm "$j" 2>/dev/null && printf 'HOSTFLOW_AT_REMOVED %s\n' "$j"
  done
fi
for d in /var/spool/cron/atjobs /var/spool/at; do
  if [ -d "$d" ]; then
    find "$d" -mindepth 1 -maxdepth 1 -type f -uid "$uid" ! -name '.*' 2>/dev/null | while IFS= read -r f; do
      rm -f -- "$f" && printf 'HOSTFLOW_AT_REMOVED %s\n' "\${f##*/}"
    done
  fi
done
systemd=no
if [ -d /run/systemd/system ] && command -v loginctl >/dev/null 2>&1; then
  systemd=yes
fi
if [ -e /var/lib/systemd/linger/"$user" ]; then
  if [ "$systemd" = yes ]; then
    loginctl disable-linger "$user" 2>/dev/null || true
  fi
  rm -f -- /var/lib/systemd/linger/"$user"
  echo 'HOSTFLOW_LINGER_REMOVED'
fi
if [ "$systemd" = yes ]; then
  if loginctl terminate-user "$uid" 2>/dev/null; then
    echo 'HOSTFLOW_USER_TERMINATED'
  fi
  systemctl stop "user@$uid.service" 2>/dev/null || true
else
  echo 'HOSTFLOW_NO_SYSTEMD'
fi
list_containers 2>/dev/null | while IFS='|' read -r id owner attributed image; do
  if [ "$attributed" = yes ] && docker rm -f "$id" >/dev/null 2>&1; then
    printf 'HOSTFLOW_CONTAINER_REMOVED %s\n' "$id"
  fi
done
rounds=0
while [ "$rounds" -lt 50 ]; do
  if [ -z "$(pids_of_uid)" ]; then
    break
  fi
  pkill -STOP -u "$uid" 2>/dev/null
  pkill -STOP -U "$uid" 2>/dev/null
  pkill -KILL -u "$uid" 2>/dev/null
  pkill -KILL -U "$uid" 2>/dev/null
  rounds=$((rounds + 1))
  sleep 0.2
done
printf 'HOSTFLOW_KILL_ROUNDS %s\n' "$rounds"
printf 'HOSTFLOW_REMAINING %s\n' "$(pids_of_uid | wc -l | tr -d ' ')"
exit 0`;
  return sudoSh('hostflow-end-tenant-activity', script, [user, uid, alloc]);
}

/**
 * Files owned by the tenant's uid anywhere on the root filesystem outside its home (which
 * `deleteUser` removes), as root: deleted (`find / -xdev -uid <n> -depth -delete`, no symlink
 * following; a directory that still holds other users' files stays and shows in the verification).
 * Only while the account exists with that very uid (so a uid handed to someone else since is never
 * swept). Bounded by `maxSeconds`. Prints `HOSTFLOW_FILES_REMOVED <count>` and
 * `HOSTFLOW_FILES_TIMED_OUT` when the bound cut it short.
 */
export function removeTenantFiles(input: { username: string; uid: number; maxSeconds?: number }): string {
  const user = validate(linuxUsername, input.username, 'username');
  const uid = String(validate(uidSchema, input.uid, 'uid'));
  const maxSeconds = String(validate(z.number().int().min(1).max(3600), input.maxSeconds ?? 40, 'maxSeconds'));
  const script = shText`set -u
user=$1 want=$2 maxsecs=$3
entry=$(getent passwd "$user") || {
  printf 'HOSTFLOW_NO_SUCH_USER %s\n' "$user"
  exit 0
}
uid=$(printf '%s\n' "$entry" | cut -d: -f3)
home=$(printf '%s\n' "$entry" | cut -d: -f6)
if [ "$uid" != "$want" ] || [ "$uid" -lt ${LINUX_MIN_TENANT_UID} ]; then
  printf 'HOSTFLOW_UID_CHANGED %s %s\n' "$want" "$uid"
  exit ${LINUX_EXIT.BAD_INPUT}
fi
rcf=$(mktemp)
n=$({ timeout "$maxsecs" find / -xdev -depth -uid "$uid" ! -path "$home" ! -path "$home/*" -print -delete 2>/dev/null; echo "$?" > "$rcf"; } | wc -l | tr -d ' ')
printf 'HOSTFLOW_FILES_REMOVED %s\n' "$n"
if [ "$(cat "$rcf")" = 124 ]; then
  echo 'HOSTFLOW_FILES_TIMED_OUT'
fi
rm -f -- "$rcf"
exit 0`;
  return sudoSh('hostflow-remove-tenant-files', script, [user, uid, maxSeconds]);
}

/**
 * Removes what a user leaves outside their home, as root, idempotently: their crontab, and files
 * they own under /tmp, /var/tmp and /dev/shm (same filesystem only, no symlink following). The home
 * directory goes with `deleteUser(..., { removeHome: true })`. Prints `HOSTFLOW_CRONTAB_REMOVED`
 * or `HOSTFLOW_NO_CRONTAB`, then `HOSTFLOW_TMP_REMOVED <count>`. A missing user is fine (exit 0):
 * files are matched by uid, which the caller passes when the account is already gone.
 */
export function cleanupUserLeftovers(username: string, uid?: number): string {
  const user = validate(linuxUsername, username, 'username');
  const u = uid === undefined ? '' : String(validate(z.number().int().min(1000).max(4294967294), uid, 'uid'));
  const script = shText`set -u
user=$1 uid=$2
if [ -z "$uid" ]; then
  uid=$(id -u -- "$user" 2>/dev/null || true)
fi
if [ -f /var/spool/cron/crontabs/"$user" ]; then
  crontab -r -u "$user" 2>/dev/null || rm -f -- /var/spool/cron/crontabs/"$user"
  echo 'HOSTFLOW_CRONTAB_REMOVED'
else
  echo 'HOSTFLOW_NO_CRONTAB'
fi
count=0
if [ -n "$uid" ]; then
  for d in /tmp /var/tmp /dev/shm; do
    [ -d "$d" ] || continue
    n=$(find "$d" -xdev -depth -mindepth 1 -uid "$uid" -print -delete 2>/dev/null | wc -l)
    count=$((count + n))
  done
fi
printf 'HOSTFLOW_TMP_REMOVED %s\n' "$count"
exit 0`;
  return sudoSh('hostflow-cleanup-user-leftovers', script, [user, u]);
}

/** `id -u -- <username>` as the admin (exit 6 with `HOSTFLOW_NO_SUCH_USER` if missing). */
export function userUid(username: string): string {
  const user = validate(linuxUsername, username, 'username');
  const script = shText`set -eu
user=$1
${REQUIRE_USER}
id -u -- "$user"`;
  return sh('hostflow-user-uid', script, [user]);
}

/** Fingerprints of the user's authorized_keys lines, as the user: `HOSTFLOW_KEY <fingerprint>` each. */
export function listAuthorizedKeys(username: string): string {
  const user = validate(linuxUsername, username, 'username');
  const inner = shText`set -eu
home=$1
file=$home/.ssh/authorized_keys
if [ ! -f "$file" ]; then
  echo 'HOSTFLOW_NO_AUTHORIZED_KEYS'
  exit 0
fi
ssh-keygen -lf "$file" 2>/dev/null | awk '{ print "HOSTFLOW_KEY " $2 }' || true`;
  return asUserInHome('hostflow-list-authorized-keys', inner, user);
}

// ---------------------------------------------------------------------------------------------
// Platform marker: "was this account created by the platform?"
// ---------------------------------------------------------------------------------------------

/**
 * Reads `${LINUX_MARKER_DIR}/<username>` as root. Prints `HOSTFLOW_MARKER <ref>` or
 * `HOSTFLOW_NO_MARKER`; exit 0 either way (see parseMarkerOutput). A user that exists without a
 * marker was not created by the platform (origin `pre-existing`).
 */
export function readMarker(username: string): string {
  const user = validate(linuxUsername, username, 'username');
  const script = shText`set -eu
user=$1
if [ -f ${MARKER_FILE} ]; then
  printf 'HOSTFLOW_MARKER %s\n' "$(head -n 1 -- ${MARKER_FILE})"
else
  echo 'HOSTFLOW_NO_MARKER'
fi`;
  return sudoSh('hostflow-read-marker', script, [user]);
}

// ---------------------------------------------------------------------------------------------
// authorized_keys (~/.ssh/authorized_keys; hosts with another AuthorizedKeysFile are not supported)
// ---------------------------------------------------------------------------------------------

export interface ParsedSshKey {
  type: string;
  blob: string;
  comment: string;
  /** `SHA256:...` exactly as `ssh-keygen -l` prints it. */
  fingerprint: string;
}

/** Validates one public key line and computes its fingerprint (the blob must decode and name its own type). */
export function parseSshPublicKey(line: string, field = 'key'): ParsedSshKey {
  const key = validate(sshPublicKey, line, field);
  const [type = '', blob = '', ...rest] = key.split(' ');
  const raw = Buffer.from(blob, 'base64');
  const typeLen = raw.length >= 4 ? raw.readUInt32BE(0) : -1;
  if (raw.toString('base64').replace(/=+$/, '') !== blob.replace(/=+$/, '') || raw.subarray(4, 4 + typeLen).toString('latin1') !== type) {
    throw new InvalidInputError(field, `${field}: SSH public key data is not a valid ${type} key`);
  }
  const fingerprint = `SHA256:${createHash('sha256').update(raw).digest('base64').replace(/=+$/, '')}`;
  return { type, blob, comment: rest.join(' '), fingerprint };
}

/** Outer part (as the admin): find the home directory, then run `inner` as the user. */
function asUserInHome(name: string, inner: string, user: string): string {
  const script = shText`set -eu
user=$1
entry=$(getent passwd "$user") || {
  printf 'HOSTFLOW_NO_SUCH_USER %s\n' "$user"
  exit ${LINUX_EXIT.NO_SUCH_USER}
}
home=$(printf '%s\n' "$entry" | cut -d: -f6)
case $home in
  /*) ;;
  *) printf 'HOSTFLOW_NO_HOME %s\n' "$user"
     exit ${LINUX_EXIT.NO_HOME} ;;
esac
exec sudo -n -u "$user" -- sh -c ${shq(inner)} ${shq(name)} "$home"`;
  return sh(name, script, [user]);
}

/**
 * Serialises edits of one user's authorized_keys (adding keys appends; removing rewrites the file
 * from a read of it: run at the same time, one could undo the other). Held until the script
 * exits; skipped where flock(1) is missing.
 */
const LOCK_AUTHORIZED_KEYS = `if command -v flock >/dev/null 2>&1; then
  exec 9>>"$dir/.hostflow-authorized_keys.lock"
  flock -w 60 9
fi`;

/**
 * Appends keys to the user's ~/.ssh/authorized_keys, as the user (creates ~/.ssh 0700 and the file
 * 0600 if needed). Idempotent: a key whose type and data already appear on a line (whatever its
 * options or comment) is not added again; other lines are untouched. Keys go through stdin. Prints
 * `HOSTFLOW_KEY_ADDED <i>` / `HOSTFLOW_KEY_PRESENT <i>` (index into `keys`).
 */
export function addAuthorizedKeys(username: string, keys: readonly string[]): StdinCommand<string> {
  const user = validate(linuxUsername, username, 'username');
  if (!Array.isArray(keys) || keys.length === 0) throw new InvalidInputError('keys', 'keys: at least one key is required');
  if (keys.length > 100) throw new InvalidInputError('keys', 'keys: at most 100 keys at once');
  const parsed = keys.map((k, i) => parseSshPublicKey(k, `keys[${i}]`));
  const inner = shText`set -eu
home=$1
umask 077
dir=$home/.ssh
file=$dir/authorized_keys
if [ ! -d "$dir" ]; then
  mkdir -- "$dir"
fi
chmod 700 -- "$dir"
${LOCK_AUTHORIZED_KEYS}
if [ ! -e "$file" ]; then
  : > "$file"
fi
chmod 600 -- "$file"
i=0
while IFS= read -r key || [ -n "$key" ]; do
  type=\${key%% *}
  rest=\${key#* }
  blob=\${rest%% *}
  if awk -v t="$type" -v b="$blob" '{ for (n = 1; n < NF; n++) if ($n == t && $(n + 1) == b) { found = 1; exit } } END { exit !found }' "$file"; then
    printf 'HOSTFLOW_KEY_PRESENT %s\n' "$i"
  else
    if [ -s "$file" ] && [ -n "$(tail -c 1 -- "$file")" ]; then
      printf '\n' >> "$file"
    fi
    printf '%s\n' "$key" >> "$file"
    printf 'HOSTFLOW_KEY_ADDED %s\n' "$i"
  fi
  i=$((i + 1))
done`;
  return {
    script: asUserInHome('hostflow-add-authorized-keys', inner, user),
    stdin: parsed.map((k) => [k.type, k.blob, k.comment].filter(Boolean).join(' ') + '\n').join(''),
  };
}

/**
 * Removes every authorized_keys line whose key matches one of `fingerprintsOrKeys` (`SHA256:...`
 * fingerprints or public key lines, compared by fingerprint, so options and comments do not
 * matter), as the user, by rewriting the file atomically; the file is untouched when nothing
 * matches. Fingerprints go through stdin. Prints `HOSTFLOW_KEY_REMOVED <fingerprint>` per line.
 */
export function removeAuthorizedKeys(username: string, fingerprintsOrKeys: readonly string[]): StdinCommand<string> {
  const user = validate(linuxUsername, username, 'username');
  if (!Array.isArray(fingerprintsOrKeys) || fingerprintsOrKeys.length === 0) {
    throw new InvalidInputError('fingerprintsOrKeys', 'fingerprintsOrKeys: at least one fingerprint or key is required');
  }
  if (fingerprintsOrKeys.length > 100) throw new InvalidInputError('fingerprintsOrKeys', 'fingerprintsOrKeys: at most 100 at once');
  const fps = fingerprintsOrKeys.map((v, i) =>
    typeof v === 'string' && v.startsWith('SHA256:')
      ? validate(sshKeyFingerprint, v, `fingerprintsOrKeys[${i}]`)
      : parseSshPublicKey(v, `fingerprintsOrKeys[${i}]`).fingerprint,
  );
  const inner = shText`set -eu
home=$1
file=$home/.ssh/authorized_keys
fps=$(cat)
if [ ! -f "$file" ]; then
  echo 'HOSTFLOW_NO_AUTHORIZED_KEYS'
  exit 0
fi
dir=$home/.ssh
${LOCK_AUTHORIZED_KEYS}
tmp=$(mktemp -- "$home/.ssh/.authorized_keys.XXXXXX")
removed=0
while IFS= read -r line || [ -n "$line" ]; do
  fp=
  case $line in
    ''|'#'*) ;;
    *) fp=$(printf '%s\n' "$line" | ssh-keygen -lf /dev/stdin 2>/dev/null | awk '{ print $2 }') || fp= ;;
  esac
  if [ -n "$fp" ] && printf '%s\n' "$fps" | grep -Fxq -- "$fp"; then
    printf 'HOSTFLOW_KEY_REMOVED %s\n' "$fp"
    removed=$((removed + 1))
  else
    printf '%s\n' "$line" >> "$tmp"
  fi
done < "$file"
if [ "$removed" -gt 0 ]; then
  chmod 600 -- "$tmp"
  mv -f -- "$tmp" "$file"
else
  rm -f -- "$tmp"
fi`;
  return {
    script: asUserInHome('hostflow-remove-authorized-keys', inner, user),
    stdin: [...new Set(fps)].map((f) => `${f}\n`).join(''),
  };
}

// ---------------------------------------------------------------------------------------------
// Output parsing
// ---------------------------------------------------------------------------------------------

/** `HOSTFLOW_<WORD> [rest]` lines of a script's stdout, in order. */
export function parseMarkers(stdout: string): { marker: string; value: string }[] {
  const out: { marker: string; value: string }[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^HOSTFLOW_([A-Z_]+)(?: (.*))?$/.exec(line.replace(/\r$/, ''));
    if (m) out.push({ marker: m[1] ?? '', value: m[2] ?? '' });
  }
  return out;
}

/** readMarker's stdout → the stored reference, or null when there is no marker. */
export function parseMarkerOutput(stdout: string): string | null {
  const m = parseMarkers(stdout).find((x) => x.marker === 'MARKER');
  return m ? m.value : null;
}

