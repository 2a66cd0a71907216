// Unit tests of the remote command builders (activities/remote/{validation,linux,windows}.ts).
// Linux scripts are run for real by /bin/sh against stub binaries (useradd, sudo, getent, ... that
// only record their argv) in a temp dir, so no host account is touched; PowerShell scripts are
// checked with a small tokenizer for single-quoted literals (no PowerShell runs here).
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as linux from '../../activities/remote/linux.js';
import * as windows from '../../activities/remote/windows.js';
import {
  InvalidInputError,
  description,
  fullName,
  linuxUsername,
  validate,
  windowsGroupName,
  windowsUsername,
} from '../../activities/remote/validation.js';

/** Injection payloads from the brief plus the other PowerShell quote variants. */
const PAYLOADS = [
  "'; rm -rf / #",
  '$(reboot)',
  '`reboot`',
  '$env:PATH',
  '"; Remove-Item C:\\ -Recurse #',
  'a\nreboot',
  'a\rreboot',
  'a\0reboot',
  '‘; reboot; ‘',
  '’; reboot; ’',
  'x‚y‛z',
  "''; reboot; ''",
  '\\\'; reboot #',
  '-rf --help',
];

// A real ed25519 key and a real RSA key with the fingerprints `ssh-keygen -l` prints for them.
const KEY1 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICouVQOwnRSzqIZyS/Cl+ryN5W7l2MZ7Df4o9EEhBdFW';
const KEY1_FP = 'SHA256:TCgbrBPx58fqOQ3fkQzhzXfs8u5vT5dH6wPmZnfAKmg';
const KEY2 =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDsjbTRvSWcL7LdnpDpEebg1uJMnHdZlgBN6ryl3rXnpxi+xa2zq5/oD7dVHwdW/97Jt89+wlSu+4J28GRdN9Qdu37Z3rmRfbEd8TCqr0naEpD3RndRVxjepd3dEEXa8VtUZz9CrK5GWaYHKUpchlYfq5BI52EAKo6NgSp1WV1LNQ==';
const KEY2_FP = 'SHA256:VOskx6zv8pOEX6SHV21wJRLjaioCWE/Nv6rXNnV6+TM';

// ---------------------------------------------------------------------------------------------
// Helpers: /bin/sh round trip, stub host, PowerShell literal tokenizer
// ---------------------------------------------------------------------------------------------

/** What /bin/sh makes of a quoted word: `sh -c 'printf %s <quoted>'`. */
function shRoundTrip(quoted: string): string {
  return execFileSync('/bin/sh', ['-c', `printf %s ${quoted}`], { encoding: 'utf8' });
}

interface Stub {
  root: string;
  run(cmd: string, opts?: { input?: string; users?: string[]; groups?: string[]; idGroups?: string; pkillRc?: number }): {
    status: number | null;
    stdout: string;
    stderr: string;
  };
  calls(): string[][];
  reset(): void;
}

/** A fake host: stub binaries on PATH that record argv (unit separator between args), a fake
 * passwd/group database for getent, and canaries (`reboot`, `rm /`) that record any injection. */
