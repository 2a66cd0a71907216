// STAND-IN for a Windows host: a WS-Management (WinRM) server that speaks the real protocol; Windows cannot run here.
/**
 * `startWsManHost()` listens on 127.0.0.1:<random port> at `/wsman` (HTTP, or HTTPS with a
 * self-signed certificate made by the `openssl` CLI) and answers the Windows Remote Shell messages
 * of [MS-WSMV]: Create shell → Command → Send (stdin) → Receive → Signal → Delete, with Basic auth
 * against its local user store (wrong password or disabled account → 401; an account outside
 * Administrators / Remote Management Users → 500 w:AccessDenied, as on Windows).
 *
 * It does NOT run PowerShell. A command must be `powershell.exe ... -EncodedCommand <base64 UTF-16LE>`;
 * the decoded script is split into statements (newline or `;`), checked as a whole against a small,
 * explicit subset, then interpreted. Arguments are literal single-quoted strings (a doubled quote
 * escapes one; PowerShell's other single quotes ‘ ’ ‚ ‛ count as quotes too), `$HostflowStdin`, or
 * `$v.Name` of a variable holding a user/group — never evaluated, so an injection attempt shows up as
 * a literal value:
 *
 *   Get-LocalUser -Name '<n>'   Get-LocalGroup [-Name '<g>']   Get-LocalGroupMember -Group '<g>' [-Member '<n>']
 *   New-LocalUser -Name '<n>' -Password (ConvertTo-SecureString '<p>'|$HostflowStdin -AsPlainText -Force)
 *                 [-FullName '<f>'] [-Description '<d>'] [-PasswordNeverExpires] [-AccountNeverExpires]
 *   Set-LocalUser -Name '<n>' [-Password (...)] [-FullName '<f>'] [-Description '<d>']
 *   Enable-LocalUser / Disable-LocalUser / Remove-LocalUser -Name '<n>'
 *   Add-LocalGroupMember / Remove-LocalGroupMember -Group '<g>' -Member '<n>'
 *   Get-CimInstance -ClassName Win32_UserProfile -Filter ('SID = ''' + $v.SID + '''')   (a user's profile, or nothing)
 *   Remove-CimInstance -InputObject $v     (deletes that profile: C:\Users\<name> and its hive; fails while loaded)
 *   Get-CimInstance -ClassName <Win32_Processor|ComputerSystem|OperatingSystem|DiskDrive|VideoController> | Select-Object <p>, ... | ConvertTo-Json -Compress
 *   Get-ItemProperty -Path '<display adapters' class key>\0*' [-ErrorAction SilentlyContinue] | Select-Object <p>, ... | ConvertTo-Json -Compress
 *                 (the machine's hardware: `hardware`; one object prints bare, several as an array, none prints nothing)
 *   quser                 (native: the sessions table as query.exe prints it; none → "No User exists for *" on stderr, exit 1)
 *   logoff <session id>   (native: ends the session; the user's profile unloads with their last session)
 *   Write-Output '<text>' | ('<text>' + $v.Name)   Write-Error '<text>'
 *   Start-Sleep -Seconds <n> | -Milliseconds <n>   exit <n>
 *   $ProgressPreference = '...'   $ErrorActionPreference = 'Stop'|'Continue'|'SilentlyContinue'
 *   $HostflowStdin = [string]::Join("`n", @($input))      (reads stdin sent with WS-Man Send)
 *   $v = $true | $false | <Get-Local* or Get-CimInstance call>     ($v.Name, and $v.SID of a user, can be read)
 *   any statement may end in `| Out-Null`; `-ErrorAction Stop|SilentlyContinue|Continue` is accepted
 *
 * and these blocks (header on its own line ending in `{`, `}` alone on its line; no else/elseif):
 *
 *   if (<condition>) {        condition: $null -eq|-ne (<Get-Local* call>)   $null -eq|-ne $v   $v
 *   try {   ...   }
 *   catch [Microsoft.PowerShell.Commands.MemberExistsException|UserNotFoundException] {   ...   }
 *   foreach ($v in <Get-Local* call>) {
 *
 * Anything else writes "unsupported <cmdlet|block|condition|syntax|variable> in stand-in: ..." to
 * stderr and exits 1 before the first statement runs (except a variable used before it is set,
 * found when reached), so a test fails loudly instead of passing silently. PowerShell's behaviour
 * that is mirrored: errors are non-terminating unless ErrorAction is Stop; a terminating error is
 * handled by a catch for its exception type, else ends the script; error records go to stderr as
 * CLIXML (as powershell.exe does with -EncodedCommand over WinRM); without `exit`, the exit code is
 * 1 if the last command (including a lookup in a condition) failed, else 0; an unset variable is
 * $null in a condition; output is UTF-8 only if the shell asked for code page 65001 (else
 * non-ASCII → '?');
 * Windows' default password complexity rule; user names are case-insensitive; every user has a SID;
 * `Remove-LocalUser` leaves the user's profile behind (as Windows does), a profile exists once the
 * user logged on (`createProfile`, e.g. an RDP logon). `injectFault` makes a cmdlet fail with
 * another error than "not found" (access denied, RPC unavailable), to test "could not tell".
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual, X509Certificate } from 'node:crypto';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { renameSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { XMLParser } from 'fast-xml-parser';

export interface LocalUser {
  name: string;
  fullName: string;
  description: string;
  enabled: boolean;
  /** `sha256:<salt hex>:<hash hex>` */
  passwordHash: string;
  passwordNeverExpires: boolean;
  /** "User must change password at next logon" (`net user /logonpasswordchg:yes`): every logon is refused until it is changed. */
  passwordExpired: boolean;
  /** Group names, as Windows spells them. */
  groups: Set<string>;
  /** `S-1-5-21-<machine>-<rid>` */
  sid: string;
}

/** A process (Win32_Process): its owner's SID (GetOwnerSid) and session (0: not in a logon session). */
export interface StandInProcess {
  pid: number;
  name: string;
  sid: string | null;
  sessionId: number;
}

/** A scheduled task (Get-ScheduledTask): `userId` is its principal as registered (name, COMPUTER\name or SID). */
export interface StandInTask {
  taskName: string;
  taskPath: string;
  userId: string;
}

/** A user profile (Win32_UserProfile): C:\Users\<name> and the registry hive. */
export interface UserProfile {
  sid: string;
  localPath: string;
  /** Loaded while the user is logged on: then it cannot be deleted. */
  loaded: boolean;
}

export interface WsManCommandRecord {
  user: string;
  shellId: string;
  commandId: string;
  commandLine: string;
  /** The decoded PowerShell script (empty if the command was not -EncodedCommand). */
  script: string;
  options: Record<string, string>;
  /** Everything sent to stdin (UTF-8). */
  stdin: string;
  exitCode?: number;
}

export interface WsManRequestRecord {
  action: string;
  /** Authenticated user, or null when refused. */
  user: string | null;
  status: number;
}

/**
 * What the stand-in's CIM classes and the display adapters' registry class key hold (property
 * names and types as Windows has them: AdapterRAM a uint32, qwMemorySize a 64-bit value).
 */
export interface StandInHardware {
  /** CIM class name (e.g. `Win32_VideoController`) → its instances. */
  classes: Record<string, Array<Record<string, unknown>>>;
  /** Subkeys 0000, 0001, … of HKLM:\SYSTEM\CurrentControlSet\Control\Class\{4d36e968-e325-11ce-bfc1-08002be10318}. */
  displayClassKeys: Array<Record<string, unknown>>;
}

export const FACT_CLASSES = ['Win32_Processor', 'Win32_ComputerSystem', 'Win32_OperatingSystem', 'Win32_DiskDrive', 'Win32_VideoController'];
const DISPLAY_CLASS_PATH = 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Class\\{4d36e968-e325-11ce-bfc1-08002be10318}\\0*';

function defaultHardware(computerName: string): StandInHardware {
  return {
    classes: {
      Win32_Processor: [{ Name: 'Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz', NumberOfCores: 8, NumberOfLogicalProcessors: 16 }],
      Win32_ComputerSystem: [{ Name: computerName, TotalPhysicalMemory: 34_359_738_368 }],
      Win32_OperatingSystem: [{ Caption: 'Microsoft Windows Server 2022 Datacenter', Version: '10.0.20348', BuildNumber: '20348' }],
      Win32_DiskDrive: [{ DeviceID: '\\\\.\\PHYSICALDRIVE0', Size: 536_864_025_600, Model: 'Microsoft Virtual Disk', MediaType: 'Fixed hard disk media' }],
      Win32_VideoController: [{ Name: 'Microsoft Hyper-V Video', AdapterRAM: 0, DriverVersion: '10.0.20348.1', PNPDeviceID: 'VMBUS\\{DA0A7802-E377-4AAC-8E77-0558EB1073F8}' }],
    },
    displayClassKeys: [{ DriverDesc: 'Microsoft Hyper-V Video', MatchingDeviceId: 'vmbus\\{da0a7802-e377-4aac-8e77-0558eb1073f8}' }],
  };
}

/** `<Get-CimInstance …|Get-ItemProperty …> | Select-Object a, b | ConvertTo-Json -Compress` */
const QUERY_RE = /^(?:Get-CimInstance\s+-ClassName\s+([A-Za-z0-9_]+)|Get-ItemProperty\s+-Path\s+'([^']*)'(?:\s+-ErrorAction\s+(SilentlyContinue|Stop|Continue))?)\s*\|\s*Select-Object\s+(.+?)\s*\|\s*ConvertTo-Json\s+-Compress$/i;

function parseQuery(stmt: string): { cls?: string; registry?: string; props: string[] } | null {
  const m = QUERY_RE.exec(stmt);
  if (!m) return null;
  const props = m[4]!.split(',').map((x) => x.trim().replace(/^'(.*)'$/, '$1'));
  if (props.some((x) => !/^[A-Za-z0-9_.]+$/.test(x))) throw new Unsupported(`Select-Object takes plain property names here: ${stmt}`);
  if (m[1]) {
    const cls = FACT_CLASSES.find((c) => c.toLowerCase() === m[1]!.toLowerCase());
    if (!cls) throw new Unsupported(`Get-CimInstance of class ${m[1]} in: ${stmt}`);
    return { cls, props };
  }
  if (m[2]!.toLowerCase() !== DISPLAY_CLASS_PATH.toLowerCase()) throw new Unsupported(`Get-ItemProperty of another path than the display adapters' class key in: ${stmt}`);
  return { registry: m[2]!, props };
}

