/**
 * VNC service auto-deployment (seed 001 §3.2) on Linux hosts: pure command builders and the VNC
 * password formats. Same rules as linux.ts: constant scripts, values as quoted positional
 * parameters, secrets through stdin only, `HOSTFLOW_*` marker lines on stdout.
 *
 * The server is TigerVNC's `Xvnc` started as the customer's OS account (`sudo -u <user>`, its own
 * session via `setsid`) on the first free display from 10 up (RFB port 5900 + display), with
 * `-rfbauth ~/.vnc/hostflow-passwd -SecurityTypes VncAuth`. The password file is written in
 * `vncpasswd`'s format by the platform (`vncPasswordFile`: DES with VNC's fixed key), so the host
 * needs no `vncpasswd` and the plain password never reaches the host. Xvnc reads that file at each
 * authentication, so a reset only rewrites it. When `~/.vnc/xstartup` is executable (TigerVNC's
 * convention) it is started on the display as the customer's desktop session.
 */
import { createCipheriv, randomInt } from 'node:crypto';
import { InvalidInputError, linuxUsername, validate } from './validation.js';
import { shq } from './linux.js';

/** The files the platform keeps in the customer's ~/.vnc (removed at reclaim). */
export const VNC_FILES = ['hostflow-passwd', 'hostflow-vnc.pid', 'hostflow-vnc.log', 'hostflow-vnc.display'] as const;
/** Displays tried: :10 … :199 (RFB port 5910 … 6099). */
export const VNC_FIRST_DISPLAY = 10;

export interface StdinCommand {
  script: string;
  stdin: string;
}

function sudoSh(name: string, script: string, args: readonly string[]): string {
  return `sudo -n ${['sh', '-c', shq(script), shq(name), ...args.map(shq)].join(' ')}`;
}

// VNC's fixed DES key for stored passwords ({23,82,107,6,35,78,88,7}, as d3des uses it), bit-reversed per byte for a standard DES.
const OBFUSCATION_KEY = Buffer.from('e84ad660c4721ae0', 'hex');
const ALPHABET = 'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';

