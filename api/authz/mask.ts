// Column masking at the serializer: response fields marked with `pii(schema, kind)` are masked in
// defineRoute, before the envelope is sent, for principals without `pii.read`. No handler code.
import { z } from 'zod';

/** `recipient`: a message recipient — an e-mail address is masked, `user:<id>` / `endpoint:<id>` are not personal data. */
export type PiiKind = 'email' | 'phone' | 'name' | 'recipient';
export const piiRegistry = z.registry<{ pii: PiiKind }>();

/** Marks a response field as personal data of a kind (and says so in the OpenAPI description). */
export function pii<S extends z.ZodType>(schema: S, kind: PiiKind): S {
  const marked = schema.describe(`${schema.description ? `${schema.description} ` : ''}(personal data: masked without pii.read)`) as S;
  piiRegistry.add(marked, { pii: kind });
  return marked;
}

export function maskEmail(v: string): string {
  const at = v.lastIndexOf('@');
  if (at < 1) return v.length ? `${v[0]}***` : v;
  return `${v[0]}***${v.slice(at)}`;
}

/** `13812341234` → `138****1234`; formatting characters are kept out of the count. */
export function maskPhone(v: string): string {
  const digits = v.replace(/\D/g, '');
  if (digits.length < 7) return '*'.repeat(digits.length);
  return `${v.trim().startsWith('+') ? '+' : ''}${digits.slice(0, 3)}****${digits.slice(-4)}`;
}

export const maskName = (v: string) => (v.length ? `${[...v][0]}${'*'.repeat(Math.max(1, [...v].length - 1))}` : v);

const maskers: Record<PiiKind, (v: string) => string> = { email: maskEmail, phone: maskPhone, name: maskName, recipient: (v) => (/^[^:\s]+@/.test(v) ? maskEmail(v) : v) };

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  innerType?: z.ZodType;
  valueType?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
}

const marksPii = new WeakMap<z.ZodType, boolean>();
/** Does anything in `schema` carry a PII mark? Computed once per schema (response schemas live as long as their route). */
function hasPii(schema: z.ZodType, seen = new Set<z.ZodType>()): boolean {
  const known = marksPii.get(schema);
  if (known !== undefined) return known;
  if (seen.has(schema)) return false;
  seen.add(schema);
  const def = (schema as unknown as { _zod: { def: Def } })._zod.def;
  const children = [...Object.values(def.shape ?? {}), def.element, def.innerType, def.valueType, def.in, ...(def.options ?? [])].filter((c): c is z.ZodType => Boolean(c));
  const found = Boolean(piiRegistry.get(schema)) || children.some((c) => hasPii(c, seen));
  marksPii.set(schema, found);
  return found;
}

/** Returns `value` with every field its schema marks as PII masked (a copy; the input is not changed). */
export function maskBySchema(schema: z.ZodType, value: unknown): unknown {
  if (value === null || value === undefined) return value;
  if (!hasPii(schema)) return value;
  const mark = piiRegistry.get(schema);
  if (mark && typeof value === 'string') return maskers[mark.pii](value);
  const def = (schema as unknown as { _zod: { def: Def } })._zod.def;
  switch (def.type) {
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) return value;
      const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
      for (const [k, s] of Object.entries(def.shape ?? {})) if (k in out) out[k] = maskBySchema(s, out[k]);
      return out;
    }
    case 'array':
      return Array.isArray(value) ? value.map((v) => maskBySchema(def.element!, v)) : value;
    case 'record':
      return typeof value === 'object' ? Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, maskBySchema(def.valueType!, v)])) : value;
    case 'nullable':
    case 'optional':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'nonoptional':
    case 'catch':
      return maskBySchema(def.innerType!, value);
    case 'pipe':
      return maskBySchema(def.in!, value);
    case 'union':
      // The first option that marks anything decides; plain unions of scalars are left alone.
      return (def.options ?? []).reduce<unknown>((v, o) => maskBySchema(o, v), value);
    default:
      return value;
  }
}
