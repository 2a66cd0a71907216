/**
 * Validation of every value that ends up in a remote script (activities/remote/linux.ts, windows.ts).
 *
 * The command builders re-validate with these schemas (defense in depth: the API validates first),
 * so a value that is not accepted here never reaches a remote shell. Free-text fields that allow
 * punctuation (full name, description, passwords) are additionally quoted by `shq` / `psq`.
 *
 * Errors are `InvalidInputError` (type 'InvalidInput', field name + human-readable reason), which
 * activities turn into a non-retryable ApplicationFailure: retrying bad input cannot help.
 */
import { z } from 'zod';

/** Control characters (C0, DEL, C1), format characters (bidi overrides, zero-width), unassigned
 * code points, lone surrogates, private use, plus Unicode line/paragraph separators. */
const NON_PRINTABLE = /[\p{C}\p{Zl}\p{Zp}]/u;

const isPrintable = (s: string) => !NON_PRINTABLE.test(s);
const noEdgeSpace = (s: string) => s === s.trim();

// ---------------------------------------------------------------------------------------------
// Linux
// ---------------------------------------------------------------------------------------------

/** POSIX portable name as accepted by useradd/groupadd (and never starting with '-'). */
export const LINUX_NAME_RE = /^[a-z_][a-z0-9_-]{0,31}$/;

/**
 * Names the platform refuses to create or touch on Linux hosts:
 * - system accounts shipped by Debian/Ubuntu/RHEL base images and common services (deleting or
 *   re-purposing them breaks the host);
 * - names of privileged groups (`sudo`, `wheel`, `admin`, `adm`, ...): `useradd` creates a user
 *   group of the same name, and Ubuntu's default sudoers still grants `%admin ALL=(ALL) ALL`, so a
 *   user called `admin` would silently become a sudoer;
 * - `hostflow`, the platform's own name.
 * Names starting with `systemd-` are reserved as well (see isReservedLinuxName).
 */
export const RESERVED_LINUX_NAMES: ReadonlySet<string> = new Set([
  'root', 'daemon', 'bin', 'sys', 'sync', 'games', 'man', 'lp', 'mail', 'news', 'uucp', 'proxy',
  'www-data', 'backup', 'list', 'irc', 'gnats', 'nobody', 'nogroup', '_apt', 'messagebus', 'syslog',
  'sshd', 'uuidd', 'tcpdump', 'tss', 'landscape', 'pollinate', 'lxd', 'dnsmasq', 'polkitd', 'usbmux',
  'adm', 'admin', 'sudo', 'wheel', 'staff', 'shadow', 'disk', 'kmem', 'tty', 'utmp', 'operator',
  'shutdown', 'halt', 'ftp', 'dbus', 'chrony', 'rpc', 'rpcuser', 'nfsnobody', 'postfix', 'apache',
  'nginx', 'mysql', 'postgres', 'docker', 'kvm', 'libvirt', 'hostflow',
]);

export function isReservedLinuxName(name: string): boolean {
  return RESERVED_LINUX_NAMES.has(name) || name.startsWith('systemd-');
}

const LINUX_NAME_RULE =
  'must start with a lowercase letter or "_" and contain only lowercase letters, digits, "_" or "-" (1 to 32 characters)';

export const linuxUsername = z
  .string()
  .regex(LINUX_NAME_RE, `username ${LINUX_NAME_RULE}`)
  .refine((s) => !isReservedLinuxName(s), {
    error: (iss) => `username "${String(iss.input)}" is reserved for the system and cannot be used`,
  });

/** Linux group names: same portable rule; system groups are allowed (granting `sudo` is an
 * authorization decision made by the API, not a syntax question). */
export const linuxGroupName = z.string().regex(LINUX_NAME_RE, `group name ${LINUX_NAME_RULE}`);