export interface WsManHostOptions {
  /** CIM classes and registry values the facts script reads (default: a small Hyper-V VM). */
  hardware?: StandInHardware;
  adminUser?: string;
  adminPassword?: string;
  https?: boolean;
  computerName?: string;
  /** Windows lets only Administrators and Remote Management Users open shells. Default true. */
  enforceRemoteGroups?: boolean;
  minPasswordLength?: number;
  /**
   * `basic` (default): this server answers Basic itself. `negotiate`: pyspnego (PyPI, run by
   * test/helpers/wsman-auth-proxy.py) listens in front as Windows' HTTP.sys does — NTLM and Kerberos
   * accepted, bodies sealed over HTTP, Basic refused unless `allowBasic` — and forwards clear text to
   * this server over loopback with the authenticated principal.
   */
  auth?: 'basic' | 'negotiate';
  allowBasic?: boolean;
  /** Kerberos acceptor settings (negotiate): the KDC's krb5.conf and a keytab holding HTTP/<spnHost>. */
  kerberos?: { krb5Config: string; keytab: string };
  /** SPN host part the acceptor answers for (default `localhost`). */
  spnHost?: string;
  /** Print the proxy's log on stderr. */
  debugProxy?: boolean;
}

export interface WsManHost {
  host: '127.0.0.1';
  port: number;
  https: boolean;
  url: string;
  computerName: string;
  adminUser: string;
  adminPassword: string;
  /** HTTPS only: the certificate in use and its fingerprint (`SHA256:` base64 of the DER, no padding). */
  certPem?: string;
  certFingerprint?: string;
  /** Local users keyed by lower-cased name. */
  users: Map<string, LocalUser>;
  /** Local groups: name → member user names. */
  groups: Map<string, Set<string>>;
  /** Every command started, with its decoded script. */
  commands: WsManCommandRecord[];
  /** Every SOAP request received. */
  requests: WsManRequestRecord[];
  /** ShellIds not deleted yet. */
  openShells(): string[];
  /** Would this local user log in with this password (exists, enabled, password right)? */
  checkPassword(name: string, password: string): boolean;
  /** Adds a local user directly (a pre-existing account). */
  addUser(name: string, password: string, groups?: string[]): LocalUser;
  /** A domain account (`CORP\\alice` for NTLM, `alice@REALM` for Kerberos) allowed on this host, e.g. via Administrators. */
  addDomainUser(account: string, password: string, groups?: string[]): LocalUser;
  /** negotiate: the principal each authenticated request came in as (in order). */
  principals: string[];
  /** User profiles by SID (what Win32_UserProfile lists). Windows keeps them when the user is removed. */
  profiles: Map<string, UserProfile>;
  /** The user logged on (RDP, console): their profile exists from now on, loaded while `loaded`. */
  createProfile(name: string, opts?: { loaded?: boolean }): UserProfile;
  /** An RDP logon of `name`: a session (Active, or Disc when `disconnected`) and a loaded profile. Returns the session id. */
  logon(name: string, opts?: { disconnected?: boolean }): number;
  /** An RDP logon with a password (checked as Windows does); returns the session id. Explorer runs in it. */
  rdpLogon(name: string, password: string): number;
  /** Processes by pid (what Win32_Process lists, besides Idle and System). */
  processes: Map<number, StandInProcess>;
  /** Starts a process owned by `name` (session 0 unless given: it survives logoff). Returns the pid. */
  startProcess(name: string, exe: string, opts?: { sessionId?: number }): number;
  /** Scheduled tasks by lower-cased `<path><name>`. */
  tasks: Map<string, StandInTask>;
  /** Registers a task whose principal is `userId` (as Register-ScheduledTask -User would). */
  registerTask(userId: string, taskName: string, taskPath?: string): StandInTask;
  /** Sessions by id (what quser lists). */
  sessions: Map<number, { id: number; user: string; name: string; state: 'Active' | 'Disc' }>;
  /** From now on `cmdlet` (e.g. 'Get-LocalUser') fails with `message` (not a "not found" error); null clears. */
  injectFault(cmdlet: string, message: string | null): void;
  /**
   * The next `count` requests authenticating as `name` are refused with 401 whatever the password
   * (a login check that fails right after a password change, as NTLM did in JumpServer #12631).
   */
  refuseLogins(name: string, count: number): void;
  /**
   * Awaited when a command has run, before its result is delivered (e.g. to kill the worker that
   * sent it, so the change is on the host and the caller never learns it).
   */
  onCommandDone: ((record: WsManCommandRecord) => void | Promise<void>) | null;
  /** What Get-CimInstance / Get-ItemProperty read (mutable). */
  hardware: StandInHardware;
  /** HTTPS only: switches to a fresh self-signed certificate and drops idle connections. */
  regenerateCertificate(): Promise<void>;
  stop(): Promise<void>;
}

const NS_S = 'http://www.w3.org/2003/05/soap-envelope';
const NS_A = 'http://schemas.xmlsoap.org/ws/2004/08/addressing';
const NS_W = 'http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd';
const NS_RSP = 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell';
const NS_X = 'http://schemas.xmlsoap.org/ws/2004/09/transfer';
const NS_F = 'http://schemas.microsoft.com/wbem/wsman/1/wsmanfault';
const ACTION = {
  create: `${NS_X}/Create`,
  delete: `${NS_X}/Delete`,
  command: `${NS_RSP}/Command`,
  send: `${NS_RSP}/Send`,
  receive: `${NS_RSP}/Receive`,
  signal: `${NS_RSP}/Signal`,
};
const RESOURCE_CMD = 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd';
const DEFAULT_GROUPS = ['Administrators', 'Users', 'Remote Desktop Users', 'Remote Management Users'];
const REMOTE_GROUPS = ['administrators', 'remote management users'];
const STDIN_PRELUDE = '$HostflowStdin = [string]::Join("`n", @($input))';

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  textNodeName: '#text',
  isArray: (name) => ['Stream', 'Selector', 'Option', 'Arguments'].includes(name),
});

type Node = Record<string, unknown>;
const obj = (v: unknown): Node => (v && typeof v === 'object' ? (v as Node) : {});
const text = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'object' && v ? String((v as Node)['#text'] ?? '') : '');
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);

function hashPassword(pw: string): string {
  const salt = randomBytes(8).toString('hex');
  return `sha256:${salt}:${createHash('sha256').update(salt + pw).digest('hex')}`;
}
function passwordMatches(hash: string, pw: string): boolean {
  const [, salt, hex] = hash.split(':');
  const want = Buffer.from(hex ?? '', 'hex');
  const got = createHash('sha256').update((salt ?? '') + pw).digest();
  return want.length === got.length && timingSafeEqual(want, got);
}

