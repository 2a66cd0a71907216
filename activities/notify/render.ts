// `${var}` templates (seed 004 §2.7): substitution only, no expressions, so a template stored by an
// admin cannot run code (lodash.template and friends compile templates to functions). A variable
// the data lacks is an error — a person never receives `${...}` — and every value is escaped for
// the channel it goes out on.

export type Format = 'text' | 'html' | 'mrkdwn' | 'markdown';

export class TemplateError extends Error {
  override name = 'TemplateError';
}

const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** HTML text content and attribute values. */
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
/** Slack mrkdwn: the three characters Slack's docs say to escape (control sequences `<...>`). */
export const escapeMrkdwn = (s: string) => s.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!);
/** Markdown of the IM robots: backslash-escape what would start formatting, a link or HTML. */
export const escapeMarkdown = (s: string) => s.replace(/[\\`*_{}[\]()#+\-!|>~<]/g, (c) => `\\${c}`);

const ESCAPE: Record<Format, (s: string) => string> = { text: (s) => s, html: escapeHtml, mrkdwn: escapeMrkdwn, markdown: escapeMarkdown };

/** The variables a template uses; throws on `${` that is not a well-formed variable. */
export function templateVars(template: string): string[] {
  const used = [...template.matchAll(VAR)].map((m) => m[1]!);
  const rest = template.replace(VAR, '');
  if (rest.includes('${')) throw new TemplateError(`malformed variable near "${rest.slice(rest.indexOf('${'), rest.indexOf('${') + 20)}"`);
  return [...new Set(used)];
}

/** Checks a template against the variables its event offers (used when a template version is saved). */
export function checkTemplate(template: string, allowed: readonly string[]): void {
  const unknown = templateVars(template).filter((v) => !allowed.includes(v));
  if (unknown.length) throw new TemplateError(`unknown variable${unknown.length > 1 ? 's' : ''} ${unknown.map((v) => '${' + v + '}').join(', ')} (this event offers ${allowed.join(', ')})`);
}

/** Renders: the literal text is kept as written (it is the template author's markup), values are escaped. */
export function render(template: string, vars: Record<string, string | number | null | undefined>, format: Format): string {
  templateVars(template);
  return template.replace(VAR, (_, name: string) => {
    const v = vars[name];
    if (v === undefined || v === null) throw new TemplateError(`missing variable \${${name}}`);
    return ESCAPE[format](String(v));
  });
}

/** Plain text → an HTML body (the built-in texts are plain: escape them, keep their line breaks). */
export function textToHtml(subject: string, escapedBody: string): string {
  const paras = escapedBody.split(/\n{2,}/).map((p) => `<p>${p.replace(/\n/g, '<br>')}</p>`).join('\n');
  return `<!doctype html><html><body style="font-family:sans-serif"><h2>${subject}</h2>\n${paras}</body></html>`;
}

/** Escapes a whole plain text for a format (built-in texts are plain, not markup). */
export const escapeFor = (format: Format) => ESCAPE[format];