function makeStubHost(): Stub {
  const root = mkdtempSync(join(tmpdir(), 'hostflow-cb-'));
  const bin = join(root, 'bin');
  mkdirSync(bin);
  // One record = one write(2) to the O_APPEND log: stubs can run concurrently (endTenantActivity
  // pipes list_containers, which calls docker inspect and ps, into a loop calling docker rm), and a
  // record written piecewise by several printfs would interleave with another and be lost.
  const log = '{ hf_rec=${0##*/}; for a in "$@"; do hf_rec="$hf_rec$(printf \'\\037\')$a"; done; printf \'%s\\036\' "$hf_rec"; } >> "$HF_ROOT/log"';
  const stubs: Record<string, string> = {
    sudo: String.raw`${log}
while [ $# -gt 0 ]; do
  case $1 in
    -n) shift ;;
    -u) shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
exec "$@"`,
    getent: String.raw`${log}
case $1 in
  passwd) if [ "$2" = 1000 ]; then for u in $HF_USERS; do printf '%s:x:1000:1000::%s/home/%s:/bin/sh\n' "$u" "$HF_ROOT" "$u"; exit 0; done; exit 2; fi
    for u in $HF_USERS; do if [ "$u" = "$2" ]; then printf '%s:x:1000:1000::%s/home/%s:/bin/sh\n' "$u" "$HF_ROOT" "$u"; exit 0; fi; done; exit 2 ;;
  group) for g in $HF_GROUPS; do if [ "$g" = "$2" ]; then printf '%s:x:1000:\n' "$g"; exit 0; fi; done; exit 2 ;;
esac
exit 1`,
    id: `${log}\nprintf '%s\\n' "$HF_ID_GROUPS"`,
    ps: `${log}\nprintf '  4242 sleep\\n    7 bash\\n'`,
    pkill: `${log}\nexit "\${HF_PKILL_RC:-0}"`,
    chpasswd: `${log}\ncat >> "$HF_ROOT/chpasswd.stdin"`,
    useradd: log,
    usermod: log,
    chage: log,
    userdel: log,
    reboot: `${log}\necho INJECTED >> "$HF_ROOT/canary"`,
    'Remove-Item': `${log}\necho INJECTED >> "$HF_ROOT/canary"`,
    rm: String.raw`${log}
for a in "$@"; do if [ "$a" = / ]; then echo INJECTED >> "$HF_ROOT/canary"; exit 1; fi; done
exec /bin/rm "$@"`,
  };
  for (const [name, body] of Object.entries(stubs)) {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  }
  const stub: Stub = {
    root,
    run(cmd, opts = {}) {
      const r = spawnSync('bash', ['-c', cmd.replaceAll(linux.LINUX_MARKER_DIR, join(root, 'markers'))], {
        input: opts.input ?? '',
        encoding: 'utf8',
        env: {
          PATH: `${bin}:/usr/bin:/bin`,
          HF_ROOT: root,
          HF_USERS: (opts.users ?? []).join(' '),
          HF_GROUPS: (opts.groups ?? []).join(' '),
          HF_ID_GROUPS: opts.idGroups ?? '',
          HF_PKILL_RC: String(opts.pkillRc ?? 0),
        },
      });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    calls() {
      const f = join(root, 'log');
      if (!existsSync(f)) return [];
      return readFileSync(f, 'utf8')
        .split('\x1e')
        .filter(Boolean)
        .map((r) => r.split('\x1f'));
    },
    reset() {
      for (const f of ['log', 'canary', 'chpasswd.stdin', 'markers', 'home']) rmSync(join(root, f), { recursive: true, force: true });
    },
  };
  return stub;
}

const PS_QUOTES = new Set(["'", '\u2018', '\u2019', '\u201A', '\u201B']);

/**
 * Splits a PowerShell script into single-quoted literals (unescaped as PowerShell's tokenizer does:
 * inside a literal, a quote character followed by another quote character yields the second one;
 * a lone quote character ends the literal) and the code around them, where each literal is <S>.
 */
function psTokenize(script: string): { skeleton: string; literals: string[] } {
  let skeleton = '';
  const literals: string[] = [];
  let i = 0;
  while (i < script.length) {
    const c = script[i]!;
    if (!PS_QUOTES.has(c)) {
      skeleton += c;
      i++;
      continue;
    }
    let value = '';
    i++;
    for (;;) {
      if (i >= script.length) throw new Error('unterminated single-quoted literal');
      const d = script[i]!;
      if (PS_QUOTES.has(d)) {
        const next = script[i + 1];
        if (next !== undefined && PS_QUOTES.has(next)) {
          value += next;
          i += 2;
          continue;
        }
        i++;
        break;
      }
      value += d;
      i++;
    }
    literals.push(value);
    skeleton += '<S>';
  }
  return { skeleton, literals };
}

// ---------------------------------------------------------------------------------------------
// (a) Quoting
// ---------------------------------------------------------------------------------------------

describe('shq (POSIX single quotes)', () => {
  it('wraps in single quotes and turns a quote into \'\\\'\'', () => {
    expect(linux.shq('')).toBe("''");
    expect(linux.shq('abc')).toBe("'abc'");
    expect(linux.shq("a'b")).toBe(`'a'\\''b'`);
    expect(linux.shq("''")).toBe(`''\\'''\\'''`);
  });

  it('refuses NUL, which argv cannot carry', () => {
    expect(() => linux.shq('a\0b')).toThrow(InvalidInputError);
    expect(() => linux.shq('a\0b')).toThrow(/NUL/);
  });

  const values = [
    ...PAYLOADS.filter((p) => !p.includes('\0')),
    '',
    ' leading and trailing ',
    'tab\there',
    '*',
    '~root',
    '$HOME ${PATH} $1 $@ $* $? !!',
    '\\n\\t\\\\',
    "'",
    "'''",
    '"',
    'Zoë Łukasz 山田 😀',
    '\u2028\u2029',
    '-n',
  ];
  it.each(values.map((v) => [JSON.stringify(v), v]))('/bin/sh reads %s back byte for byte', (_label, v) => {
    expect(shRoundTrip(linux.shq(v))).toBe(v);
  });
});

describe('psq (PowerShell single-quoted literal)', () => {
  it('doubles every single-quote variant PowerShell recognises', () => {
    expect(windows.psq('')).toBe("''");
    expect(windows.psq("O'Brien")).toBe("'O''Brien'");
    expect(windows.psq('a‘b’c‚d‛e')).toBe("'a‘‘b’’c‚‚d‛‛e'");
    expect(windows.psq('$(x) `y` "z"')).toBe(`'$(x) \`y\` "z"'`);
  });

  it('refuses NUL', () => {
    expect(() => windows.psq('a\0b')).toThrow(InvalidInputError);
  });

  it.each(PAYLOADS.filter((p) => !p.includes('\0')).map((p) => [JSON.stringify(p), p]))(
    'tokenizes %s as exactly one literal with the original value',
    (_label, p) => {
      const t = psTokenize(`Write-Output ${windows.psq(p)} -NoEnumerate`);
      expect(t.skeleton).toBe('Write-Output <S> -NoEnumerate');
      expect(t.literals).toEqual([p]);
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Validators
// ---------------------------------------------------------------------------------------------

describe('validators', () => {
  it('accepts portable Linux names and refuses the rest with a readable reason', () => {
    for (const ok of ['alice', '_svc', 'a1-b_c', 'x'.repeat(32)]) expect(validate(linuxUsername, ok, 'username')).toBe(ok);
    for (const bad of ['Alice', '1abc', '-rf', 'a.b', 'x'.repeat(33), '', 'ali ce', 'alice$']) {
      expect(() => validate(linuxUsername, bad, 'username')).toThrow(/username: username must start with a lowercase letter/);
    }
  });

  it('refuses reserved Linux names (system accounts and privileged group names)', () => {
    for (const r of ['root', 'admin', 'sudo', 'wheel', 'nobody', 'sshd', 'www-data', 'systemd-network', 'hostflow']) {
      expect(() => validate(linuxUsername, r, 'username')).toThrow(`username "${r}" is reserved`);
    }
  });

  it('applies the Windows account name rules', () => {
    for (const ok of ['alice', 'Bob Smith', "O'Brien", 'x'.repeat(20), 'a.b']) expect(validate(windowsUsername, ok, 'username')).toBe(ok);
    const cases: [string, RegExp][] = [
      ['', /must not be empty/],
      ['x'.repeat(21), /at most 20/],
      ['a@b', /must not contain any of/],
      ['a*', /must not contain any of/],
      ['a[1]', /must not contain any of/],
      ['name.', /must not end with "\."/],
      ['...', /only of dots and spaces/],
      [' bob', /start or end with a space/],
      ['a\tb', /control or invisible/],
      ['administrator', /built-in Windows account/],
      ['WDAGUtilityAccount', /built-in Windows account/],
    ];
    for (const [v, re] of cases) expect(() => validate(windowsUsername, v, 'username')).toThrow(re);
    expect(validate(windowsGroupName, 'Remote Desktop Users', 'group')).toBe('Remote Desktop Users');
    expect(() => validate(windowsGroupName, 'a|b', 'group')).toThrow(/group name must not contain/);
  });

  it('full names refuse GECOS separators and control characters; descriptions allow punctuation', () => {
    expect(validate(fullName, "Seán O'Brien-Ruiz (ops) $x", 'fullName')).toBe("Seán O'Brien-Ruiz (ops) $x");
    expect(() => validate(fullName, 'Smith, John', 'fullName')).toThrow('fullName: full name must not contain ","');
    expect(() => validate(fullName, 'a:b', 'fullName')).toThrow('must not contain ":"');
    expect(() => validate(fullName, 'a\nb', 'fullName')).toThrow(/control characters/);
    expect(() => validate(fullName, 'a\u202Eb', 'fullName')).toThrow(/invisible/);
    expect(validate(description, 'GPU box; "quoted" C:\\path', 'description')).toBe('GPU box; "quoted" C:\\path');
    expect(() => validate(description, 'x'.repeat(201), 'description')).toThrow(/at most 200/);
  });

  it('offers per-OS schemas for the API', async () => {
    const { usernameSchemaFor, groupSchemaFor } = await import('../../activities/remote/validation.js');
    expect(usernameSchemaFor('linux').safeParse('Bob').success).toBe(false);
    expect(usernameSchemaFor('windows').safeParse('Bob').success).toBe(true);
    expect(groupSchemaFor('windows').safeParse('Remote Desktop Users').success).toBe(true);
    expect(groupSchemaFor('linux').safeParse('Remote Desktop Users').success).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// (b) Injection matrix
// ---------------------------------------------------------------------------------------------

type Built = string | { script: string; stdin: string | ((p: string) => string) };
interface Case {
  label: string;
  field: string;
  benign: string;
  build: (v: string) => Built;
}
const cmdOf = (b: Built) => (typeof b === 'string' ? b : b.script);
const stdinOf = (b: Built, pw = 'StdinPass#123') =>
  typeof b === 'string' ? '' : typeof b.stdin === 'function' ? b.stdin(pw) : b.stdin;

const U = 'benignusr';
const ALLOC = '6f1c2a4e-0b7d-4c3e-9a51-2d8e7f6a1b90';
const linuxCases: Case[] = [
  { label: 'userExists', field: 'username', benign: U, build: (v) => linux.userExists(v) },
  { label: 'createUser', field: 'username', benign: U, build: (v) => linux.createUser({ username: v, fullName: 'Benign Name', groups: ['benigngrp'] }) },
  { label: 'createUser', field: 'fullName', benign: 'Benign Name', build: (v) => linux.createUser({ username: U, fullName: v, groups: ['benigngrp'] }) },
  { label: 'createUser', field: 'groups[0]', benign: 'benigngrp', build: (v) => linux.createUser({ username: U, fullName: 'Benign Name', groups: [v] }) },
  { label: 'createUser', field: 'shell', benign: '/bin/benignsh', build: (v) => linux.createUser({ username: U, fullName: 'Benign Name', shell: v }) },
  { label: 'createUser', field: 'markerRef', benign: 'benign-ref', build: (v) => linux.createUser({ username: U, fullName: 'Benign Name', markerRef: v }) },
  { label: 'setPassword', field: 'username', benign: U, build: (v) => linux.setPassword(v) },
  {
    label: 'setPassword',
    field: 'password',
    benign: 'BenignPass#1',
    build: (v) => {
      const sp = linux.setPassword(U);
      return { script: sp.script, stdin: sp.stdin(v) };
    },
  },
  { label: 'addToGroups', field: 'username', benign: U, build: (v) => linux.addToGroups(v, ['benigngrp']) },
  { label: 'addToGroups', field: 'groups[0]', benign: 'benigngrp', build: (v) => linux.addToGroups(U, [v]) },
  { label: 'lockUser', field: 'username', benign: U, build: (v) => linux.lockUser(v) },
  { label: 'unlockUser', field: 'username', benign: U, build: (v) => linux.unlockUser(v) },
  { label: 'deleteUser', field: 'username', benign: U, build: (v) => linux.deleteUser(v, { removeHome: true }) },
  { label: 'killUserProcesses', field: 'username', benign: U, build: (v) => linux.killUserProcesses(v, 'TERM') },
  { label: 'killUserProcesses', field: 'signal', benign: 'KILL', build: (v) => linux.killUserProcesses(U, v as linux.KillSignal) },
  { label: 'tenantFootprint', field: 'username', benign: U, build: (v) => linux.tenantFootprint({ username: v }) },
  { label: 'tenantFootprint', field: 'allocationId', benign: ALLOC, build: (v) => linux.tenantFootprint({ username: U, allocationId: v }) },
  { label: 'tenantFootprint', field: 'files', benign: 'everywhere', build: (v) => linux.tenantFootprint({ username: U, files: v as 'none' }) },
  { label: 'endTenantActivity', field: 'username', benign: U, build: (v) => linux.endTenantActivity({ username: v, uid: 1500 }) },
  { label: 'endTenantActivity', field: 'allocationId', benign: ALLOC, build: (v) => linux.endTenantActivity({ username: U, allocationId: v }) },
  { label: 'removeTenantFiles', field: 'username', benign: U, build: (v) => linux.removeTenantFiles({ username: v, uid: 1500 }) },
  { label: 'lockUser', field: 'username', benign: U, build: (v) => linux.lockUser(v, { expirePassword: true }) },
  { label: 'cleanupUserLeftovers', field: 'username', benign: U, build: (v) => linux.cleanupUserLeftovers(v) },
  { label: 'userUid', field: 'username', benign: U, build: (v) => linux.userUid(v) },
  { label: 'listAuthorizedKeys', field: 'username', benign: U, build: (v) => linux.listAuthorizedKeys(v) },
  { label: 'userGroups', field: 'username', benign: U, build: (v) => linux.userGroups(v) },
  { label: 'readMarker', field: 'username', benign: U, build: (v) => linux.readMarker(v) },
  { label: 'addAuthorizedKeys', field: 'username', benign: U, build: (v) => linux.addAuthorizedKeys(v, [KEY1]) },
  { label: 'addAuthorizedKeys', field: 'keys[0]', benign: KEY1, build: (v) => linux.addAuthorizedKeys(U, [v]) },
  { label: 'addAuthorizedKeys', field: 'keys[0]', benign: 'benign comment', build: (v) => linux.addAuthorizedKeys(U, [`${KEY1} ${v}`]) },
  { label: 'removeAuthorizedKeys', field: 'username', benign: U, build: (v) => linux.removeAuthorizedKeys(v, [KEY1_FP]) },
  { label: 'removeAuthorizedKeys', field: 'fingerprintsOrKeys[0]', benign: KEY1_FP, build: (v) => linux.removeAuthorizedKeys(U, [v]) },
  { label: 'removeAuthorizedKeys', field: 'fingerprintsOrKeys[0]', benign: KEY1, build: (v) => linux.removeAuthorizedKeys(U, [v]) },
];

describe('Linux builders: every payload in every field is refused or stays one inert value', () => {
  let stub: Stub;
  beforeAll(() => {
    stub = makeStubHost();
  });
  afterAll(() => rmSync(stub.root, { recursive: true, force: true }));
  beforeEach(() => stub.reset());

  const matrix = linuxCases.flatMap((c) => PAYLOADS.map((p) => [`${c.label}.${c.field} (benign ${JSON.stringify(c.benign)}) ← ${JSON.stringify(p)}`, c, p] as const));

  it.each(matrix)('%s', (_label, c, p) => {
    let built: Built;
    try {
      built = c.build(p);
    } catch (err) {
      // Refused: with a readable error naming the field.
      expect(err).toBeInstanceOf(InvalidInputError);
      expect((err as InvalidInputError).field).toBe(c.field);
      expect((err as Error).message.startsWith(`${c.field}: `)).toBe(true);
      expect((err as Error).message).not.toMatch(/\[object|undefined/);
      return;
    }
    // Accepted: only free-text values get here. The command differs from the benign one only in
    // the quoted argument (argv values) or not at all (stdin values) ...
    const benign = c.build(c.benign);
    const viaArgv = cmdOf(benign).includes(linux.shq(c.benign));
    if (viaArgv) {
      expect(cmdOf(built)).toBe(cmdOf(benign).replace(linux.shq(c.benign), () => linux.shq(p)));
      // ... which /bin/sh reads back byte for byte ...
      expect(shRoundTrip(linux.shq(p))).toBe(p);
    } else {
      expect(cmdOf(built)).toBe(cmdOf(benign));
      expect(cmdOf(built)).not.toContain(p);
      expect(stdinOf(built)).toContain(p);
    }
    // ... and running the whole script on the stub host delivers it intact and runs nothing else.
    const home = join(stub.root, 'home', U);
    mkdirSync(home, { recursive: true });
    const r = stub.run(cmdOf(built), { input: stdinOf(built), users: [U], groups: ['benigngrp'] });
    expect(existsSync(join(stub.root, 'canary')), `${r.stdout}\n${r.stderr}`).toBe(false);
    if (c.label === 'createUser' && c.field === 'fullName') {
      expect(r.status).toBe(linux.LINUX_EXIT.USER_EXISTS); // U exists on the stub host: nothing ran
      const r2 = stub.run(cmdOf(built), { users: [], groups: ['benigngrp'] });
      expect(r2.status, r2.stderr).toBe(0);
      const useradd = stub.calls().find((a) => a[0] === 'useradd');
      expect(useradd).toEqual(['useradd', '-m', '-s', '/bin/bash', '-c', p, '-G', 'benigngrp', '--', U]);
    } else if (c.label === 'setPassword') {
      expect(r.status, r.stderr).toBe(0);
      expect(readFileSync(join(stub.root, 'chpasswd.stdin'), 'utf8')).toBe(`${U}:${p}\n`);
      expect(stub.calls().flat().join('\n')).not.toContain(p);
    } else if (c.label === 'addAuthorizedKeys') {
      expect(r.status, r.stderr).toBe(0);
      expect(readFileSync(join(home, '.ssh', 'authorized_keys'), 'utf8')).toBe(`${KEY1} ${p}\n`);
    } else {
      throw new Error(`unexpected accepted payload for ${c.label}.${c.field}`);
    }
  });
});

const W = 'BenignUser';
const WP = 'BenignPass#1';
/** A builder whose password goes through stdin, with `v` as the password. */
const viaStdin = (c: { script: string; stdin: (p: string) => string }, v: string): Built => ({ script: c.script, stdin: c.stdin(v) });
const windowsCases: Case[] = [
  { label: 'userExists', field: 'username', benign: W, build: (v) => windows.userExists(v) },
  ...(['username', 'fullName', 'description'] as const).map((field): Case => {
    const base = { username: W, fullName: 'Benign Name', description: 'Benign desc', passwordNeverExpires: true };
    return { label: 'createUser', field, benign: base[field], build: (v) => viaStdin(windows.createUser({ ...base, [field]: v }), WP) };
  }),
  {
    label: 'createUser',
    field: 'password',
    benign: WP,
    build: (v) => viaStdin(windows.createUser({ username: W, fullName: 'Benign Name', description: 'Benign desc', passwordNeverExpires: true }), v),
  },
  { label: 'addToGroups', field: 'username', benign: W, build: (v) => windows.addToGroups(v, ['Benign Group', 'Users']) },
  { label: 'addToGroups', field: 'groups[0]', benign: 'Benign Group', build: (v) => windows.addToGroups(W, [v, 'Users']) },
  { label: 'disableUser', field: 'username', benign: W, build: (v) => windows.disableUser(v) },
  { label: 'enableUser', field: 'username', benign: W, build: (v) => windows.enableUser(v) },
  { label: 'setPassword', field: 'username', benign: W, build: (v) => viaStdin(windows.setPassword(v), WP) },
  { label: 'setPassword', field: 'password', benign: WP, build: (v) => viaStdin(windows.setPassword(W), v) },
  { label: 'deleteUser', field: 'username', benign: W, build: (v) => windows.deleteUser(v, { removeProfile: true }) },
  { label: 'userGroups', field: 'username', benign: W, build: (v) => windows.userGroups(v) },
];

describe('Windows builders: every payload in every field is refused or stays inside one literal (or stdin)', () => {
  const matrix = windowsCases.flatMap((c) => PAYLOADS.map((p) => [`${c.label}.${c.field} ← ${JSON.stringify(p)}`, c, p] as const));

  it.each(matrix)('%s', (_label, c, p) => {
    let built: Built;
    try {
      built = c.build(p);
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidInputError);
      expect((err as InvalidInputError).field).toBe(c.field);
      expect((err as Error).message.startsWith(`${c.field}: `)).toBe(true);
      return;
    }
    const script = cmdOf(built);
    const benignBuilt = c.build(c.benign);
    if (c.field === 'password') {
      // Secrets travel only as stdin: the script is the benign one, byte for byte, without the value.
      expect(script).toBe(cmdOf(benignBuilt));
      expect(script).not.toContain(p);
      expect(psTokenize(script).literals.some((l) => l.includes(p))).toBe(false);
      expect(stdinOf(built)).toBe(p);
      return;
    }
    const benign = psTokenize(cmdOf(benignBuilt));
    const got = psTokenize(script);
    // Same code around the literals, statement for statement ...
    expect(got.skeleton).toBe(benign.skeleton);
    // ... and each literal is the benign one with the value swapped, so the payload is data.
    expect(got.literals).toEqual(benign.literals.map((l) => l.replaceAll(c.benign, () => p)));
    expect(got.literals.some((l) => l.includes(p))).toBe(true);
    expect(stdinOf(built)).toBe(stdinOf(benignBuilt));
  });
});

// ---------------------------------------------------------------------------------------------
// PowerShell script shapes (what the WS-Man stand-in parses)
// ---------------------------------------------------------------------------------------------

describe('PowerShell script shapes', () => {
  it('createUser uses the New-LocalUser form on one line, the password read from stdin', () => {
    const c = windows.createUser({ username: "O'Brien", fullName: 'Seán O’Brien', description: 'GPU box', passwordNeverExpires: true });
    const lines = c.script.trimEnd().split('\n');
    expect(lines[0]).toBe("$ErrorActionPreference = 'Stop'");
    expect(lines).toContain(
      "New-LocalUser -Name 'O''Brien' -Password (ConvertTo-SecureString $HostflowStdin -AsPlainText -Force) -FullName 'Seán O’’Brien' -Description 'GPU box' -PasswordNeverExpires",
    );
    expect(windows.createUser({ username: 'bob', fullName: 'Bob' }).script).toContain(
      "New-LocalUser -Name 'bob' -Password (ConvertTo-SecureString $HostflowStdin -AsPlainText -Force) -FullName 'Bob'\n",
    );
  });

  it('addToGroups checks groups first and treats "already a member" as success', () => {
    const s = windows.addToGroups('bob', ['Remote Desktop Users', 'Administrators']);
    const lines = s.split('\n');
    expect(lines).toContain("  Add-LocalGroupMember -Group 'Remote Desktop Users' -Member 'bob'");
    expect(lines).toContain("  Add-LocalGroupMember -Group 'Administrators' -Member 'bob'");
    expect(lines).toContain('catch [Microsoft.PowerShell.Commands.MemberExistsException] {');
    expect(s.indexOf('Get-LocalGroup')).toBeLessThan(s.indexOf('Add-LocalGroupMember'));
  });

  it('other builders use the documented one-line cmdlet forms', () => {
    expect(windows.disableUser('bob')).toContain("\nDisable-LocalUser -Name 'bob'\n");
    expect(windows.enableUser('bob')).toContain("\nEnable-LocalUser -Name 'bob'\n");
    expect(windows.deleteUser('bob')).toContain("\nRemove-LocalUser -Name 'bob'\n");
    expect(windows.setPassword('bob').script).toContain("\nSet-LocalUser -Name 'bob' -Password (ConvertTo-SecureString $HostflowStdin -AsPlainText -Force)\n");
    // "Absent" only on Windows' own not-found error; nothing else is silenced.
    expect(windows.userExists('bob')).toContain("\ntry {\n  $u = Get-LocalUser -Name 'bob'\n}\ncatch [Microsoft.PowerShell.Commands.UserNotFoundException] {\n  Write-Output 'HOSTFLOW_NO_SUCH_USER bob'\n  exit 1\n}\n");
    expect(windows.userExists('bob')).not.toContain('SilentlyContinue');
    expect(windows.deleteUser('bob', { removeProfile: true })).not.toContain('SilentlyContinue');
    expect(windows.deleteUser('bob', { removeProfile: true })).toContain(
      "\n$p = Get-CimInstance -ClassName Win32_UserProfile -Filter ('SID = ''' + $u.SID + '''')\nif ($null -ne $p) {\n  Remove-CimInstance -InputObject $p\n",
    );
    const del = windows.deleteUser('bob', { removeProfile: true });
    expect(del.indexOf('Remove-CimInstance')).toBeLessThan(del.indexOf('Remove-LocalUser'));
    expect(windows.userGroups('bob')).toContain("\n  if ($null -ne (Get-LocalGroupMember -Group $g.Name -Member 'bob' -ErrorAction SilentlyContinue)) {\n");
    expect(windows.userGroups('bob')).toContain("Write-Output ('HOSTFLOW_MEMBER_OF ' + $g.Name)");
    // Every script: the Stop preference first, then one statement per line (no `;` separators).
    const all = [
      windows.userExists('bob'),
      windows.createUser({ username: 'bob', fullName: 'Bob' }).script,
      windows.setPassword('bob').script,
      windows.addToGroups('bob', ['Users']),
      windows.userGroups('bob'),
      windows.deleteUser('bob', { removeProfile: true }),
    ];
    for (const s of all) {
      expect(s.split('\n')[0]).toBe("$ErrorActionPreference = 'Stop'");
      expect(psTokenize(s).skeleton).not.toContain(';');
    }
  });

  it('keeps to the small grammar documented in windows.ts', () => {
    const grammar = [
      /^\$ErrorActionPreference = <S>$/,
      /^New-LocalUser -Name <S> -Password \(ConvertTo-SecureString \$HostflowStdin -AsPlainText -Force\) -FullName <S>( -Description <S>)?( -PasswordNeverExpires)?$/,
      /^Set-LocalUser -Name <S> -Password \(ConvertTo-SecureString \$HostflowStdin -AsPlainText -Force\)$/,
      /^Add-LocalGroupMember -Group <S> -Member <S>$/,
      /^(Disable|Enable|Remove)-LocalUser -Name <S>$/,
      /^Write-Output <S>$/,
      /^Write-Output \(<S> \+ \$g\.Name\)$/,
      /^exit \d+$/,
      /^if \(\$null -(eq|ne) \(Get-Local(User|Group) -Name <S> -ErrorAction SilentlyContinue\)\) \{$/,
      /^if \(\$null -ne \(Get-LocalGroupMember -Group \$g\.Name -Member <S> -ErrorAction SilentlyContinue\)\) \{$/,
      /^foreach \(\$g in Get-LocalGroup\) \{$/,
      /^\}$/,
      /^try \{$/,
      /^catch \[Microsoft\.PowerShell\.Commands\.(MemberExistsException|UserNotFoundException)\] \{$/,
      /^\$u = Get-LocalUser -Name <S>$/,
      /^\$p = Get-CimInstance -ClassName Win32_UserProfile -Filter \(<S> \+ \$u\.SID \+ <S>\)$/,
      /^if \(\$null -ne \$p\) \{$/,
      /^Remove-CimInstance -InputObject \$p$/,
    ];
    const scripts = [
      windows.userExists('bob'),
      windows.createUser({ username: 'bob', fullName: 'Bob', description: 'd', passwordNeverExpires: true }).script,
      windows.createUser({ username: 'bob', fullName: 'Bob' }).script,
      windows.addToGroups('bob', ['Users', 'Remote Desktop Users']),
      windows.disableUser('bob'),
      windows.enableUser('bob'),
      windows.setPassword('bob').script,
      windows.deleteUser('bob'),
      windows.deleteUser('bob', { removeProfile: true }),
      windows.userGroups('bob'),
    ];
    for (const s of scripts) {
      for (const line of psTokenize(s).skeleton.split('\n').map((l) => l.trim()).filter(Boolean)) {
        expect(grammar.some((re) => re.test(line)), line).toBe(true);
      }
    }
  });

  it('refuses a description longer than New-LocalUser allows', () => {
    expect(() => windows.createUser({ username: 'bob', fullName: 'Bob', description: 'x'.repeat(49) })).toThrow(
      'description: description of a Windows account must be at most 48 characters',
    );
  });

  it('never puts the password in the script: it is the stdin, validated', () => {
    const pw = "Zz9'‘quoted’$(x)";
    for (const c of [windows.setPassword('bob'), windows.createUser({ username: 'bob', fullName: 'Bob' })]) {
      expect(c.stdin(pw)).toBe(pw);
      expect(c.script).not.toContain(pw);
      expect(c.script).not.toContain('Zz9');
      expect(psTokenize(c.script).literals).not.toContain(pw);
      expect(psTokenize(c.script).skeleton).toContain('-Password (ConvertTo-SecureString $HostflowStdin -AsPlainText -Force)');
      for (const bad of ['short1!', 'line\nbreak#1A', 'x'.repeat(128)]) {
        expect(() => c.stdin(bad)).toThrow(InvalidInputError);
      }
    }
    // The script does not depend on the password at all.
    expect(windows.setPassword('bob').script).toBe(windows.setPassword('bob').script);
  });
});

// ---------------------------------------------------------------------------------------------
// (c) Linux scripts on the stub host: behaviour and secrecy
// ---------------------------------------------------------------------------------------------

describe('Linux scripts on a stub host', () => {
  let stub: Stub;
  beforeAll(() => {
    stub = makeStubHost();
  });
  afterAll(() => rmSync(stub.root, { recursive: true, force: true }));
  beforeEach(() => stub.reset());

  it('setPassword never puts the password in the command line; it travels through stdin to chpasswd', () => {
    for (const pw of ['Secret#12345', "it's $(reboot) `x`", 'p:w:with:colons', 'StdinPass#123']) {
      const sp = linux.setPassword('alice');
      expect(sp.script).not.toContain(pw);
      expect(sp.script.startsWith('sudo -n sh -c ')).toBe(true);
      stub.reset();
      const r = stub.run(sp.script, { input: sp.stdin(pw), users: ['alice'] });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe('HOSTFLOW_PASSWORD_SET alice\n');
      expect(readFileSync(join(stub.root, 'chpasswd.stdin'), 'utf8')).toBe(`alice:${pw}\n`);
      expect(stub.calls().find((a) => a[0] === 'chpasswd')).toEqual(['chpasswd']);
      expect(JSON.stringify(stub.calls())).not.toContain(pw);
      expect(r.stderr).not.toContain(pw);
    }
    expect(() => linux.setPassword('alice').stdin('a\nroot:x')).toThrow(/password: .*control/);
  });

  it('setPassword refuses stdin for another user and a missing user', () => {
    const sp = linux.setPassword('alice');
    const r = stub.run(sp.script, { input: 'root:owned\n', users: ['alice', 'root'] });
    expect(r.status).toBe(linux.LINUX_EXIT.BAD_INPUT);
    expect(existsSync(join(stub.root, 'chpasswd.stdin'))).toBe(false);
    const r2 = stub.run(sp.script, { input: sp.stdin('Secret#12345'), users: [] });
    expect(r2.status).toBe(linux.LINUX_EXIT.NO_SUCH_USER);
    expect(r2.stdout).toBe('HOSTFLOW_NO_SUCH_USER alice\n');
  });

  it('userExists exits 0 / 1 and needs no sudo', () => {
    expect(linux.userExists('alice').startsWith('sh -c ')).toBe(true);
    expect(stub.run(linux.userExists('alice'), { users: ['alice'] }).status).toBe(0);
    expect(stub.run(linux.userExists('alice'), { users: ['bob'] }).status).toBe(1);
  });

  it('createUser fails clearly on missing groups and changes nothing', () => {
    const cmd = linux.createUser({ username: 'alice', fullName: 'Alice', groups: ['video', 'gpu', 'cuda'], markerRef: 'account-opening/r1' });
    const r = stub.run(cmd, { groups: ['video'] });
    expect(r.status).toBe(linux.LINUX_EXIT.MISSING_GROUP);
    expect(linux.parseMarkers(r.stdout)).toEqual([
      { marker: 'MISSING_GROUP', value: 'gpu' },
      { marker: 'MISSING_GROUP', value: 'cuda' },
    ]);
    expect(stub.calls().some((a) => a[0] === 'useradd')).toBe(false);
    expect(existsSync(join(stub.root, 'markers', 'alice'))).toBe(false);
  });

  it('createUser runs useradd with joined groups and writes the platform marker', () => {
    const cmd = linux.createUser({ username: 'alice', fullName: 'Alice Liddell', groups: ['video', 'render'], markerRef: 'account-opening/r1' });
    const r = stub.run(cmd, { groups: ['video', 'render'] });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('HOSTFLOW_USER_CREATED alice\n');
    expect(stub.calls().find((a) => a[0] === 'useradd')).toEqual(['useradd', '-m', '-s', '/bin/bash', '-c', 'Alice Liddell', '-G', 'video,render', '--', 'alice']);
    expect(readFileSync(join(stub.root, 'markers', 'alice'), 'utf8')).toBe('account-opening/r1\n');
    const again = stub.run(cmd, { users: ['alice'], groups: ['video', 'render'] });
    expect(again.status).toBe(linux.LINUX_EXIT.USER_EXISTS);
    expect(again.stdout).toBe('HOSTFLOW_USER_EXISTS alice\n');
  });

  it('createUser without groups omits -G; a missing shell is reported', () => {
    stub.run(linux.createUser({ username: 'alice', fullName: 'Alice' }));
    expect(stub.calls().find((a) => a[0] === 'useradd')).toEqual(['useradd', '-m', '-s', '/bin/bash', '-c', 'Alice', '--', 'alice']);
    const r = stub.run(linux.createUser({ username: 'alice', fullName: 'Alice', shell: '/bin/nonexistent-shell' }));
    expect(r.status).toBe(linux.LINUX_EXIT.MISSING_SHELL);
  });

  it('addToGroups adds only the groups the user is not in yet', () => {
    const r = stub.run(linux.addToGroups('alice', ['video', 'docker-gpu']), { users: ['alice'], groups: ['video', 'docker-gpu'], idGroups: 'alice video' });
    expect(r.status, r.stderr).toBe(0);
    expect(linux.parseMarkers(r.stdout)).toEqual([
      { marker: 'ALREADY_MEMBER', value: 'video' },
      { marker: 'ADDED_GROUP', value: 'docker-gpu' },
    ]);
    expect(stub.calls().find((a) => a[0] === 'usermod')).toEqual(['usermod', '-aG', 'docker-gpu', '--', 'alice']);
    stub.reset();
    const none = stub.run(linux.addToGroups('alice', ['video']), { users: ['alice'], groups: ['video'], idGroups: 'alice video' });
    expect(none.status).toBe(0);
    expect(stub.calls().some((a) => a[0] === 'usermod')).toBe(false);
  });

  it('lock, unlock and delete call usermod/userdel as documented; delete is idempotent', () => {
    stub.run(linux.lockUser('alice'), { users: ['alice'] });
    stub.run(linux.unlockUser('alice'), { users: ['alice'] });
    stub.run(linux.deleteUser('alice', { removeHome: true }), { users: ['alice'] });
    stub.run(linux.deleteUser('alice', { removeHome: false }), { users: ['alice'] });
    expect(stub.calls().filter((a) => a[0] === 'usermod' || a[0] === 'userdel')).toEqual([
      ['usermod', '-L', '-e', '1', '--', 'alice'],
      ['usermod', '-U', '-e', '', '--', 'alice'],
      ['userdel', '-r', '--', 'alice'],
      ['userdel', '--', 'alice'],
    ]);
    const gone = stub.run(linux.deleteUser('alice', { removeHome: true }), { users: [] });
    expect(gone.status).toBe(0);
    expect(gone.stdout).toBe('HOSTFLOW_NO_SUCH_USER alice\n');
    expect(stub.run(linux.lockUser('alice'), { users: [] }).status).toBe(linux.LINUX_EXIT.NO_SUCH_USER);
  });

  it('parseTenantFootprint separates work from SSH connection handlers and reads every category; footprintLeftovers names what is left by count', () => {
    const f = linux.parseTenantFootprint(
      [
        'HOSTFLOW_UID 1500',
        'HOSTFLOW_PROC 10 sshd',
        'HOSTFLOW_PROC 11 python3',
        'HOSTFLOW_PROC 12 tmux: server',
        'HOSTFLOW_GPU 11 /usr/bin/python3',
        'HOSTFLOW_CONTAINER abc123 1500 yes pytorch/pytorch:2.3',
        'HOSTFLOW_CONTAINER def456 ? no nvidia/dcgm-exporter',
        'HOSTFLOW_SESSION pts/3',
        'HOSTFLOW_LINGER',
        'HOSTFLOW_NO_SYSTEMD',
        'HOSTFLOW_USER_UNIT_ENABLED train.service',
        'HOSTFLOW_AT 7',
        'HOSTFLOW_CRONTAB /var/spool/cron/crontabs/bob',
        'HOSTFLOW_FILE /data/bob/x',
        'HOSTFLOW_FILES 3 truncated',
        'noise',
      ].join('\n'),
    );
    expect(f).toMatchObject({
      userExists: true,
      uid: 1500,
      processes: [{ pid: 11, comm: 'python3' }, { pid: 12, comm: 'tmux: server' }],
      sshConnections: 1,
      gpuProcesses: [{ pid: 11, name: '/usr/bin/python3' }],
      containers: [
        { id: 'abc123', ownerUid: 1500, attributed: true, image: 'pytorch/pytorch:2.3' },
        { id: 'def456', ownerUid: null, attributed: false, image: 'nvidia/dcgm-exporter' },
      ],
      sessions: ['pts/3'],
      linger: true,
      enabledUserUnits: ['train.service'],
      atJobs: ['7'],
      crontabs: ['/var/spool/cron/crontabs/bob'],
      files: { count: 3, status: 'truncated', sample: ['/data/bob/x'] },
      unavailable: ['systemd'],
    });
    expect(linux.footprintLeftovers(f)).toEqual({
      account: 1, processes: 3, 'gpu-processes': 1, containers: 1, sessions: 1, linger: 1, 'user-units': 1, 'at-jobs': 1, crontab: 1, files: 3,
    });
    // A deleted user's at jobs show as "???" in atq: the spool files owned by the uid count.
    const gone = linux.parseTenantFootprint('HOSTFLOW_NO_SUCH_USER bob\nHOSTFLOW_UID 1500\nHOSTFLOW_AT_FILE a0000201c8c799\nHOSTFLOW_FILES 0 complete\n');
    expect(linux.footprintLeftovers(gone)).toEqual({ 'at-jobs': 1 });
    expect(linux.footprintLeftovers(linux.parseTenantFootprint('HOSTFLOW_NO_SUCH_USER bob\n'))).toEqual({});
    expect(linux.footprintLeftovers(linux.parseTenantFootprint('HOSTFLOW_NO_SUCH_USER bob\nHOSTFLOW_UID 1500\nHOSTFLOW_FILES 0 timed-out\n'))).toEqual({ 'files-scan-timed-out': 1 });
    expect(() => linux.cleanupUserLeftovers(U, 0)).toThrow(/uid/);
    expect(() => linux.endTenantActivity({ username: U, uid: 0 })).toThrow(/^uid: /);
    expect(() => linux.tenantFootprint({ username: U, uid: 999 })).toThrow(/^uid: /);
    expect(() => linux.removeTenantFiles({ username: U, uid: 1.5 })).toThrow(/^uid: /);
  });

  it('tenantFootprint and endTenantActivity refuse system uids on the host too, and look by uid when the account is gone', () => {
    // The stub host's getent says every listed user has uid 1000; with a known uid of 999 for a gone user the script refuses.
    const sys = stub.run(linux.tenantFootprint({ username: 'bob' }).replace("uid=$2 alloc=$3", "uid=999 alloc=$3"), { users: [] });
    expect(sys.stdout).toContain('HOSTFLOW_SYSTEM_UID 999');
    expect(sys.status).toBe(linux.LINUX_EXIT.BAD_INPUT);
    const gone = stub.run(linux.endTenantActivity({ username: 'bob' }), { users: [] });
    expect([gone.status, gone.stdout]).toEqual([0, 'HOSTFLOW_NO_SUCH_USER bob\n']);
    expect(stub.calls().some((a) => a[0] === 'pkill')).toBe(false);
  });

  it('a gone account whose recorded uid another account owns now: nothing of that uid is counted, stopped or killed', () => {
    // The stub host's getent gives uid 1000 to its first listed user (carol): bob's recorded uid was handed out again.
    const f = stub.run(linux.tenantFootprint({ username: 'bob', uid: 1000, allocationId: ALLOC, files: 'everywhere' }), { users: ['carol'] });
    expect([f.status, f.stdout]).toEqual([0, 'HOSTFLOW_NO_SUCH_USER bob\nHOSTFLOW_UID_REASSIGNED 1000 carol\n']);
    expect(stub.calls().map((a) => a[0])).not.toContain('ps');
    const parsed = linux.parseTenantFootprint(f.stdout);
    expect(parsed).toMatchObject({ userExists: false, uid: null, uidReassigned: { uid: 1000, owner: 'carol' }, processes: [], files: { count: 0, status: 'not-scanned' } });
    expect(linux.footprintLeftovers(parsed)).toEqual({});
    stub.reset();
    const end = stub.run(linux.endTenantActivity({ username: 'bob', uid: 1000 }), { users: ['carol'] });
    expect([end.status, end.stdout]).toEqual([0, 'HOSTFLOW_NO_SUCH_USER bob\nHOSTFLOW_UID_REASSIGNED 1000 carol\n']);
    expect(stub.calls().some((a) => a[0] === 'pkill' || a[0] === 'ps')).toBe(false);
    // Still free (no account has it): the uid is looked for as before.
    stub.reset();
    const free = stub.run(linux.tenantFootprint({ username: 'bob', uid: 1000, allocationId: ALLOC }), { users: [] });
    expect(free.status, free.stderr).toBe(0);
    expect(linux.parseTenantFootprint(free.stdout)).toMatchObject({ userExists: false, uid: 1000, uidReassigned: null });
    expect(stub.calls().map((a) => a[0])).toContain('ps');
    // The account itself (same name) holds the uid: not a reassignment.
    stub.reset();
    const same = linux.parseTenantFootprint(stub.run(linux.tenantFootprint({ username: 'carol', uid: 1000, allocationId: ALLOC }), { users: ['carol'] }).stdout);
    expect(same).toMatchObject({ userExists: true, uid: 1000, uidReassigned: null });
  });

  it('containers: attributed by the hostflow.allocation label or by the uid of their main process; only those are removed', () => {
    // This machine has no docker daemon: stub docker and ps for this case (three running containers).
    const bin = join(stub.root, 'bin');
    const psBefore = readFileSync(join(bin, 'ps'), 'utf8');
    const log = psBefore.split('\n')[1];
    writeFileSync(join(bin, 'docker'), `#!/bin/sh\n${log}\ncase $1 in\n  ps) printf 'c1\\nc2\\nc3\\n' ;;\n  inspect) case $4 in\n    c1) echo '910001|${ALLOC}|pytorch/pytorch:2.3' ;;\n    c2) echo '910002||user/trainer:1' ;;\n    c3) echo '910003||nvidia/dcgm-exporter' ;;\n  esac ;;\n  rm) exit 0 ;;\nesac\n`);
    chmodSync(join(bin, 'docker'), 0o755);
    writeFileSync(join(bin, 'ps'), `#!/bin/sh\n${log}\ncase "$*" in\n  '-o uid= -p 910001') echo '    0' ;;\n  '-o uid= -p 910002') echo ' 1000' ;;\n  '-o uid= -p 910003') echo '    0' ;;\nesac\n`);
    try {
      const f = stub.run(linux.tenantFootprint({ username: 'alice', allocationId: ALLOC }), { users: ['alice'] });
      expect(f.status, f.stderr).toBe(0);
      const parsed = linux.parseTenantFootprint(f.stdout);
      expect(parsed.containers).toEqual([
        { id: 'c1', ownerUid: 0, attributed: true, image: 'pytorch/pytorch:2.3' },
        { id: 'c2', ownerUid: 1000, attributed: true, image: 'user/trainer:1' },
        { id: 'c3', ownerUid: 0, attributed: false, image: 'nvidia/dcgm-exporter' },
      ]);
      expect(linux.footprintLeftovers(parsed)).toMatchObject({ containers: 2 });
      // Another allocation's label does not make c1 this tenant's.
      const other = linux.parseTenantFootprint(stub.run(linux.tenantFootprint({ username: 'alice', allocationId: '00000000-0000-4000-8000-000000000000' }), { users: ['alice'] }).stdout);
      expect(other.containers.map((c) => c.attributed)).toEqual([false, true, false]);
      stub.reset();
      const end = stub.run(linux.endTenantActivity({ username: 'alice', allocationId: ALLOC }), { users: ['alice'] });
      expect(end.status, end.stderr).toBe(0);
      expect(linux.parseMarkers(end.stdout).filter((m) => m.marker === 'CONTAINER_REMOVED').map((m) => m.value)).toEqual(['c1', 'c2']);
      expect(stub.calls().filter((a) => a[0] === 'docker' && a[1] === 'rm')).toEqual([
        ['docker', 'rm', '-f', 'c1'],
        ['docker', 'rm', '-f', 'c2'],
      ]);
    } finally {
      rmSync(join(bin, 'docker'));
      writeFileSync(join(bin, 'ps'), psBefore);
    }
  });

  it('lockUser with expirePassword also expires the password (chage -d 0)', () => {
    stub.run(linux.lockUser('alice', { expirePassword: true }), { users: ['alice'] });
    expect(stub.calls().filter((a) => a[0] === 'usermod' || a[0] === 'chage')).toEqual([
      ['usermod', '-L', '-e', '1', '--', 'alice'],
      ['chage', '-d', '0', '--', 'alice'],
    ]);
  });

  it('killUserProcesses tolerates "no process matched" and passes other failures on', () => {
    const cmd = linux.killUserProcesses('alice', 'KILL');
    const none = stub.run(cmd, { users: ['alice'], pkillRc: 1 });
    expect(none.status).toBe(0);
    expect(none.stdout).toBe('HOSTFLOW_NO_PROCESSES\n');
    expect(stub.calls().find((a) => a[0] === 'pkill')).toEqual(['pkill', '-KILL', '-u', 'alice']);
    expect(stub.run(cmd, { users: ['alice'], pkillRc: 0 }).stdout).toBe('HOSTFLOW_SIGNALLED KILL\n');
    expect(stub.run(cmd, { users: ['alice'], pkillRc: 3 }).status).toBe(3);
    expect(() => linux.killUserProcesses('alice', 'HUP' as linux.KillSignal)).toThrow('signal: signal must be TERM or KILL');
  });

  it('userGroups runs id -nG for the user', () => {
    const g = stub.run(linux.userGroups('alice'), { users: ['alice'], idGroups: 'alice video render' });
    expect(g.stdout.split(/\s+/).filter(Boolean)).toEqual(['alice', 'video', 'render']);
  });

  it('platform marker: createUser writes it, readMarker reads it', () => {
    expect(linux.parseMarkerOutput(stub.run(linux.readMarker('bob')).stdout)).toBeNull();
    expect(stub.run(linux.createUser({ username: 'bob', fullName: 'Bob', markerRef: 'lease/alloc-42' })).status).toBe(0);
    expect(linux.parseMarkerOutput(stub.run(linux.readMarker('bob')).stdout)).toBe('lease/alloc-42');
    expect(() => linux.createUser({ username: 'bob', fullName: 'Bob', markerRef: 'a b' })).toThrow(/^markerRef: marker reference must be/);
  });

  it('authorized keys: append is idempotent and leaves other lines; removal by fingerprint or key', () => {
    const home = join(stub.root, 'home', 'alice');
    mkdirSync(join(home, '.ssh'), { recursive: true });
    const file = join(home, '.ssh', 'authorized_keys');
    writeFileSync(file, '# managed by hand\nrestrict ' + KEY1 + ' old-comment'); // no trailing newline
    expect(linux.parseSshPublicKey(KEY1).fingerprint).toBe(KEY1_FP);
    expect(linux.parseSshPublicKey(`${KEY2} me@laptop`).fingerprint).toBe(KEY2_FP);

    const add = linux.addAuthorizedKeys('alice', [`${KEY1} new-comment`, `${KEY2} me@laptop`]);
    expect(add.script).not.toContain('AAAA');
    const r = stub.run(add.script, { input: add.stdin, users: ['alice'] });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('HOSTFLOW_KEY_PRESENT 0\nHOSTFLOW_KEY_ADDED 1\n');
    const after = `# managed by hand\nrestrict ${KEY1} old-comment\n${KEY2} me@laptop\n`;
    expect(readFileSync(file, 'utf8')).toBe(after);
    expect(stub.run(add.script, { input: add.stdin, users: ['alice'] }).stdout).toBe('HOSTFLOW_KEY_PRESENT 0\nHOSTFLOW_KEY_PRESENT 1\n');
    expect(readFileSync(file, 'utf8')).toBe(after);
    expect(stub.calls().find((a) => a[0] === 'sudo' && a.includes('-u'))?.slice(0, 5)).toEqual(['sudo', '-n', '-u', 'alice', '--']);

    const rmNone = linux.removeAuthorizedKeys('alice', ['SHA256:' + 'A'.repeat(43)]);
    expect(stub.run(rmNone.script, { input: rmNone.stdin, users: ['alice'] }).stdout).toBe('');
    expect(readFileSync(file, 'utf8')).toBe(after);

    const rm = linux.removeAuthorizedKeys('alice', [KEY1_FP, `${KEY2} other-comment`]);
    const rr = stub.run(rm.script, { input: rm.stdin, users: ['alice'] });
    expect(rr.status, rr.stderr).toBe(0);
    expect(linux.parseMarkers(rr.stdout)).toEqual([
      { marker: 'KEY_REMOVED', value: KEY1_FP },
      { marker: 'KEY_REMOVED', value: KEY2_FP },
    ]);
    expect(readFileSync(file, 'utf8')).toBe('# managed by hand\n');
  });

  it('authorized keys: an add and a removal running at the same time both take effect (flock)', () => {
    const home = join(stub.root, 'home', 'alice');
    mkdirSync(join(home, '.ssh'), { recursive: true });
    const file = join(home, '.ssh', 'authorized_keys');
    const add = linux.addAuthorizedKeys('alice', [`${KEY2} me@laptop`]);
    const rm = linux.removeAuthorizedKeys('alice', [KEY1_FP]);
    writeFileSync(join(stub.root, 'add.in'), add.stdin);
    writeFileSync(join(stub.root, 'rm.in'), rm.stdin);
    // Widen the window: the removal has read the file and waits 0.3 s before its atomic rename;
    // the add starts 0.1 s after it. Unserialised, the rename would drop the added key.
    const slowMv = join(stub.root, 'bin', 'mv');
    writeFileSync(slowMv, '#!/bin/sh\nsleep 0.3\nexec /bin/mv "$@"\n');
    chmodSync(slowMv, 0o755);
    try {
      for (let i = 0; i < 3; i++) {
        writeFileSync(file, `${KEY1} old\n`);
        const r = stub.run(`(${rm.script}) < "$HF_ROOT/rm.in" > /dev/null & sleep 0.1; (${add.script}) < "$HF_ROOT/add.in" > /dev/null & wait`, { users: ['alice'] });
        expect(r.status, r.stderr).toBe(0);
        expect(readFileSync(file, 'utf8'), `round ${i}`).toBe(`${KEY2} me@laptop\n`);
      }
    } finally {
      rmSync(slowMv);
    }
  });

  it('authorized keys: refuses malformed keys and reports a missing user', () => {
    expect(() => linux.addAuthorizedKeys('alice', ['ssh-dss AAAAB3NzaC1kc3M='])).toThrow(/^keys\[0\]: SSH public key must be one line/);
    expect(() => linux.addAuthorizedKeys('alice', ['ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAAAgQDsjbTRvSWc'])).toThrow(/is not a valid ssh-ed25519 key/);
    expect(() => linux.addAuthorizedKeys('alice', [])).toThrow(/at least one key/);
    const add = linux.addAuthorizedKeys('alice', [KEY1]);
    const r = stub.run(add.script, { input: add.stdin, users: [] });
    expect(r.status).toBe(linux.LINUX_EXIT.NO_SUCH_USER);
  });
});