/** Absolute path of a login shell, e.g. /bin/bash or /usr/sbin/nologin. */
export const loginShell = z
  .string()
  .regex(/^\/[A-Za-z0-9._+/-]{1,254}$/, 'shell must be an absolute path made of letters, digits, ".", "_", "+", "-" and "/"')
  .refine((s) => !s.split('/').includes('..'), 'shell path must not contain ".."');

// ---------------------------------------------------------------------------------------------
// Windows
// ---------------------------------------------------------------------------------------------

/** Characters Windows forbids in local account names (`* ? [ ]` are also PowerShell wildcards). */
const WINDOWS_USER_FORBIDDEN = /["/\\[\]:;|=,+*?<>@]/;
const WINDOWS_GROUP_FORBIDDEN = /["/\\[\]:;|=,+*?<>]/;

/** Built-in accounts and well-known principal/group names (local users and groups share one
 * namespace, compared case-insensitively). */
export const RESERVED_WINDOWS_NAMES: ReadonlySet<string> = new Set(
  [
    'Administrator', 'Guest', 'DefaultAccount', 'WDAGUtilityAccount', 'krbtgt', 'SYSTEM', 'LocalSystem',
    'LocalService', 'NetworkService', 'Everyone', 'Administrators', 'Users', 'Guests', 'NONE', 'hostflow',
  ].map((n) => n.toLowerCase()),
);

export const windowsUsername = z
  .string()
  .min(1, 'username must not be empty')
  .max(20, 'username must be at most 20 characters')
  .refine(isPrintable, 'username must not contain control or invisible characters')
  .refine((s) => !WINDOWS_USER_FORBIDDEN.test(s), 'username must not contain any of " / \\ [ ] : ; | = , + * ? < > @')
  .refine(noEdgeSpace, 'username must not start or end with a space')
  .refine((s) => !/^[. ]+$/.test(s), 'username must not consist only of dots and spaces')
  .refine((s) => !s.endsWith('.'), 'username must not end with "."')
  .refine((s) => !RESERVED_WINDOWS_NAMES.has(s.toLowerCase()), {
    error: (iss) => `username "${String(iss.input)}" is a built-in Windows account and cannot be used`,
  });

export const windowsGroupName = z
  .string()
  .min(1, 'group name must not be empty')
  .max(256, 'group name must be at most 256 characters')
  .refine(isPrintable, 'group name must not contain control or invisible characters')
  .refine((s) => !WINDOWS_GROUP_FORBIDDEN.test(s), 'group name must not contain any of " / \\ [ ] : ; | = , + * ? < >')
  .refine(noEdgeSpace, 'group name must not start or end with a space')
  .refine((s) => !/^[. ]+$/.test(s), 'group name must not consist only of dots and spaces');

// ---------------------------------------------------------------------------------------------
// Free text and secrets
// ---------------------------------------------------------------------------------------------

/** Display name. Goes into the Linux GECOS field (`:` separates passwd fields, `,` separates GECOS
 * sub-fields), so both are refused for every OS; quotes and other punctuation are fine. */
export const fullName = z
  .string()
  .min(1, 'full name must not be empty')
  .max(100, 'full name must be at most 100 characters')
  .refine(isPrintable, 'full name must not contain control characters (newline, carriage return, tab, ...) or invisible characters')
  .refine((s) => !s.includes(':'), 'full name must not contain ":"')
  .refine((s) => !s.includes(','), 'full name must not contain ","')
  .refine(noEdgeSpace, 'full name must not start or end with whitespace');

export const description = z
  .string()
  .max(200, 'description must be at most 200 characters')
  .refine(isPrintable, 'description must not contain control characters (newline, carriage return, tab, ...) or invisible characters');

/** New-LocalUser documents a 48-character limit for -Description. */
export const windowsUserDescription = description.refine((s) => s.length <= 48, 'description of a Windows account must be at most 48 characters');

/** Account passwords (generated by the activity that sets them). Line-based tools (chpasswd) and
 * one-statement-per-line scripts rule out control characters. */
export const password = z
  .string()
  .min(8, 'password must be at least 8 characters')
  .max(127, 'password must be at most 127 characters')
  .refine(isPrintable, 'password must not contain control or invisible characters');

/** Reference stored in the platform marker (request or allocation id). */
export const markerRef = z.string().regex(/^[A-Za-z0-9:/._-]{1,200}$/, 'marker reference must be 1 to 200 characters of letters, digits, ":", "/", ".", "_" or "-"');

/** One OpenSSH public key line without options (what users upload). */
export const SSH_PUBLIC_KEY_RE =
  /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/=]+( [^\n\r]*)?$/;

export const sshPublicKey = z
  .string()
  .max(16_384, 'SSH public key must be at most 16384 characters')
  .regex(SSH_PUBLIC_KEY_RE, 'SSH public key must be one line "<type> <base64> [comment]" with a supported type (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com)')
  .refine(isPrintable, 'SSH public key must not contain control or invisible characters');

/** OpenSSH SHA256 fingerprint as `ssh-keygen -l` prints it. */
export const sshKeyFingerprint = z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'fingerprint must look like "SHA256:" followed by 43 base64 characters');

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

