import { randomInt } from 'node:crypto';

const LOWER = 'abcdefghijkmnpqrstuvwxyz';
const UPPER = 'ABCDEFGHJKLMNPQRSTUVWXYZ';
const DIGITS = '23456789';
// Symbols that survive any shell, PowerShell and RDP keyboard layout without confusion.
const SYMBOLS = '-_.+=@%';
const ALL = LOWER + UPPER + DIGITS + SYMBOLS;

/**
 * A strong random password (CSPRNG): 20 characters with every class present, which satisfies
 * Windows' complexity rules and Linux pam_pwquality defaults. Generated only inside activities.
 */
export function generatePassword(length = 20): string {
  const chars = [LOWER, UPPER, DIGITS, SYMBOLS].map((set) => set[randomInt(set.length)]!);
  while (chars.length < length) chars.push(ALL[randomInt(ALL.length)]!);
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j]!, chars[i]!];
  }
  return chars.join('');
}