async function selfSignedCert(): Promise<{ key: string; cert: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'wsman-cert-'));
  try {
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2',
      '-subj', '/CN=WIN-STANDIN', '-addext', 'subjectAltName=IP:127.0.0.1',
    ]);
    return { key: await readFile(join(dir, 'key.pem'), 'utf8'), cert: await readFile(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const fingerprintOf = (pem: string) =>
  `SHA256:${createHash('sha256').update(new X509Certificate(pem).raw).digest('base64').replace(/=+$/, '')}`;

// ------------------------------------------------------------------------------------------
// shells and commands

interface RunningCommand {
  record: WsManCommandRecord;
  out: Array<{ stream: 'stdout' | 'stderr'; data: Buffer }>;
  done: boolean;
  exitCode: number;
  /** Done + End streams have been delivered. */
  finished: boolean;
  consoleStdin: boolean;
  stdin: Buffer[];
  stdinEnded: boolean;
  abort: AbortController;
  waiters: Set<() => void>;
}

interface Shell {
  id: string;
  owner: string;
  codepage: number;
  commands: Map<string, RunningCommand>;
}

function notify(c: RunningCommand) {
  for (const w of [...c.waiters]) w();
}

/** Thrown inside the interpreter to stop the script. */
class ScriptExit {
  constructor(public readonly code: number) {}
}

/**
 * A terminating PowerShell error (the error action was Stop): handled by a `catch` for its
 * exception type, else it ends the script with exit 1 and its error record on stderr.
 */
class PsError {
  constructor(
    public readonly cmdlet: string,
    public readonly message: string,
    public readonly exceptionType: string,
  ) {}
}

// ------------------------------------------------------------------------------------------
// the PowerShell subset

type Tok =
  | { t: 'str'; v: string }
  | { t: 'var'; v: string; prop?: string }
  | { t: 'param'; v: string }
  | { t: 'word'; v: string }
  | { t: 'paren'; v: string }
  | { t: 'pipe' };

/** Anything outside the subset: the script fails with "unsupported <what> in stand-in: <text>" and exit 1. */
class Unsupported extends Error {
  constructor(text: string, what: 'cmdlet' | 'syntax' | 'block' | 'condition' | 'variable' = 'cmdlet') {
    super(`unsupported ${what} in stand-in: ${text}`);
  }
}

/** The characters PowerShell's tokenizer treats as a single quote: ' ‘ ’ ‚ ‛ */
const isQuote = (c: string | undefined) => c === "'" || c === '\u2018' || c === '\u2019' || c === '\u201A' || c === '\u201B';

/** Splits a script into statements at newlines and `;` outside quotes and parentheses. */
export function splitStatements(script: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: "'" | '"' | null = null;
  let depth = 0;
  for (let i = 0; i < script.length; i++) {
    const ch = script[i]!;
    if (quote === '"') {
      cur += ch;
      if (ch === '`' && i + 1 < script.length) cur += script[++i];
      else if (ch === '"') quote = null;
      continue;
    }
    if (quote) {
      cur += ch;
      if (isQuote(ch)) {
        if (isQuote(script[i + 1])) cur += script[++i];
        else quote = null;
      }
      continue;
    }
    if (isQuote(ch)) quote = "'";
    else if (ch === '"') quote = '"';
    else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    if ((ch === '\n' || ch === ';' || ch === '\r') && depth === 0) {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
      continue;
    }
    cur += ch;
  }
  if (quote || depth !== 0) throw new Unsupported(`unbalanced quotes or parentheses: ${script.slice(0, 200)}`, 'syntax');
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** The statement with its quoted strings removed (to look for braces outside them). */
function outsideQuotes(stmt: string): string {
  let out = '';
  for (let i = 0; i < stmt.length; i++) {
    const ch = stmt[i]!;
    if (isQuote(ch)) {
      for (i++; i < stmt.length; i++) {
        if (!isQuote(stmt[i])) continue;
        if (isQuote(stmt[i + 1])) i++;
        else break;
      }
    } else if (ch === '"') {
      for (i++; i < stmt.length && stmt[i] !== '"'; i++) if (stmt[i] === '`') i++;
    } else {
      out += ch;
    }
  }
  return out;
}

function tokenize(stmt: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < stmt.length) {
    const ch = stmt[i]!;
    if (/\s/.test(ch)) {
      i++;
    } else if (isQuote(ch)) {
      // As PowerShell: inside '...', a quote character followed by another yields the second one.
      let v = '';
      i++;
      for (;;) {
        if (i >= stmt.length) throw new Unsupported(`unterminated string in: ${stmt}`, 'syntax');
        if (isQuote(stmt[i])) {
          if (isQuote(stmt[i + 1])) {
            v += stmt[i + 1];
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += stmt[i++];
      }
      toks.push({ t: 'str', v });
    } else if (ch === '"') {
      throw new Unsupported(`double-quoted (expanding) strings are not supported: ${stmt}`, 'syntax');
    } else if (ch === '$') {
      const m = /^\$((?:env:)?[A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)/.exec(stmt.slice(i));
      if (!m) throw new Unsupported(stmt);
      toks.push(m[2] ? { t: 'var', v: m[1]!, prop: m[2].slice(1) } : { t: 'var', v: m[1]! });
      i += m[0].length;
    } else if (ch === '(') {
      let depth = 0;
      let j = i;
      let q = false;
      for (; j < stmt.length; j++) {
        const c = stmt[j]!;
        if (isQuote(c)) q = !q;
        if (q) continue;
        if (c === '(') depth++;
        if (c === ')' && --depth === 0) break;
      }
      toks.push({ t: 'paren', v: stmt.slice(i + 1, j).trim() });
      i = j + 1;
    } else if (ch === '|') {
      toks.push({ t: 'pipe' });
      i++;
    } else if (ch === '-' && /[A-Za-z]/.test(stmt[i + 1] ?? '')) {
      const m = /^-([A-Za-z]+(?::\$(?:true|false))?)/.exec(stmt.slice(i))!;
      toks.push({ t: 'param', v: m[1]! });
      i += m[0].length;
    } else {
      const m = /^[^\s'‘’‚‛"$()|;]+/.exec(stmt.slice(i));
      if (!m) throw new Unsupported(stmt);
      toks.push({ t: 'word', v: m[0] });
      i += m[0].length;
    }
  }
  return toks;
}

/** What the Get-Local* cmdlets return (rendered as one JSON line each when printed). */
type PsObj =
  | { kind: 'user'; user: LocalUser }
  | { kind: 'group'; name: string }
  | { kind: 'member'; name: string }
  | { kind: 'profile'; profile: UserProfile }
  /** A CIM instance or another cmdlet's object (Win32_Process, a GetOwnerSid result, a ScheduledTask): its properties. */
  | { kind: 'cim'; cls: string; props: Record<string, unknown> };
type VarValue = string | boolean | null | PsObj;
type Value = string | boolean | { secure: string } | { obj: PsObj };

interface Invocation {
  name: string;
  params: Map<string, Value>;
  positional: Value[];
  outNull: boolean;
}

interface ScriptScope {
  vars: Map<string, VarValue>;
  errorActionStop: boolean;
}

const PARAMS: Record<string, Record<string, 'string' | 'secure' | 'switch' | 'int' | 'bool' | 'erroraction' | 'object'>> = {
  'get-ciminstance': { classname: 'string', filter: 'string' },
  'remove-ciminstance': { inputobject: 'object' },
  'get-localuser': { name: 'string' },
  'get-localgroup': { name: 'string' },
  'get-localgroupmember': { group: 'string', member: 'string' },
  'new-localuser': { name: 'string', password: 'secure', fullname: 'string', description: 'string', passwordneverexpires: 'switch', accountneverexpires: 'switch' },
  'set-localuser': { name: 'string', password: 'secure', fullname: 'string', description: 'string', passwordneverexpires: 'bool' },
  'enable-localuser': { name: 'string' },
  'disable-localuser': { name: 'string' },
  'remove-localuser': { name: 'string' },
  'add-localgroupmember': { group: 'string', member: 'string' },
  'remove-localgroupmember': { group: 'string', member: 'string' },
  'write-output': {},
  'write-error': { message: 'string' },
  'start-sleep': { seconds: 'int', milliseconds: 'int' },
  'invoke-cimmethod': { inputobject: 'object', methodname: 'string' },
  'stop-process': { id: 'string', force: 'switch' },
  'get-scheduledtask': {},
  'unregister-scheduledtask': { taskname: 'string', taskpath: 'string', 'confirm:$false': 'switch' },
};

/** `$v.A.B` of an object (case-insensitive, as PowerShell); undefined when the object has no such property. */
function propertyOf(o: PsObj, path: string): unknown {
  const parts = path.toLowerCase().split('.');
  let cur: unknown;
  if (o.kind === 'user') cur = { name: o.user.name, sid: o.user.sid, enabled: o.user.enabled, fullname: o.user.fullName };
  else if (o.kind === 'group' || o.kind === 'member') cur = { name: o.name };
  else if (o.kind === 'profile') cur = { sid: o.profile.sid, localpath: o.profile.localPath, loaded: o.profile.loaded };
  else cur = o.props;
  for (const part of parts) {
    if (cur === null || typeof cur !== 'object') return undefined;
    const entry = Object.entries(cur as Record<string, unknown>).find(([k]) => k.toLowerCase() === part);
    if (!entry) return undefined;
    cur = entry[1];
  }
  return cur;
}

/** The lookups whose result a condition, an assignment or a foreach may use. */
const GET_CMDLETS = new Set(['get-localuser', 'get-localgroup', 'get-localgroupmember', 'get-ciminstance', 'invoke-cimmethod', 'get-scheduledtask']);

/**
 * Parses one cmdlet call. With `scope` null (the check before the script runs) variables are not
 * looked up, only their use is checked.
 */
function parseInvocation(stmt: string, scope: ScriptScope | null): Invocation {
  const toks = tokenize(stmt);
  const head = toks[0];
  if (!head || head.t !== 'word') throw new Unsupported(stmt);
  let end = toks.length;
  let outNull = false;
  const pipeAt = toks.findIndex((t) => t.t === 'pipe');
  if (pipeAt >= 0) {
    const rest = toks.slice(pipeAt + 1);
    if (rest.length !== 1 || rest[0]!.t !== 'word' || rest[0]!.v.toLowerCase() !== 'out-null') throw new Unsupported(stmt);
    outNull = true;
    end = pipeAt;
  }
  const name = head.v.toLowerCase();
  const spec = PARAMS[name];
  if (!spec) throw new Unsupported(stmt);
  const params = new Map<string, Value>();
  const positional: Value[] = [];
  const variable = (t: Extract<Tok, { t: 'var' }>): Value => {
    const n = t.v.toLowerCase();
    if (!t.prop && (n === 'true' || n === 'false')) return n === 'true';
    if (n === 'null' || n === 'true' || n === 'false' || n === 'input') throw new Unsupported(stmt);
    if (!scope) return '';
    const v = scope.vars.get(n);
    if (v === undefined) throw new Unsupported(`undefined variable $${t.v} in: ${stmt}`, 'variable');
    if (t.prop) {
      if (v === null || typeof v !== 'object') throw new Unsupported(`$${t.v} holds no object (for .${t.prop}) in: ${stmt}`, 'variable');
      const got = propertyOf(v, t.prop);
      if (got === undefined || (got !== null && typeof got === 'object')) throw new Unsupported(`$${t.v}.${t.prop} is not a value of that object in: ${stmt}`, 'variable');
      return got === null ? '' : String(got);
    }
    if (v === null || typeof v === 'object') throw new Unsupported(`$${t.v} is not a string (use $${t.v}.Name) in: ${stmt}`, 'variable');
    return v;
  };
  const value = (t: Tok): Value => {
    if (t.t === 'str') return t.v;
    if (t.t === 'var') return variable(t);
    if (t.t === 'paren') {
      const inner = tokenize(t.v);
      const [cmd, arg, ...flags] = inner;
      if (cmd?.t === 'word' && cmd.v.toLowerCase() === 'convertto-securestring') {
        const flagSet = flags.map((f) => (f.t === 'param' ? f.v.toLowerCase() : '?')).sort().join(',');
        if (!arg || (arg.t !== 'str' && arg.t !== 'var') || flagSet !== 'asplaintext,force') throw new Unsupported(stmt);
        const plain = value(arg);
        if (typeof plain !== 'string') throw new Unsupported(stmt);
        return { secure: plain };
      }
      // String concatenation: ('<text>' + $v.Name [+ ...])
      const concat = inner.length % 2 === 1 && inner.every((x, k) => (k % 2 ? x.t === 'word' && x.v === '+' : x.t === 'str' || x.t === 'var'));
      if (!concat) throw new Unsupported(stmt);
      const parts = inner.filter((_, k) => k % 2 === 0).map(value);
      if (parts.some((x) => typeof x !== 'string')) throw new Unsupported(stmt);
      return parts.join('');
    }
    if (t.t === 'word') return t.v;
    throw new Unsupported(stmt);
  };
  for (let i = 1; i < end; i++) {
    const t = toks[i]!;
    if (t.t !== 'param') {
      positional.push(value(t));
      continue;
    }
    const p = t.v.toLowerCase();
    if (p === 'erroraction') {
      const v = toks[++i];
      if (v?.t !== 'word' || !['stop', 'continue', 'silentlycontinue'].includes(v.v.toLowerCase())) throw new Unsupported(stmt);
      params.set('erroraction', v.v.toLowerCase());
      continue;
    }
    const kind = spec[p];
    if (!kind) throw new Unsupported(stmt);
    if (kind === 'object') {
      const v = toks[++i];
      if (v?.t !== 'var' || v.prop) throw new Unsupported(stmt);
      if (!scope) {
        params.set(p, { obj: { kind: 'group', name: '' } });
        continue;
      }
      const o = scope.vars.get(v.v.toLowerCase());
      if (o === undefined) throw new Unsupported(`undefined variable $${v.v} in: ${stmt}`, 'variable');
      if (o === null || typeof o !== 'object') throw new Unsupported(`$${v.v} holds no object in: ${stmt}`, 'variable');
      params.set(p, { obj: o });
      continue;
    }
    if (kind === 'switch') {
      params.set(p, true);
      continue;
    }
    const next = toks[++i];
    if (!next || next.t === 'param' || next.t === 'pipe') throw new Unsupported(stmt);
    const v = value(next);
    if (kind === 'string' && typeof v !== 'string') throw new Unsupported(stmt);
    if (kind === 'secure' && (typeof v !== 'object' || !('secure' in v))) throw new Unsupported(stmt);
    if (kind === 'bool' && typeof v !== 'boolean') throw new Unsupported(stmt);
    if (kind === 'int' && (typeof v !== 'string' || !/^\d+$/.test(v) || next.t !== 'word')) throw new Unsupported(stmt);
    params.set(p, v);
  }
  if (name === 'get-ciminstance') {
    // Checked here, before anything runs: only the user-profile lookup by SID is understood.
    const cls = params.get('classname');
    const filter = params.get('filter');
    const processes = typeof cls === 'string' && cls.toLowerCase() === 'win32_process' && filter === undefined;
    if (!processes && (typeof cls !== 'string' || cls.toLowerCase() !== 'win32_userprofile' || typeof filter !== 'string' || !/^SID = '[^']*'$/.test(filter))) {
      throw new Unsupported(`Get-CimInstance other than -ClassName Win32_Process, or Win32_UserProfile -Filter "SID = '<sid>'", in: ${stmt}`);
    }
  }
  return { name, params, positional, outNull };
}

// --- blocks ---------------------------------------------------------------------------------
// One header per line (`if (...) {`, `try {`, `catch [...] {`, `foreach (...) {`) and `}` alone on
// its line; no else/elseif, no one-line blocks. The whole script is checked before it runs.

/** An operand of -eq/-ne: a variable (with a property path), a single-quoted string or an integer. */
type Operand = { var: string; prop?: string } | { lit: string };
type Cond =
  | { k: 'cmp'; any: Array<{ ne: boolean; left: Operand; right: Operand }> } //  <a> -eq|-ne <b> [-or ...]
  | { k: 'call'; ne: boolean; call: string } //  $null -eq|-ne (<Get-Local* call>)
  | { k: 'null-var'; ne: boolean; name: string } //  $null -eq|-ne $v
  | { k: 'var'; name: string }; //  $v

type Block = ScriptNode[];
type ScriptNode =
  | { k: 'stmt'; stmt: string }
  | { k: 'if'; cond: Cond; body: Block }
  | { k: 'try'; body: Block; catchType: string; handler: Block }
  | { k: 'foreach'; name: string; source: string; body: Block };

const IF_RE = /^if\s*\((.*)\)\s*\{$/is;
const TRY_RE = /^try\s*\{$/i;
const CATCH_RE = /^catch\s*\[\s*(Microsoft\.PowerShell\.Commands\.(?:MemberExistsException|UserNotFoundException))\s*\]\s*\{$/i;
const FOREACH_RE = /^foreach\s*\(\s*\$([A-Za-z_][A-Za-z0-9_]*)\s+in\s+(.+)\)\s*\{$/is;
const PREF_RE = /^\$(ProgressPreference|ErrorActionPreference)\s*=\s*'(\w+)'$/i;
const EXIT_RE = /^exit(?:\s+(-?\d+))?$/i;
const ASSIGN_RE = /^\$([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+)$/s;
const RESERVED_VARS = new Set(['null', 'true', 'false', 'input', 'hostflowstdin', 'erroractionpreference', 'progresspreference', 'lastexitcode']);

function parsePreference(stmt: string): { name: string; value: string } | null {
  const m = PREF_RE.exec(stmt);
  if (!m) return null;
  const name = m[1]!.toLowerCase();
  const value = m[2]!.toLowerCase();
  if (name === 'erroractionpreference' && !['stop', 'continue', 'silentlycontinue'].includes(value)) throw new Unsupported(stmt);
  return { name, value };
}

/** `$v = $true | $false | '<text>' | ('<text>' + $v.Prop + $env:COMPUTERNAME ...) | <lookup call>` */
function parseAssignment(stmt: string): { name: string; literal?: boolean; text?: string; call?: string } | null {
  const m = ASSIGN_RE.exec(stmt);
  if (!m) return null;
  const name = m[1]!.toLowerCase();
  if (RESERVED_VARS.has(name)) throw new Unsupported(stmt, 'variable');
  const rhs = m[2]!.trim();
  if (/^\$(true|false)$/i.test(rhs)) return { name, literal: rhs.toLowerCase() === '$true' };
  if (isQuote(rhs[0]) || rhs.startsWith('(')) {
    // A string or a concatenation: evaluated as Write-Output's argument would be.
    parseInvocation(`Write-Output ${rhs}`, null);
    return { name, text: rhs };
  }
  checkLookup(rhs, 'variable', stmt);
  return { name, call: rhs };
}

/** A Get-LocalUser / Get-LocalGroup / Get-LocalGroupMember call, as used in conditions, assignments and foreach. */
function checkLookup(call: string, what: 'condition' | 'block' | 'variable', context: string): void {
  let inv: Invocation;
  try {
    inv = parseInvocation(call, null);
  } catch {
    throw new Unsupported(context, what);
  }
  if (!GET_CMDLETS.has(inv.name) || inv.outNull || inv.positional.length) throw new Unsupported(context, what);
}

const COND_RESERVED = new Set(['null', 'true', 'false', 'input']);

function parseOperand(toks: Tok[], c: string): Operand {
  const [t, ...rest] = toks;
  if (!t || rest.length) throw new Unsupported(c, 'condition');
  if (t.t === 'str') return { lit: t.v };
  if (t.t === 'word' && /^-?\d+$/.test(t.v)) return { lit: t.v };
  if (t.t === 'var' && !COND_RESERVED.has(t.v.toLowerCase())) return { var: t.v.toLowerCase(), ...(t.prop ? { prop: t.prop } : {}) };
  throw new Unsupported(c, 'condition');
}

/** `<a> -eq|-ne <b>`, several joined by `-or`; null when `c` is not of that form. */
function parseComparison(c: string): Cond | null {
  if (/^\$null\s/i.test(c)) return null;
  let toks: Tok[];
  try {
    toks = tokenize(c);
  } catch {
    return null;
  }
  if (!toks.some((t) => t.t === 'param' && /^(eq|ne)$/i.test(t.v))) return null;
  const groups: Tok[][] = [[]];
  for (const t of toks) {
    if (t.t === 'param' && t.v.toLowerCase() === 'or') groups.push([]);
    else groups[groups.length - 1]!.push(t);
  }
  return {
    k: 'cmp',
    any: groups.map((g) => {
      const at = g.findIndex((t) => t.t === 'param' && /^(eq|ne)$/i.test(t.v));
      if (at < 0) throw new Unsupported(c, 'condition');
      return { ne: (g[at] as { v: string }).v.toLowerCase() === 'ne', left: parseOperand(g.slice(0, at), c), right: parseOperand(g.slice(at + 1), c) };
    }),
  };
}

function parseCondition(c: string): Cond {
  const cmp = parseComparison(c);
  if (cmp) return cmp;
  let m = /^\$null\s+-(eq|ne)\s+\((.*)\)$/is.exec(c);
  if (m) {
    checkLookup(m[2]!.trim(), 'condition', c);
    return { k: 'call', ne: m[1]!.toLowerCase() === 'ne', call: m[2]!.trim() };
  }
  m = /^\$null\s+-(eq|ne)\s+\$([A-Za-z_][A-Za-z0-9_]*)$/i.exec(c);
  if (m && !COND_RESERVED.has(m[2]!.toLowerCase())) return { k: 'null-var', ne: m[1]!.toLowerCase() === 'ne', name: m[2]!.toLowerCase() };
  m = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(c);
  if (m && !COND_RESERVED.has(m[1]!.toLowerCase())) return { k: 'var', name: m[1]!.toLowerCase() };
  throw new Unsupported(c, 'condition');
}

/** Checks a simple statement without running it (so nothing runs when any part is outside the subset). */
const QUSER_RE = /^quser(?:\.exe)?$/i;
const LOGOFF_RE = /^logoff(?:\.exe)?\s+(\d+)$/i;
/** net.exe's `user <name> /logonpasswordchg:yes|no` or `/active:yes|no` (its "completed successfully" line dropped with Out-Null or not). */
const NET_USER_RE = /^net(?:\.exe)?\s+user\s+('(?:[^']|'')*')\s+\/(logonpasswordchg|active):(yes|no)(\s*\|\s*Out-Null)?$/i;

function checkStatement(stmt: string): void {
  if (parseQuery(stmt) || QUSER_RE.test(stmt) || LOGOFF_RE.test(stmt) || NET_USER_RE.test(stmt)) return;
  if (stmt === STDIN_PRELUDE || parsePreference(stmt) || EXIT_RE.test(stmt) || parseAssignment(stmt)) return;
  parseInvocation(stmt, null);
}

/** Statements → block tree; throws Unsupported for anything outside the subset. */
export function compileScript(statements: string[]): Block {
  let i = 0;
  const block = (nested: boolean): Block => {
    const nodes: Block = [];
    for (;;) {
      const s = statements[i];
      if (s === undefined) {
        if (nested) throw new Unsupported('a block is not closed with }', 'block');
        return nodes;
      }
      i++;
      if (s === '}') {
        if (!nested) throw new Unsupported('} without an open block', 'block');
        return nodes;
      }
      if (s.startsWith('#')) continue;
      let m: RegExpExecArray | null;
      if ((m = IF_RE.exec(s))) {
        nodes.push({ k: 'if', cond: parseCondition(m[1]!.trim()), body: block(true) });
      } else if (TRY_RE.test(s)) {
        const body = block(true);
        const c = CATCH_RE.exec(statements[i] ?? '');
        if (!c) throw new Unsupported(`try without catch [Microsoft.PowerShell.Commands.MemberExistsException|UserNotFoundException] { (found: ${statements[i] ?? 'end of script'})`, 'block');
        i++;
        nodes.push({ k: 'try', body, catchType: c[1]!, handler: block(true) });
      } else if ((m = FOREACH_RE.exec(s))) {
        const source = m[2]!.trim();
        checkLookup(source, 'block', s);
        nodes.push({ k: 'foreach', name: m[1]!.toLowerCase(), source, body: block(true) });
      } else if (/[{}]/.test(outsideQuotes(s))) {
        throw new Unsupported(s, 'block');
      } else {
        checkStatement(s);
        nodes.push({ k: 'stmt', stmt: s });
      }
    }
  };
  return block(false);
}

/** Windows' default complexity rule: 3 of 4 character classes, not containing the account name. */
function passwordOk(name: string, pw: string, minLength: number): boolean {
  if (pw.length < minLength) return false;
  const classes = [/[A-Z]/, /[a-z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((r) => r.test(pw)).length;
  if (classes < 3) return false;
  if (name.length >= 3 && pw.toLowerCase().includes(name.toLowerCase())) return false;
  return true;
}

/** 'get-localuser' → 'Get-LocalUser' (for error records). */
const cmdletName = (n: string) => n.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase()).replace(/^(\w+-)Local(\w)/i, (_m, a: string, b: string) => `${a}Local${b.toUpperCase()}`);

const INVALID_NAME = /["/\\[\]:;|=,+*?<>@]/;

// ------------------------------------------------------------------------------------------

export async function startWsManHost(opts: WsManHostOptions = {}): Promise<WsManHost> {
  const adminUser = opts.adminUser ?? 'Administrator';
  const adminPassword = opts.adminPassword ?? `Adm!${randomBytes(9).toString('base64url')}`;
  const computerName = opts.computerName ?? 'WIN-STANDIN';
  const enforceRemoteGroups = opts.enforceRemoteGroups ?? true;
  const minPasswordLength = opts.minPasswordLength ?? 8;
  const useHttps = opts.https ?? false;
  const hardware = opts.hardware ?? defaultHardware(computerName);

  const users = new Map<string, LocalUser>();
  /** Clear-text passwords, for the pyspnego acceptor's account file only (it hashes them itself). */
  const clearPasswords = new Map<string, string>();
  const principals: string[] = [];
  const groups = new Map<string, Set<string>>(DEFAULT_GROUPS.map((g) => [g, new Set<string>()]));
  const commands: WsManCommandRecord[] = [];
  const requests: WsManRequestRecord[] = [];
  const shells = new Map<string, Shell>();
  const profiles = new Map<string, UserProfile>();
  const faults = new Map<string, string>();
  const refusals = new Map<string, number>();
  const refused = (name: string) => {
    const n = refusals.get(name.toLowerCase()) ?? 0;
    if (n <= 0) return false;
    refusals.set(name.toLowerCase(), n - 1);
    return true;
  };
  const machineSid = `S-1-5-21-${[0, 0, 0].map(() => randomBytes(4).readUInt32BE(0)).join('-')}`;
  let nextRid = 1000;

  const findGroup = (g: string) => [...groups.keys()].find((k) => k.toLowerCase() === g.toLowerCase());
  const getUser = (n: string) => users.get(n.toLowerCase());
  /** `WIN-STANDIN\bob` → `bob` (a member given with the computer name). */
  const withoutComputer = (n: string) => n.replace(new RegExp(`^${computerName}\\\\`, 'i'), '');
  const addToGroup = (u: LocalUser, g: string) => {
    groups.get(g)!.add(u.name);
    u.groups.add(g);
  };
  let accountsFile: string | undefined;
  /** Writes the enabled accounts for the acceptor (local ones also as <computer>\\name). */
  const syncAccounts = () => {
    if (!accountsFile) return;
    const list: Array<{ account: string; password: string }> = [];
    for (const u of users.values()) {
      const pw = clearPasswords.get(u.name.toLowerCase());
      if (!u.enabled || u.passwordExpired || pw === undefined) continue;
      list.push({ account: u.name, password: pw });
      if (!/[\\@]/.test(u.name)) list.push({ account: `${computerName}\\${u.name}`, password: pw });
    }
    writeFileSync(`${accountsFile}.tmp`, JSON.stringify(list), { mode: 0o600 });
    renameSync(`${accountsFile}.tmp`, accountsFile);
  };
  const addUser = (name: string, password: string, userGroups: string[] = []): LocalUser => {
    const u: LocalUser = {
      name,
      fullName: '',
      description: '',
      enabled: true,
      passwordHash: hashPassword(password),
      passwordNeverExpires: false,
      passwordExpired: false,
      groups: new Set(),
      sid: `${machineSid}-${name.toLowerCase() === adminUser.toLowerCase() ? 500 : nextRid++}`,
    };
    users.set(name.toLowerCase(), u);
    clearPasswords.set(name.toLowerCase(), password);
    syncAccounts();
    for (const g of ['Users', ...userGroups]) addToGroup(u, findGroup(g) ?? (groups.set(g, new Set()), g));
    return u;
  };
  addUser(adminUser, adminPassword, ['Administrators']);
  const sessions = new Map<number, { id: number; user: string; name: string; state: 'Active' | 'Disc' }>();
  const processes = new Map<number, StandInProcess>();
  let nextPid = 1000;
  const startProcess = (name: string, exe: string, o: { sessionId?: number } = {}): number => {
    const u = getUser(name);
    if (!u) throw new Error(`startProcess: no user ${name}`);
    const pid = (nextPid += 4);
    processes.set(pid, { pid, name: exe, sid: u.sid, sessionId: o.sessionId ?? 0 });
    return pid;
  };
  const tasks = new Map<string, StandInTask>();
  const registerTask = (userId: string, taskName: string, taskPath = '\\'): StandInTask => {
    const t = { taskName, taskPath, userId };
    tasks.set(`${taskPath}${taskName}`.toLowerCase(), t);
    return t;
  };
  let nextSession = 2;
  const logon = (name: string, o: { disconnected?: boolean } = {}): number => {
    const u = getUser(name);
    if (!u) throw new Error(`logon: no user ${name}`);
    const id = nextSession++;
    sessions.set(id, { id, user: u.name, name: o.disconnected ? '' : `rdp-tcp#${id}`, state: o.disconnected ? 'Disc' : 'Active' });
    createProfile(u.name, { loaded: true });
    // What an interactive logon starts in the session (ends with it at logoff).
    for (const exe of ['explorer.exe', 'rdpclip.exe']) startProcess(u.name, exe, { sessionId: id });
    return id;
  };
  /** An RDP logon as Windows admits it: right password, enabled, password not expired, in Remote Desktop Users or Administrators. */
  const rdpLogon = (name: string, password: string): number => {
    const u = getUser(name);
    if (!u || !checkPassword(name, password)) throw new Error('The logon attempt failed');
    if (![...u.groups].some((g) => ['remote desktop users', 'administrators'].includes(g.toLowerCase()))) {
      throw new Error('The connection was denied because the user account is not authorized for remote login');
    }
    return logon(name);
  };
  /** query.exe's layout: fixed columns, '>' marks the caller's own session (never one here). */
  const quserTable = () =>
    [' USERNAME              SESSIONNAME        ID  STATE   IDLE TIME  LOGON TIME', ...[...sessions.values()].map((x) => ` ${x.user.toLowerCase().padEnd(22)}${x.name.padEnd(19)}${String(x.id).padStart(2)}  ${x.state.padEnd(6)}  ${x.state === 'Disc' ? '      5' : '      .'}  12/1/2026 9:00 AM`)].join('\r\n') + '\r\n';
  const createProfile = (name: string, o: { loaded?: boolean } = {}): UserProfile => {
    const u = getUser(name);
    if (!u) throw new Error(`createProfile: no user ${name}`);
    const prof: UserProfile = profiles.get(u.sid) ?? { sid: u.sid, localPath: `C:\\Users\\${u.name}`, loaded: false };
    prof.loaded = o.loaded ?? false;
    profiles.set(u.sid, prof);
    return prof;
  };
  const checkPassword = (name: string, password: string) => {
    const u = getUser(name);
    return !!u && u.enabled && !u.passwordExpired && passwordMatches(u.passwordHash, password);
  };

  // --- interpreter -------------------------------------------------------------------------

  async function interpret(cmd: RunningCommand, shell: Shell): Promise<void> {
    const utf8 = shell.codepage === 65001;
    const emit = (stream: 'stdout' | 'stderr', s: string) => {
      const data = utf8 ? Buffer.from(s, 'utf8') : Buffer.from(s.replace(/[^\x00-\x7f]/g, '?'), 'latin1');
      cmd.out.push({ stream, data });
      notify(cmd);
    };
    let clixmlStarted = false;
    const errorRecord = (cmdlet: string, message: string) => {
      if (!clixmlStarted) {
        emit('stderr', '#< CLIXML\r\n');
        clixmlStarted = true;
      }
      const line = `${cmdlet} : ${message}\r\n`.replace(/[&<>"']/g, (c) => esc(c)).replace(/\r/g, '_x000D_').replace(/\n/g, '_x000A_');
      emit('stderr', `<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><S S="Error">${line}</S></Objs>`);
    };
    const sleep = (ms: number) =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, ms);
        cmd.abort.signal.addEventListener('abort', () => (clearTimeout(t), reject(new ScriptExit(-1))), { once: true });
      });
    const readStdin = () =>
      new Promise<string>((resolve, reject) => {
        if (cmd.consoleStdin) return resolve(''); // a console, not a pipe: $input is empty
        const check = () => {
          if (!cmd.stdinEnded) return;
          cmd.waiters.delete(check);
          resolve(Buffer.concat(cmd.stdin).toString('utf8').split(/\r?\n/).filter((l, i, a) => i < a.length - 1 || l !== '').join('\n'));
        };
        cmd.waiters.add(check);
        cmd.abort.signal.addEventListener('abort', () => reject(new ScriptExit(-1)), { once: true });
        check();
      });
    const render = (o: string | PsObj): string => {
      if (typeof o === 'string') return o;
      if (o.kind === 'user') {
        const u = o.user;
        return JSON.stringify({ Name: u.name, Enabled: u.enabled, FullName: u.fullName, Description: u.description, PasswordNeverExpires: u.passwordNeverExpires });
      }
      if (o.kind === 'group') return JSON.stringify({ Name: o.name, Description: '' });
      if (o.kind === 'profile') return JSON.stringify({ SID: o.profile.sid, LocalPath: o.profile.localPath, Loaded: o.profile.loaded });
      if (o.kind === 'cim') return JSON.stringify(o.props);
      return JSON.stringify({ Name: o.name, ObjectClass: 'User', PrincipalSource: 'Local' });
    };

    const scope: ScriptScope = { vars: new Map<string, VarValue>([['env:computername', computerName]]), errorActionStop: false };
    /** `$?` of the last command: without `exit`, the script's exit code is 1 when it is false. */
    let lastOk = true;
    try {
      const m = /(?:^|\s)-(?:EncodedCommand|enc|e|ec)\s+([A-Za-z0-9+/=]+)/i.exec(cmd.record.commandLine);
      const exe = /^"?(?:[A-Za-z]:\\[^"]*\\)?(powershell(?:\.exe)?)"?\s/i.exec(cmd.record.commandLine);
      if (!exe || !m) {
        emit('stderr', `unsupported cmdlet in stand-in: command line is not powershell.exe -EncodedCommand: ${cmd.record.commandLine.slice(0, 200)}\r\n`);
        throw new ScriptExit(1);
      }
      if (cmd.record.options.WINRS_SKIP_CMD_SHELL !== 'TRUE' && cmd.record.commandLine.length > 8191) {
        emit('stderr', 'The command line is too long.\r\n'); // cmd.exe's limit
        throw new ScriptExit(1);
      }
      if (cmd.record.commandLine.length > 32767) throw new ScriptExit(1);
      const script = Buffer.from(m[1]!, 'base64').toString('utf16le');
      cmd.record.script = script;
      try {
        // Checked as a whole first: a script with anything outside the subset changes nothing.
        await runBlock(compileScript(splitStatements(script)));
      } catch (err) {
        if (err instanceof Unsupported) {
          emit('stderr', `${err.message}\r\n`);
          throw new ScriptExit(1);
        }
        if (err instanceof PsError) {
          errorRecord(err.cmdlet, err.message);
          throw new ScriptExit(1);
        }
        throw err;
      }
      cmd.exitCode = lastOk ? 0 : 1;
    } catch (err) {
      if (err instanceof ScriptExit) cmd.exitCode = err.code;
      else {
        emit('stderr', `stand-in internal error: ${(err as Error).stack ?? String(err)}\r\n`);
        cmd.exitCode = 1;
      }
    }
    cmd.record.exitCode = cmd.exitCode;
    if (handle_.onCommandDone) await handle_.onCommandDone(cmd.record);
    cmd.done = true;
    notify(cmd);

    async function runBlock(nodes: Block): Promise<void> {
      for (const node of nodes) {
        switch (node.k) {
          case 'stmt':
            lastOk = await runStatement(node.stmt);
            break;
          case 'if':
            if (await condition(node.cond)) await runBlock(node.body);
            break;
          case 'try':
            try {
              await runBlock(node.body);
            } catch (err) {
              if (!(err instanceof PsError) || err.exceptionType.toLowerCase() !== node.catchType.toLowerCase()) throw err;
              lastOk = true;
              await runBlock(node.handler);
            }
            break;
          case 'foreach': {
            const r = await lookup(node.source);
            for (const o of r.objs) {
              scope.vars.set(node.name, o);
              await runBlock(node.body);
            }
            break;
          }
        }
      }
    }

    async function condition(c: Cond): Promise<boolean> {
      if (c.k === 'cmp') {
        const val = (o: Operand): string | null => {
          if ('lit' in o) return o.lit;
          const v = scope.vars.get(o.var) ?? null;
          if (o.prop === undefined) return v === null ? null : typeof v === 'object' ? JSON.stringify(render(v)) : String(v);
          if (v === null || typeof v !== 'object') return null; // $null.Prop is $null
          const got = propertyOf(v, o.prop);
          return got === undefined || got === null ? null : String(got);
        };
        // PowerShell compares strings case-insensitively; $null equals only $null.
        const eq = (a: string | null, b: string | null) => (a === null || b === null ? a === b : a.toLowerCase() === b.toLowerCase());
        return c.any.some((x) => eq(val(x.left), val(x.right)) !== x.ne);
      }
      if (c.k === 'call') {
        const r = await lookup(c.call);
        const isNull = r.objs.length === 0;
        return c.ne ? !isNull : isNull;
      }
      const v = scope.vars.get(c.name) ?? null; // an unset variable is $null, as in PowerShell
      if (c.k === 'null-var') return c.ne ? v !== null : v === null;
      return v !== null && v !== false && v !== '';
    }

    /** A Get-Local* call whose output is used, not printed. */
    async function lookup(stmt: string): Promise<{ ok: boolean; objs: Array<string | PsObj> }> {
      const inv = parseInvocation(stmt, scope);
      const objs: Array<string | PsObj> = [];
      lastOk = await invoke(inv, stmt, objs);
      return { ok: lastOk, objs };
    }

    async function runStatement(stmt: string): Promise<boolean> {
      // Native programs: their stderr passes through, a non-zero exit sets $? to false (no error record).
      if (QUSER_RE.test(stmt)) {
        if (!sessions.size) {
          emit('stderr', 'No User exists for *\r\n');
          scope.vars.set('lastexitcode', '1');
          return false;
        }
        emit('stdout', quserTable());
        scope.vars.set('lastexitcode', '0');
        return true;
      }
      const lo = LOGOFF_RE.exec(stmt);
      if (lo) {
        const sess = sessions.get(Number(lo[1]));
        if (!sess) {
          emit('stderr', `Could not logoff session ID ${lo[1]}, Error code 2\r\nError [2]:The system cannot find the file specified.\r\n`);
          return false;
        }
        sessions.delete(sess.id);
        // Logoff ends the session's processes (not those in other sessions, e.g. session 0).
        for (const [pid, proc] of processes) if (proc.sessionId === sess.id) processes.delete(pid);
        const u = getUser(sess.user);
        if (u && ![...sessions.values()].some((x) => x.user === sess.user)) {
          const prof = profiles.get(u.sid);
          if (prof) prof.loaded = false;
        }
        return true;
      }
      const net = NET_USER_RE.exec(stmt);
      if (net) {
        const [n] = tokenize(net[1]!);
        const u = getUser((n as { v: string }).v);
        if (!u) {
          emit('stderr', 'The user name could not be found.\r\n\r\nMore help is available by typing NET HELPMSG 2221.\r\n\r\n');
          scope.vars.set('lastexitcode', '2');
          return false;
        }
        if (net[2]!.toLowerCase() === 'active') u.enabled = net[3]!.toLowerCase() === 'yes';
        else u.passwordExpired = net[3]!.toLowerCase() === 'yes';
        syncAccounts();
        if (!net[4]) emit('stdout', 'The command completed successfully.\r\n\r\n');
        scope.vars.set('lastexitcode', '0');
        return true;
      }
      const query = parseQuery(stmt);
      if (query) {
        const cmdlet = query.cls ? 'get-ciminstance' : 'get-itemproperty';
        const fault = faults.get(cmdlet);
        if (fault !== undefined) {
          if (scope.errorActionStop && !/silentlycontinue/i.test(stmt)) throw new PsError(cmdletName(cmdlet), fault, 'Microsoft.Management.Infrastructure.CimException');
          errorRecord(cmdletName(cmdlet), fault);
          return false;
        }
        const rows = (query.cls ? hardware.classes[query.cls] : hardware.displayClassKeys) ?? [];
        const picked = rows.map((r) => Object.fromEntries(query.props.map((k) => [k, r[k] ?? null])));
        if (picked.length) emit('stdout', `${JSON.stringify(picked.length === 1 ? picked[0] : picked)}\r\n`);
        return true;
      }
      if (stmt === STDIN_PRELUDE) {
        scope.vars.set('hostflowstdin', await readStdin());
        return true;
      }
      const pref = parsePreference(stmt);
      if (pref) {
        if (pref.name === 'erroractionpreference') scope.errorActionStop = pref.value === 'stop';
        return true;
      }
      const exit = EXIT_RE.exec(stmt);
      if (exit) throw new ScriptExit(exit[1] ? Number(exit[1]) : lastOk ? 0 : 1);
      const assign = parseAssignment(stmt);
      if (assign) {
        if (assign.literal !== undefined) {
          scope.vars.set(assign.name, assign.literal);
          return true;
        }
        if (assign.text !== undefined) {
          const inv = parseInvocation(`Write-Output ${assign.text}`, scope);
          scope.vars.set(assign.name, inv.positional[0] as string);
          return true;
        }
        const r = await lookup(assign.call!);
        if (r.objs.length > 1) throw new Unsupported(`assigning more than one object: ${stmt}`, 'variable');
        scope.vars.set(assign.name, r.objs[0] ?? null);
        return r.ok;
      }
      const inv = parseInvocation(stmt, scope);
      const objs: Array<string | PsObj> = [];
      const ok = await invoke(inv, stmt, objs);
      if (!inv.outNull) for (const o of objs) emit('stdout', `${render(o)}\r\n`);
      return ok;
    }

    /** Runs one cmdlet; its output objects go to `out`. False when it wrote a (non-terminating) error. */
    async function invoke(inv: Invocation, stmt: string, out: Array<string | PsObj>): Promise<boolean> {
      const p = (k: string) => inv.params.get(k);
      const str = (k: string) => p(k) as string | undefined;
      const ea = str('erroraction');
      const fail = (cmdlet: string, message: string, exception: string): false => {
        const stop = ea === 'stop' || (ea === undefined && scope.errorActionStop);
        if (stop) throw new PsError(cmdlet, message, `Microsoft.PowerShell.Commands.${exception}`);
        if (ea !== 'silentlycontinue') errorRecord(cmdlet, message);
        return false;
      };
      const needUser = (): LocalUser | undefined => {
        const n = str('name');
        if (n === undefined) throw new Unsupported(stmt);
        return getUser(n);
      };
      const INVALID_PASSWORD =
        'Unable to update the password. The value provided for the new password does not meet the length, complexity, or history requirements of the domain.';

      const fault = faults.get(inv.name);
      if (fault !== undefined) return fail(cmdletName(inv.name), fault, 'UnauthorizedAccessException');
      switch (inv.name) {
        case 'get-ciminstance': {
          if (str('classname')?.toLowerCase() === 'win32_process') {
            for (const proc of [{ pid: 0, name: 'System Idle Process', sid: null, sessionId: 0 }, { pid: 4, name: 'System', sid: 'S-1-5-18', sessionId: 0 }, ...processes.values()]) {
              out.push({ kind: 'cim', cls: 'Win32_Process', props: { ProcessId: proc.pid, Name: proc.name, SessionId: proc.sessionId } });
            }
            return true;
          }
          if (str('classname')?.toLowerCase() !== 'win32_userprofile') throw new Unsupported(stmt);
          const m = /^SID = '([^']*)'$/.exec(str('filter') ?? '');
          if (!m) throw new Unsupported(`filter other than SID = '<sid>' in: ${stmt}`);
          const prof = profiles.get(m[1]!);
          if (prof) out.push({ kind: 'profile', profile: prof });
          return true;
        }
        case 'remove-ciminstance': {
          const o = (p('inputobject') as { obj: PsObj } | undefined)?.obj;
          if (!o || o.kind !== 'profile') throw new Unsupported(stmt);
          if (o.profile.loaded) {
            return fail('Remove-CimInstance', 'The process cannot access the file because it is being used by another process.', 'CimException');
          }
          profiles.delete(o.profile.sid);
          return true;
        }
        case 'invoke-cimmethod': {
          const o = (p('inputobject') as { obj: PsObj } | undefined)?.obj;
          if (!o || o.kind !== 'cim' || o.cls !== 'Win32_Process' || str('methodname')?.toLowerCase() !== 'getownersid') throw new Unsupported(stmt);
          const pid = Number(o.props.ProcessId);
          if (pid === 0) {
            out.push({ kind: 'cim', cls: '__PARAMETERS', props: { ReturnValue: 2, Sid: null } }); // the Idle process has no owner
            return true;
          }
          if (pid === 4) {
            out.push({ kind: 'cim', cls: '__PARAMETERS', props: { ReturnValue: 0, Sid: 'S-1-5-18' } });
            return true;
          }
          const proc = processes.get(pid);
          if (!proc) return fail('Invoke-CimMethod', 'Not found', 'CimException'); // it exited since the listing
          out.push({ kind: 'cim', cls: '__PARAMETERS', props: { ReturnValue: 0, Sid: proc.sid } });
          return true;
        }
        case 'stop-process': {
          const id = str('id');
          if (id === undefined || !/^\d+$/.test(id)) throw new Unsupported(stmt);
          const proc = processes.get(Number(id));
          if (!proc) return fail('Stop-Process', `Cannot find a process with the process identifier ${id}.`, 'ProcessCommandException');
          if (p('force') !== true && proc.sid !== getUser(shell.owner)?.sid) {
            return fail('Stop-Process', `Cannot stop process "${proc.name} (${id})" because of the following error: Access is denied`, 'ProcessCommandException');
          }
          processes.delete(proc.pid);
          return true;
        }
        case 'get-scheduledtask': {
          for (const t of tasks.values()) out.push({ kind: 'cim', cls: 'MSFT_ScheduledTask', props: { TaskName: t.taskName, TaskPath: t.taskPath, State: 'Ready', Principal: { UserId: t.userId } } });
          return true;
        }
        case 'unregister-scheduledtask': {
          const name = str('taskname');
          const path = str('taskpath') ?? '\\';
          if (name === undefined) throw new Unsupported(stmt);
          if (p('confirm:$false') !== true) throw new Unsupported(`Unregister-ScheduledTask without -Confirm:$false (it would prompt) in: ${stmt}`);
          const key = `${path}${name}`.toLowerCase();
          if (!tasks.has(key)) return fail('Unregister-ScheduledTask', `No MSFT_ScheduledTask objects found with property 'TaskName' equal to '${name}'.`, 'CimJobException');
          tasks.delete(key);
          return true;
        }
        case 'write-output': {
          if (inv.positional.length !== 1 || typeof inv.positional[0] !== 'string') throw new Unsupported(stmt);
          out.push(inv.positional[0]);
          return true;
        }
        case 'write-error': {
          const msg = str('message') ?? inv.positional[0];
          if (typeof msg !== 'string') throw new Unsupported(stmt);
          return fail('Write-Error', msg, 'WriteErrorException');
        }
        case 'start-sleep': {
          const s = str('seconds') ?? (typeof inv.positional[0] === 'string' ? inv.positional[0] : undefined);
          const ms = str('milliseconds');
          if (s === undefined && ms === undefined) throw new Unsupported(stmt);
          await sleep(ms !== undefined ? Number(ms) : Number(s) * 1000);
          return true;
        }
        case 'get-localuser': {
          const u = needUser();
          if (!u) return fail('Get-LocalUser', `User ${str('name')} was not found.`, 'UserNotFoundException');
          out.push({ kind: 'user', user: u });
          return true;
        }
        case 'get-localgroup': {
          const g = str('name');
          if (g === undefined) {
            for (const name of groups.keys()) out.push({ kind: 'group', name });
            return true;
          }
          const group = findGroup(g);
          if (!group) return fail('Get-LocalGroup', `Group ${g} was not found.`, 'GroupNotFoundException');
          out.push({ kind: 'group', name: group });
          return true;
        }
        case 'get-localgroupmember': {
          const g = str('group');
          if (g === undefined) throw new Unsupported(stmt);
          const group = findGroup(g);
          if (!group) return fail('Get-LocalGroupMember', `Group ${g} was not found.`, 'GroupNotFoundException');
          const members = groups.get(group)!;
          const m = str('member');
          if (m === undefined) {
            for (const member of members) out.push({ kind: 'member', name: `${computerName}\\${member}` });
            return true;
          }
          const u = getUser(withoutComputer(m));
          if (!u || !members.has(u.name)) return fail('Get-LocalGroupMember', `Principal ${m} was not found.`, 'PrincipalNotFoundException');
          out.push({ kind: 'member', name: `${computerName}\\${u.name}` });
          return true;
        }
        case 'new-localuser': {
          const name = str('name');
          const pw = p('password') as { secure: string } | undefined;
          if (name === undefined || !pw) throw new Unsupported(stmt);
          if (getUser(name)) return fail('New-LocalUser', `User ${name} already exists.`, 'UserExistsException');
          if (!name.trim() || name.length > 20 || INVALID_NAME.test(name) || /^\.+$/.test(name)) {
            return fail('New-LocalUser', `The name ${name} is invalid.`, 'InvalidNameException');
          }
          if (!passwordOk(name, pw.secure, minPasswordLength)) return fail('New-LocalUser', INVALID_PASSWORD, 'InvalidPasswordException');
          const u = addUser(name, pw.secure);
          u.fullName = str('fullname') ?? '';
          u.description = str('description') ?? '';
          u.passwordNeverExpires = p('passwordneverexpires') === true;
          out.push({ kind: 'user', user: u });
          return true;
        }
        case 'set-localuser': {
          const u = needUser();
          if (!u) return fail('Set-LocalUser', `User ${str('name')} was not found.`, 'UserNotFoundException');
          const pw = p('password') as { secure: string } | undefined;
          if (pw) {
            if (!passwordOk(u.name, pw.secure, minPasswordLength)) return fail('Set-LocalUser', INVALID_PASSWORD, 'InvalidPasswordException');
            u.passwordHash = hashPassword(pw.secure);
            clearPasswords.set(u.name.toLowerCase(), pw.secure);
          }
          if (str('fullname') !== undefined) u.fullName = str('fullname')!;
          if (str('description') !== undefined) u.description = str('description')!;
          if (p('passwordneverexpires') !== undefined) u.passwordNeverExpires = p('passwordneverexpires') === true;
          return true;
        }
        case 'enable-localuser':
        case 'disable-localuser': {
          const cmdlet = inv.name === 'enable-localuser' ? 'Enable-LocalUser' : 'Disable-LocalUser';
          const u = needUser();
          if (!u) return fail(cmdlet, `User ${str('name')} was not found.`, 'UserNotFoundException');
          u.enabled = inv.name === 'enable-localuser';
          return true;
        }
        case 'remove-localuser': {
          const u = needUser();
          if (!u) return fail('Remove-LocalUser', `User ${str('name')} was not found.`, 'UserNotFoundException');
          users.delete(u.name.toLowerCase());
          for (const members of groups.values()) members.delete(u.name);
          return true;
        }
        case 'add-localgroupmember':
        case 'remove-localgroupmember': {
          const cmdlet = inv.name === 'add-localgroupmember' ? 'Add-LocalGroupMember' : 'Remove-LocalGroupMember';
          const g = str('group');
          const n = str('member');
          if (g === undefined || n === undefined) throw new Unsupported(stmt);
          const group = findGroup(g);
          if (!group) return fail(cmdlet, `Group ${g} was not found.`, 'GroupNotFoundException');
          const u = getUser(withoutComputer(n));
          if (!u) return fail(cmdlet, `Principal ${n} was not found.`, 'PrincipalNotFoundException');
          const members = groups.get(group)!;
          if (inv.name === 'add-localgroupmember') {
            if (members.has(u.name)) return fail(cmdlet, `${computerName}\\${u.name} is already a member of group ${group}.`, 'MemberExistsException');
            addToGroup(u, group);
          } else {
            if (!members.has(u.name)) return fail(cmdlet, `Principal ${n} is not a member of group ${group}.`, 'MemberNotFoundException');
            members.delete(u.name);
            u.groups.delete(group);
          }
          return true;
        }
        default:
          throw new Unsupported(stmt);
      }
    }
  }

  // --- SOAP ----------------------------------------------------------------------------------

  const envelope = (action: string, relatesTo: string, body: string) =>
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<s:Envelope xml:lang="en-US" xmlns:s="${NS_S}" xmlns:a="${NS_A}" xmlns:x="${NS_X}" xmlns:w="${NS_W}" xmlns:rsp="${NS_RSP}">` +
    `<s:Header><a:Action>${action}</a:Action><a:MessageID>uuid:${randomUUID().toUpperCase()}</a:MessageID>` +
    `<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To><a:RelatesTo>${esc(relatesTo)}</a:RelatesTo></s:Header>` +
    `<s:Body>${body}</s:Body></s:Envelope>`;

  class Fault {
    constructor(
      public readonly status: number,
      public readonly code: 'Sender' | 'Receiver',
      public readonly subcode: string,
      public readonly wsmanCode: string,
      public readonly message: string,
    ) {}
    xml(relatesTo: string) {
      return envelope(
        'http://schemas.dmtf.org/wbem/wsman/1/wsman/fault',
        relatesTo,
        `<s:Fault><s:Code><s:Value>s:${this.code}</s:Value><s:Subcode><s:Value>w:${this.subcode}</s:Value></s:Subcode></s:Code>` +
          `<s:Reason><s:Text xml:lang="en-US">${esc(this.message)}</s:Text></s:Reason>` +
          `<s:Detail><f:WSManFault xmlns:f="${NS_F}" Code="${this.wsmanCode}" Machine="${computerName}"><f:Message>${esc(this.message)}</f:Message></f:WSManFault></s:Detail></s:Fault>`,
      );
    }
  }

  const shellOf = (header: Node, user: string): Shell => {
    const sel = ((obj(header.SelectorSet).Selector as unknown[] | undefined) ?? []).map(obj).find((s) => s['@_Name'] === 'ShellId');
    const shell = sel ? shells.get(text(sel)) : undefined;
    if (!shell || shell.owner.toLowerCase() !== user.toLowerCase()) {
      throw new Fault(500, 'Sender', 'InvalidSelectors', '2150858843', `The request for the Windows Remote Shell with ShellId ${sel ? text(sel) : '(none)'} failed because the shell was not found on the server.`);
    }
    return shell;
  };
  const optionsOf = (header: Node): Record<string, string> =>
    Object.fromEntries(((obj(header.OptionSet).Option as unknown[] | undefined) ?? []).map(obj).map((o) => [String(o['@_Name']), text(o)]));
  const commandOf = (shell: Shell, id: string): RunningCommand => {
    const c = shell.commands.get(id);
    if (!c) throw new Fault(500, 'Sender', 'InvalidParameter', '2150858843', `The command ${id} was not found in shell ${shell.id}.`);
    return c;
  };

  async function handleReceive(shell: Shell, header: Node, body: Node): Promise<string> {
    const ds = obj(obj(body.Receive).DesiredStream);
    const c = commandOf(shell, String(ds['@_CommandId'] ?? ''));
    const timeoutS = Number(/PT([\d.]+)S/.exec(text(header.OperationTimeout))?.[1] ?? '60');
    if (!c.out.length && !c.done) {
      const ready = await new Promise<boolean>((resolve) => {
        const w = () => {
          if (!c.out.length && !c.done) return;
          c.waiters.delete(w);
          clearTimeout(t);
          resolve(true);
        };
        const t = setTimeout(() => (c.waiters.delete(w), resolve(false)), timeoutS * 1000);
        c.waiters.add(w);
      });
      if (!ready) {
        throw new Fault(500, 'Receiver', 'TimedOut', '2150858793', 'The WS-Management service cannot complete the operation within the time specified in OperationTimeout.');
      }
    }
    const chunks = c.out.splice(0);
    let xmlStreams = chunks
      .map((ch) => `<rsp:Stream Name="${ch.stream}" CommandId="${c.record.commandId}">${ch.data.toString('base64')}</rsp:Stream>`)
      .join('');
    let state = `<rsp:CommandState CommandId="${c.record.commandId}" State="${NS_RSP}/CommandState/Running"></rsp:CommandState>`;
    if (c.done) {
      xmlStreams +=
        `<rsp:Stream Name="stdout" CommandId="${c.record.commandId}" End="true"></rsp:Stream>` +
        `<rsp:Stream Name="stderr" CommandId="${c.record.commandId}" End="true"></rsp:Stream>`;
      state = `<rsp:CommandState CommandId="${c.record.commandId}" State="${NS_RSP}/CommandState/Done"><rsp:ExitCode>${c.exitCode}</rsp:ExitCode></rsp:CommandState>`;
      c.finished = true;
    }
    return `<rsp:ReceiveResponse>${xmlStreams}${state}</rsp:ReceiveResponse>`;
  }

  async function handle(user: string, xmlText: string): Promise<{ action: string; relatesTo: string; body: string; responseAction: string }> {
    const env = obj(obj(parser.parse(xmlText)).Envelope);
    const header = obj(env.Header);
    const body = obj(env.Body);
    const action = text(header.Action);
    const relatesTo = text(header.MessageID);
    const resource = text(header.ResourceURI);
    const reply = (responseAction: string, b: string) => ({ action, relatesTo, body: b, responseAction });
    if (resource !== RESOURCE_CMD) {
      throw new Fault(500, 'Sender', 'DestinationUnreachable', '2150858770', `The WS-Management service cannot process the request because the resource URI ${resource} is not supported.`);
    }
    switch (action) {
      case ACTION.create: {
        const o = optionsOf(header);
        const shell: Shell = { id: randomUUID().toUpperCase(), owner: user, codepage: Number(o.WINRS_CODEPAGE ?? 437), commands: new Map() };
        shells.set(shell.id, shell);
        return reply(
          `${NS_X}/CreateResponse`,
          `<x:ResourceCreated><a:Address>http://127.0.0.1:${port}/wsman</a:Address><a:ReferenceParameters>` +
            `<w:ResourceURI>${RESOURCE_CMD}</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">${shell.id}</w:Selector></w:SelectorSet>` +
            `</a:ReferenceParameters></x:ResourceCreated>` +
            `<rsp:Shell><rsp:ShellId>${shell.id}</rsp:ShellId><rsp:ResourceUri>${RESOURCE_CMD}</rsp:ResourceUri><rsp:Owner>${esc(user)}</rsp:Owner>` +
            `<rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>`,
        );
      }
      case ACTION.command: {
        const shell = shellOf(header, user);
        const cl = obj(body.CommandLine);
        const commandLine = [text(cl.Command), ...((cl.Arguments as unknown[] | undefined) ?? []).map(text)].join(' ').trim();
        const options = optionsOf(header);
        const record: WsManCommandRecord = { user, shellId: shell.id, commandId: randomUUID().toUpperCase(), commandLine, script: '', options, stdin: '' };
        const c: RunningCommand = {
          record,
          out: [],
          done: false,
          exitCode: 0,
          finished: false,
          consoleStdin: options.WINRS_CONSOLEMODE_STDIN !== 'FALSE',
          stdin: [],
          stdinEnded: false,
          abort: new AbortController(),
          waiters: new Set(),
        };
        shell.commands.set(record.commandId, c);
        commands.push(record);
        void interpret(c, shell);
        return reply(`${NS_RSP}/CommandResponse`, `<rsp:CommandResponse><rsp:CommandId>${record.commandId}</rsp:CommandId></rsp:CommandResponse>`);
      }
      case ACTION.send: {
        const shell = shellOf(header, user);
        for (const s of ((obj(body.Send).Stream as unknown[] | undefined) ?? []).map(obj)) {
          const c = commandOf(shell, String(s['@_CommandId'] ?? ''));
          const data = Buffer.from(text(s), 'base64');
          c.stdin.push(data);
          c.record.stdin += data.toString('utf8');
          if (s['@_End'] === 'true') c.stdinEnded = true;
          notify(c);
        }
        return reply(`${NS_RSP}/SendResponse`, `<rsp:SendResponse/>`);
      }
      case ACTION.receive: {
        const shell = shellOf(header, user);
        return reply(`${NS_RSP}/ReceiveResponse`, await handleReceive(shell, header, body));
      }
      case ACTION.signal: {
        const shell = shellOf(header, user);
        const sig = obj(body.Signal);
        const c = commandOf(shell, String(sig['@_CommandId'] ?? ''));
        if (!c.done) {
          c.abort.abort();
          c.exitCode = -1;
        }
        return reply(`${NS_RSP}/SignalResponse`, `<rsp:SignalResponse/>`);
      }
      case ACTION.delete: {
        const shell = shellOf(header, user);
        for (const c of shell.commands.values()) if (!c.done) c.abort.abort();
        shells.delete(shell.id);
        return reply(`${NS_X}/DeleteResponse`, '');
      }
      default:
        throw new Fault(500, 'Sender', 'ActionNotSupported', '2150858775', `The action ${action} is not supported by the service.`);
    }
  }

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      void (async () => {
        const xmlText = Buffer.concat(parts).toString('utf8');
        const actionGuess = /<(?:\w+:)?Action[^>]*>([^<]+)</.exec(xmlText)?.[1] ?? '';
        if (req.url !== '/wsman' || req.method !== 'POST') {
          res.writeHead(404).end();
          return;
        }
        const trusted = proxyToken !== undefined && req.headers['x-hostflow-proxy-token'] === proxyToken;
        if (proxyToken !== undefined && !trusted) {
          res.writeHead(403).end();
          return;
        }
        const principal = trusted ? String(req.headers['x-hostflow-principal'] ?? '') : '';
        const auth = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
        const decoded = auth ? Buffer.from(auth[1]!, 'base64').toString('utf8') : '';
        const colon = decoded.indexOf(':');
        const user = principal ? (getUser(principal) ? principal : withoutComputer(principal)) : colon > 0 ? decoded.slice(0, colon) : '';
        if (principal) principals.push(principal);
        if ((principal ? !getUser(user)?.enabled : !auth || colon <= 0 || !checkPassword(user, decoded.slice(colon + 1))) || refused(user)) {
          requests.push({ action: actionGuess, user: null, status: 401 });
          res.writeHead(401, { 'WWW-Authenticate': ['Negotiate', 'Basic realm="WSMAN"'], 'Content-Length': 0 }).end();
          return;
        }
        const account = getUser(user)!;
        try {
          if (enforceRemoteGroups && ![...account.groups].some((g) => REMOTE_GROUPS.includes(g.toLowerCase()))) {
            throw new Fault(500, 'Sender', 'AccessDenied', '5', 'Access is denied.');
          }
          const r = await handle(account.name, xmlText);
          syncAccounts();
          requests.push({ action: r.action, user: account.name, status: 200 });
          const out = Buffer.from(envelope(r.responseAction, r.relatesTo, r.body), 'utf8');
          res.writeHead(200, { 'Content-Type': 'application/soap+xml;charset=UTF-8', 'Content-Length': out.length }).end(out);
        } catch (err) {
          if (!(err instanceof Fault)) {
            requests.push({ action: actionGuess, user: account.name, status: 500 });
            res.writeHead(500).end(String(err));
            return;
          }
          requests.push({ action: actionGuess, user: account.name, status: err.status });
          const relatesTo = /<(?:\w+:)?MessageID>([^<]+)</.exec(xmlText)?.[1] ?? '';
          const out = Buffer.from(err.xml(relatesTo), 'utf8');
          res.writeHead(err.status, { 'Content-Type': 'application/soap+xml;charset=UTF-8', 'Content-Length': out.length }).end(out);
        }
      })();
    });
  };

  let certPem: string | undefined;
  let certKey: string | undefined;
  let server: http.Server | https.Server;
  const negotiate = opts.auth === 'negotiate';
  const proxyToken = negotiate ? randomBytes(18).toString('base64url') : undefined;
  const workDir = negotiate ? await mkdtemp(join(tmpdir(), 'wsman-standin-')) : undefined;
  if (workDir) {
    accountsFile = join(workDir, 'accounts.json');
    syncAccounts();
  }
  if (negotiate) {
    // The acceptor terminates TLS; this server only listens on loopback behind it.
    if (useHttps) ({ key: certKey, cert: certPem } = await selfSignedCert());
    server = http.createServer(onRequest);
  } else if (useHttps) {
    const { key, cert } = await selfSignedCert();
    certPem = cert;
    server = https.createServer({ key, cert }, onRequest);
  } else {
    server = http.createServer(onRequest);
  }
  server.keepAliveTimeout = 120_000; // HTTP.sys idle connection timeout
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const backendPort = (server.address() as AddressInfo).port;
  let proxy: ChildProcess | undefined;
  let port = backendPort;
  if (negotiate) {
    const certFile = certPem ? join(workDir!, 'cert.pem') : undefined;
    if (certPem) {
      await writeFile(certFile!, certPem);
      await writeFile(join(workDir!, 'key.pem'), certKey!, { mode: 0o600 });
    }
    const started = await startAuthProxy({
      backend_port: backendPort,
      token: proxyToken!,
      hostname: opts.spnHost ?? 'localhost',
      allow_basic: opts.allowBasic ?? false,
      cert: certFile,
      key: certPem ? join(workDir!, 'key.pem') : undefined,
      accounts: accountsFile!,
      debug: opts.debugProxy ?? false,
    }, { NTLM_USER_FILE: join(workDir!, 'ntlm-users'), ...(opts.kerberos ? { KRB5_CONFIG: opts.kerberos.krb5Config, KRB5_KTNAME: opts.kerberos.keytab } : {}) });
    proxy = started.child;
    port = started.port;
  }

  const handle_: WsManHost = {
    host: '127.0.0.1',
    port,
    https: useHttps,
    url: `${useHttps ? 'https' : 'http'}://127.0.0.1:${port}/wsman`,
    computerName,
    adminUser,
    adminPassword,
    certPem,
    certFingerprint: certPem ? fingerprintOf(certPem) : undefined,
    users,
    groups,
    commands,
    requests,
    openShells: () => [...shells.keys()],
    hardware,
    profiles,
    createProfile,
    logon,
    rdpLogon,
    processes,
    startProcess,
    tasks,
    registerTask,
    sessions,
    injectFault(cmdlet, message) {
      if (message === null) faults.delete(cmdlet.toLowerCase());
      else faults.set(cmdlet.toLowerCase(), message);
    },
    refuseLogins(name, count) {
      refusals.set(name.toLowerCase(), count);
    },
    onCommandDone: null,
    checkPassword,
    addUser,
    addDomainUser: (account, password, userGroups = ['Administrators']) => addUser(account, password, userGroups),
    principals,
    async regenerateCertificate() {
      if (!useHttps) throw new Error('regenerateCertificate: the stand-in runs plain HTTP');
      if (negotiate) throw new Error('regenerateCertificate: not with auth negotiate (the acceptor holds the certificate)');
      const { key, cert } = await selfSignedCert();
      (server as https.Server).setSecureContext({ key, cert });
      handle_.certPem = cert;
      handle_.certFingerprint = fingerprintOf(cert);
      server.closeIdleConnections();
    },
    async stop() {
      for (const shell of shells.values()) for (const c of shell.commands.values()) c.abort.abort();
      shells.clear();
      server.closeAllConnections();
      if (proxy && proxy.exitCode === null) {
        const exited = new Promise<void>((resolve) => proxy!.once('exit', () => resolve()));
        proxy.kill('SIGTERM');
        await exited;
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (workDir) await rm(workDir, { recursive: true, force: true });
    },
  };
  return handle_;
}

/** The venv python with pyspnego (scripts/pyspnego.sh --install-only creates it). */
export function pyspnegoPython(): string {
  return join(process.env.HOSTFLOW_CACHE_DIR ?? join(homedir(), '.cache', 'hostflow'), 'venv', 'bin', 'python');
}

async function startAuthProxy(config: Record<string, unknown>, env: Record<string, string>): Promise<{ child: ChildProcess; port: number }> {
  const script = fileURLToPath(new URL('./wsman-auth-proxy.py', import.meta.url));
  const child = spawn(pyspnegoPython(), [script, JSON.stringify(config)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', config.debug ? 'inherit' : 'pipe'],
  });
  const errOut: string[] = [];
  child.stderr?.on('data', (d: Buffer) => errOut.push(d.toString()));
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => (child.kill(), reject(new Error(`wsman-auth-proxy did not start: ${errOut.join('')}`))), 60_000); // python + pyspnego import: seconds on a loaded machine
    child.once('error', (err) => (clearTimeout(timer), reject(new Error(`wsman-auth-proxy: ${err.message} (run scripts/pyspnego.sh --install-only)`))));
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`wsman-auth-proxy exited ${code}: ${errOut.join('')} (run scripts/pyspnego.sh --install-only)`))));
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve({ child, port: (JSON.parse(line) as { port: number }).port });
    });
  });
}