export type TargetOs = 'linux' | 'windows';

/** The username schema for a host's OS (API validation of requests uses the same rules as the builders). */
export function usernameSchemaFor(os: TargetOs): z.ZodType<string> {
  return os === 'windows' ? windowsUsername : linuxUsername;
}

/** The group name schema for a host's OS. */
export function groupSchemaFor(os: TargetOs): z.ZodType<string> {
  return os === 'windows' ? windowsGroupName : linuxGroupName;
}

/** A value was refused before anything ran. Non-retryable. */
export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
  readonly type = 'InvalidInput' as const;
  constructor(
    public readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** Parses `value` or throws an InvalidInputError naming `field` with every reason found. */
export function validate<T>(schema: z.ZodType<T>, value: unknown, field: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const reasons = [...new Set(r.error.issues.map((i) => i.message))].join('; ');
  throw new InvalidInputError(field, `${field}: ${reasons}`);
}

/** Validates a list (each element with `schema`), refusing duplicates and more than `max` items. */
export function validateList<T>(schema: z.ZodType<T>, values: unknown, field: string, max = 32): T[] {
  if (!Array.isArray(values)) throw new InvalidInputError(field, `${field}: must be a list`);
  if (values.length > max) throw new InvalidInputError(field, `${field}: at most ${max} entries are allowed`);
  const out = values.map((v, i) => validate(schema, v, `${field}[${i}]`));
  const seen = new Set<unknown>();
  for (const v of out) {
    if (seen.has(v)) throw new InvalidInputError(field, `${field}: "${String(v)}" is listed twice`);
    seen.add(v);
  }
  return out;
}

/**
 * Everything an account request carries into the create-account builders (linux.createUser /
 * windows.createUser, addToGroups), checked with the same schemas they use: the API runs this at
 * submit, so a request that execution would refuse is refused before it exists. Fields are named
 * as the API names them.
 */
export function accountRequestIssues(
  os: TargetOs,
  input: { username: string; full_name: string; description?: string | null; groups: readonly string[] },
): Array<{ field: string; message: string }> {
  const issues: Array<{ field: string; message: string }> = [];
  const check = (schema: z.ZodType, value: unknown, field: string) => {
    const r = schema.safeParse(value);
    if (!r.success) issues.push({ field, message: [...new Set(r.error.issues.map((i) => i.message))].join('; ') });
  };
  check(usernameSchemaFor(os), input.username, 'username');
  check(fullName, input.full_name, 'full_name');
  if (input.description) check(os === 'windows' ? windowsUserDescription : description, input.description, 'description');
  input.groups.forEach((g, i) => check(groupSchemaFor(os), g, `groups.${i}`));
  return issues;
}
