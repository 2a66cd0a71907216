import { describe, expect, it } from 'vitest';
import { createDecipheriv } from 'node:crypto';
import { deployVnc, generateVncPassword, removeVnc, restartVnc, vncAuthResponse, vncPasswordFile, writeVncPassword } from '../../activities/remote/vnc.js';
import { InvalidInputError } from '../../activities/remote/validation.js';

describe('VNC auto-deployment command builders and password formats (pure)', () => {
  it("writes vncpasswd's file format: the well-known obfuscation of 'password' is dbd83cfd727a1458", () => {
    expect(vncPasswordFile('password').toString('hex')).toBe('dbd83cfd727a1458');
    // Longer than 8 characters is refused (VNC authentication would silently use only 8).
    expect(() => vncPasswordFile('123456789')).toThrow(InvalidInputError);
    expect(() => vncPasswordFile('pw\n12345')).toThrow(InvalidInputError);
  });

  it('answers a VNC Authentication challenge with DES under the bit-reversed password (RFC 6143 §7.2.2)', () => {
    const challenge = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const r = vncAuthResponse('secret12', challenge);
    expect(r).toHaveLength(16);
    // Decrypting with the bit-reversed key gives the challenge back; a different password does not.
    const rev = Buffer.from('secret12', 'latin1').map((b) => parseInt(b.toString(2).padStart(8, '0').split('').reverse().join(''), 2));
    const d = createDecipheriv('des-ede-ecb', Buffer.concat([rev, rev]), null);
    d.setAutoPadding(false);
    expect(Buffer.concat([d.update(r), d.final()]).equals(challenge)).toBe(true);
    expect(vncAuthResponse('secret13', challenge).equals(r)).toBe(false);
  });

  it('generates 8-character passwords from letters and digits', () => {
    const seen = new Set(Array.from({ length: 50 }, () => generateVncPassword()));
    for (const p of seen) expect(p).toMatch(/^[A-Za-z0-9]{8}$/);
    expect(seen.size).toBe(50);
  });

  it('keeps the username a quoted argument and the password out of the command line', () => {
    for (const bad of ['a;id', '$(id)', 'x y', "o'neil", '-rf', 'root']) {
      expect(() => deployVnc(bad, vncPasswordFile('abcdefgh'))).toThrow(InvalidInputError);
      expect(() => removeVnc(bad)).toThrow(InvalidInputError);
      expect(() => writeVncPassword(bad, vncPasswordFile('abcdefgh'))).toThrow(InvalidInputError);
      expect(() => restartVnc(bad)).toThrow(InvalidInputError);
    }
    const file = vncPasswordFile('abcdefgh');
    const cmd = deployVnc('ana', file);
    expect(cmd.script.startsWith("sudo -n sh -c '")).toBe(true);
    expect(cmd.script.endsWith(" 'hostflow-vnc-deploy' 'ana'")).toBe(true);
    expect(cmd.script).not.toContain('abcdefgh');
    expect(cmd.script).not.toContain(file.toString('base64'));
    expect(cmd.stdin).toBe(`${file.toString('base64')}\n`);
    expect(cmd.script).toContain('-rfbauth');
    expect(cmd.script).toContain('-SecurityTypes VncAuth');
    expect(() => deployVnc('ana', Buffer.alloc(7))).toThrow(InvalidInputError);
    expect(removeVnc('ana')).toMatch(/ 'hostflow-vnc-remove' 'ana'$/);
  });
  it('restart: the user and the display are quoted arguments, the password file (if any) only on stdin; a bad display is refused', () => {
    const keep = restartVnc('ana', { display: 12 });
    expect(keep.script.startsWith("sudo -n sh -c '")).toBe(true);
    expect(keep.script.endsWith(" 'hostflow-vnc-restart' 'ana' '12'")).toBe(true);
    expect(keep.stdin).toBe('\n'); // an empty line: keep the password file on the host
    expect(restartVnc('ana').script.endsWith(" 'hostflow-vnc-restart' 'ana' '10'")).toBe(true); // the first display by default
    const file = vncPasswordFile('abcdefgh');
    const rewrite = restartVnc('ana', { display: 12, passwordFile: file });
    expect(rewrite.script).toBe(keep.script); // same command: what changes is stdin
    expect(rewrite.stdin).toBe(`${file.toString('base64')}\n`);
    expect(rewrite.script).not.toContain(file.toString('base64'));
    // The same start as deploy (the platform's Xvnc flags), and it never installs packages.
    expect(keep.script).toContain('-rfbauth');
    expect(keep.script).toContain('-SecurityTypes VncAuth');
    expect(keep.script).not.toContain('apt-get');
    for (const display of [0, 200, 1.5, -1, Number.NaN]) expect(() => restartVnc('ana', { display })).toThrow(InvalidInputError);
    expect(() => restartVnc('ana', { passwordFile: Buffer.alloc(9) })).toThrow(InvalidInputError);
  });
});