/** Single DES in ECB (OpenSSL 3 keeps single DES in its legacy provider; DES-EDE with K1 = K2 is the same cipher). */
function desEcb(key8: Buffer, data: Buffer): Buffer {
  const c = createCipheriv('des-ede-ecb', Buffer.concat([key8, key8]), null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

const padded = (password: string) => {
  const b = Buffer.alloc(8);
  Buffer.from(password, 'latin1').copy(b, 0, 0, 8);
  return b;
};

/** A VNC password: VNC authentication uses 8 characters, so 8 random letters and digits (CSPRNG). */
export function generateVncPassword(): string {
  let s = '';
  while (s.length < 8) s += ALPHABET[randomInt(ALPHABET.length)]!;
  return s;
}

/** The 8-byte file `vncpasswd` writes for `password` (what Xvnc's -rfbauth reads). */
export function vncPasswordFile(password: string): Buffer {
  if (!/^[\x20-\x7e]{6,8}$/.test(password)) throw new InvalidInputError('password', 'a VNC password is 6 to 8 printable ASCII characters');
  return desEcb(OBFUSCATION_KEY, padded(password));
}

/** RFB VNC Authentication (security type 2): the client's answer to the server's 16-byte challenge. */
export function vncAuthResponse(password: string, challenge: Buffer): Buffer {
  const key = padded(password).map((b) => {
    let r = 0;
    for (let i = 0; i < 8; i++) if (b & (1 << i)) r |= 1 << (7 - i);
    return r;
  });
  return desEcb(Buffer.from(key), challenge);
}

const REQUIRE_HOME = `if ! pw=$(getent passwd "$user"); then
  printf 'HOSTFLOW_NO_SUCH_USER %s\\n' "$user"
  exit 6
fi
home=$(printf '%s' "$pw" | cut -d: -f6)
uid=$(printf '%s' "$pw" | cut -d: -f3)
case "$home" in /*) ;; *) echo HOSTFLOW_NO_HOME; exit 7 ;; esac`;

/** Writes stdin's base64 line (the password file) to ~/.vnc/hostflow-passwd as the user (mode 0600, atomic). */
const WRITE_PASSWD = `IFS= read -r b64 || true
[ -n "$b64" ] || { echo HOSTFLOW_BAD_INPUT; exit 2; }
printf '%s\\n' "$b64" | sudo -n -u "$user" sh -c 'umask 077; mkdir -p -- "$1/.vnc"; chmod 700 -- "$1/.vnc"; base64 -d > "$1/.vnc/hostflow-passwd.tmp" && mv -f -- "$1/.vnc/hostflow-passwd.tmp" "$1/.vnc/hostflow-passwd"' hostflow-vnc-passwd "$home"
echo HOSTFLOW_VNC_PASSWORD_WRITTEN`;

/** Sets $running to the pid of the user's platform Xvnc, if one runs (pid file, owner and command checked). */
const FIND_RUNNING = `running=
if [ -f "$home/.vnc/hostflow-vnc.pid" ]; then
  p=$(cat -- "$home/.vnc/hostflow-vnc.pid" 2>/dev/null || true)
  case "$p" in ''|*[!0-9]*) p= ;; esac
  if [ -n "$p" ] && [ "$(ps -o uid= -p "$p" 2>/dev/null | tr -d ' ')" = "$uid" ] && [ "$(ps -o comm= -p "$p" 2>/dev/null)" = Xvnc ]; then running=$p; fi
fi`;

/** `busy <port>`: something listens on the TCP port. */
const BUSY = `busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q . ; }`;

/**
 * Starts Xvnc as the user on the first free display from $n (at most 3 attempts), waits until it
 * listens, then starts an executable ~/.vnc/xstartup on it. Needs $user, $home, $xvnc, busy().
 * Markers: `VNC_STARTED` (+ `VNC_SESSION_STARTED`), `VNC_DISPLAY`, `VNC_PORT`; else exit 11.
 */
const START_FROM_N = `tries=0
while [ "$n" -lt 200 ]; do
  port=$((5900 + n))
  if [ -e "/tmp/.X$n-lock" ] || [ -e "/tmp/.X11-unix/X$n" ] || busy "$port"; then n=$((n + 1)); continue; fi
  tries=$((tries + 1))
  sudo -n -u "$user" -H sh -c 'cd; umask 077
setsid "$1" ":$2" -rfbport "$3" -rfbauth "$HOME/.vnc/hostflow-passwd" -SecurityTypes VncAuth -geometry 1280x800 -depth 24 -desktop "$4" -nolisten tcp </dev/null >"$HOME/.vnc/hostflow-vnc.log" 2>&1 &
echo $! > "$HOME/.vnc/hostflow-vnc.pid"
printf "%s %s\\n" "$2" "$3" > "$HOME/.vnc/hostflow-vnc.display"' hostflow-vnc-start "$xvnc" "$n" "$port" "$user"
  pid=$(cat -- "$home/.vnc/hostflow-vnc.pid")
  i=0
  while [ "$i" -lt 100 ]; do
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    if busy "$port"; then
      if [ -x "$home/.vnc/xstartup" ]; then
        sudo -n -u "$user" -H env DISPLAY=":$n" sh -c 'cd; setsid "$HOME/.vnc/xstartup" </dev/null >>"$HOME/.vnc/hostflow-vnc.log" 2>&1 &' hostflow-vnc-session
        echo HOSTFLOW_VNC_SESSION_STARTED
      fi
      echo HOSTFLOW_VNC_STARTED
      printf 'HOSTFLOW_VNC_DISPLAY %s\\nHOSTFLOW_VNC_PORT %s\\n' "$n" "$port"
      exit 0
    fi
    sleep 0.1
    i=$((i + 1))
  done
  kill -KILL "$pid" 2>/dev/null || true
  # Another server took the display or the port meanwhile: try the next one (at most 3 times).
  [ "$tries" -lt 3 ] || break
  n=$((n + 1))
done
echo HOSTFLOW_VNC_START_FAILED
exit 11`;

/**
 * Deploys and starts the customer's VNC server (check-then-act): installs TigerVNC when Xvnc is
 * missing (apt-get, Debian/Ubuntu), writes the password file, starts Xvnc as the user unless its
 * platform server already runs, and waits until it listens. Markers: `VNC_INSTALLED`,
 * `VNC_RUNNING` (found running) or `VNC_STARTED`, `VNC_DISPLAY <n>`, `VNC_PORT <port>`.
 * stdin: the base64 of `vncPasswordFile(password)`.
 */
export function deployVnc(username: string, passwordFile: Buffer): StdinCommand {
  const user = validate(linuxUsername, username, 'username');
  if (passwordFile.length !== 8) throw new InvalidInputError('passwordFile', 'a VNC password file is 8 bytes');
  const script = `set -eu
user=$1
${REQUIRE_HOME}
if ! command -v Xvnc >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q tigervnc-standalone-server >/dev/null 2>&1 && command -v Xvnc >/dev/null 2>&1; then
    echo HOSTFLOW_VNC_INSTALLED
  else
    echo HOSTFLOW_VNC_NOT_INSTALLABLE
    exit 10
  fi
fi
xvnc=$(command -v Xvnc)
${WRITE_PASSWD}
${FIND_RUNNING}
if [ -n "$running" ] && [ -f "$home/.vnc/hostflow-vnc.display" ]; then
  read -r n port < "$home/.vnc/hostflow-vnc.display"
  echo HOSTFLOW_VNC_RUNNING
  printf 'HOSTFLOW_VNC_DISPLAY %s\\nHOSTFLOW_VNC_PORT %s\\n' "$n" "$port"
  exit 0
fi
${BUSY}
n=${VNC_FIRST_DISPLAY}
${START_FROM_N}`;
  return { script: sudoSh('hostflow-vnc-deploy', script, [user]), stdin: passwordFile.toString('base64') + '\n' };
}

/** Rewrites the user's VNC password file (a reset); the running Xvnc reads it at the next authentication. */
export function writeVncPassword(username: string, passwordFile: Buffer): StdinCommand {
  const user = validate(linuxUsername, username, 'username');
  if (passwordFile.length !== 8) throw new InvalidInputError('passwordFile', 'a VNC password file is 8 bytes');
  const script = `set -eu
user=$1
${REQUIRE_HOME}
${WRITE_PASSWD}`;
  return { script: sudoSh('hostflow-vnc-password', script, [user]), stdin: passwordFile.toString('base64') + '\n' };
}

/**
 * (Re)starts the user's platform VNC server, idempotently (POST /allocations/:id/vnc/restart): a
 * server that runs and listens is left alone (`VNC_RUNNING`); one that runs but no longer listens
 * is killed (`VNC_KILLED_HUNG`); then, as after a host reboot or a crash, the display lock and X
 * socket that a dead server of this uid left on `display` are removed (`VNC_STALE_REMOVED`) and
 * Xvnc starts again, on `display` when it is free, else on the next free one. The password file
 * stays as it is; `passwordFile` rewrites it first (when it is missing the script answers
 * `VNC_NO_PASSWORD_FILE`, exit 12, and the activity comes back with a new password). It never
 * installs anything: no Xvnc is `VNC_NOT_INSTALLED`, exit 10.
 */
export function restartVnc(username: string, opts: { display?: number | null; passwordFile?: Buffer } = {}): StdinCommand {
  const user = validate(linuxUsername, username, 'username');
  const display = opts.display ?? VNC_FIRST_DISPLAY;
  if (!Number.isInteger(display) || display < 1 || display > 199) throw new InvalidInputError('display', 'a VNC display is 1 to 199');
  if (opts.passwordFile && opts.passwordFile.length !== 8) throw new InvalidInputError('passwordFile', 'a VNC password file is 8 bytes');
  const script = `set -eu
user=$1
first=$2
${REQUIRE_HOME}
command -v Xvnc >/dev/null 2>&1 || { echo HOSTFLOW_VNC_NOT_INSTALLED; exit 10; }
xvnc=$(command -v Xvnc)
IFS= read -r b64 || true
if [ -n "$b64" ]; then
  printf '%s\\n' "$b64" | sudo -n -u "$user" sh -c 'umask 077; mkdir -p -- "$1/.vnc"; chmod 700 -- "$1/.vnc"; base64 -d > "$1/.vnc/hostflow-passwd.tmp" && mv -f -- "$1/.vnc/hostflow-passwd.tmp" "$1/.vnc/hostflow-passwd"' hostflow-vnc-passwd "$home"
  echo HOSTFLOW_VNC_PASSWORD_WRITTEN
elif [ ! -s "$home/.vnc/hostflow-passwd" ]; then
  echo HOSTFLOW_VNC_NO_PASSWORD_FILE
  exit 12
fi
${BUSY}
${FIND_RUNNING}
if [ -n "$running" ] && [ -f "$home/.vnc/hostflow-vnc.display" ]; then
  read -r n port < "$home/.vnc/hostflow-vnc.display"
  if busy "$port"; then
    echo HOSTFLOW_VNC_RUNNING
    printf 'HOSTFLOW_VNC_DISPLAY %s\\nHOSTFLOW_VNC_PORT %s\\n' "$n" "$port"
    exit 0
  fi
fi
if [ -n "$running" ]; then
  kill -TERM "$running" 2>/dev/null || true
  i=0
  while [ "$i" -lt 50 ] && kill -0 "$running" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
  kill -KILL "$running" 2>/dev/null || true
  echo HOSTFLOW_VNC_KILLED_HUNG
fi
# What a dead server of this uid left on its display (no Xvnc of the uid runs any more).
if ! pgrep -u "$uid" -x Xvnc >/dev/null 2>&1; then
  stale=0
  for f in "/tmp/.X$first-lock" "/tmp/.X11-unix/X$first"; do
    if [ -e "$f" ] && [ "$(stat -c %u -- "$f")" = "$uid" ]; then rm -f -- "$f"; stale=$((stale + 1)); fi
  done
  [ "$stale" -eq 0 ] || printf 'HOSTFLOW_VNC_STALE_REMOVED %s\\n' "$stale"
fi
n=$first
${START_FROM_N}`;
  return { script: sudoSh('hostflow-vnc-restart', script, [user, String(display)]), stdin: opts.passwordFile ? opts.passwordFile.toString('base64') + '\n' : '\n' };
}

/**
 * Stops the user's VNC server (the platform's and any other Xvnc of the uid: TERM, then KILL after
 * 5 s), removes its display lock and socket and the platform's files in ~/.vnc (the directory too
 * when left empty). Markers: `VNC_STOPPED <count>`, `VNC_FILES_REMOVED <count>`; a missing user is
 * `NO_SUCH_USER` with exit 0 (nothing left to stop).
 */
export function removeVnc(username: string): string {
  const user = validate(linuxUsername, username, 'username');
  const script = `set -u
user=$1
if ! pw=$(getent passwd "$user"); then
  printf 'HOSTFLOW_NO_SUCH_USER %s\\n' "$user"
  exit 0
fi
home=$(printf '%s' "$pw" | cut -d: -f6)
uid=$(printf '%s' "$pw" | cut -d: -f3)
n=
[ -f "$home/.vnc/hostflow-vnc.display" ] && read -r n port < "$home/.vnc/hostflow-vnc.display" || true
case "$n" in ''|*[!0-9]*) n= ;; esac
stopped=$(pgrep -c -u "$uid" -x Xvnc 2>/dev/null || true)
case "$stopped" in ''|*[!0-9]*) stopped=0 ;; esac
if [ "$stopped" -gt 0 ]; then
  pkill -TERM -u "$uid" -x Xvnc 2>/dev/null || true
  i=0
  while [ "$i" -lt 50 ] && pgrep -u "$uid" -x Xvnc >/dev/null 2>&1; do sleep 0.1; i=$((i + 1)); done
  pkill -KILL -u "$uid" -x Xvnc 2>/dev/null || true
fi
printf 'HOSTFLOW_VNC_STOPPED %s\\n' "$stopped"
if [ -n "$n" ]; then
  for f in "/tmp/.X$n-lock" "/tmp/.X11-unix/X$n"; do
    if [ -e "$f" ] && [ "$(stat -c %u -- "$f")" = "$uid" ]; then rm -f -- "$f"; fi
  done
fi
removed=0
for f in ${VNC_FILES.join(' ')} hostflow-passwd.tmp; do
  if [ -e "$home/.vnc/$f" ] || [ -L "$home/.vnc/$f" ]; then
    sudo -n -u "$user" rm -f -- "$home/.vnc/$f" && removed=$((removed + 1))
  fi
done
[ -d "$home/.vnc" ] && sudo -n -u "$user" rmdir -- "$home/.vnc" 2>/dev/null || true
printf 'HOSTFLOW_VNC_FILES_REMOVED %s\\n' "$removed"`;
  return sudoSh('hostflow-vnc-remove', script, [user]);
}
