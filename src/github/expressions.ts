/**
 * The Handlebars expressions of docker/metadata-action's tag rules (docs/tag-rules.md#expressions):
 * text with `{{name}}`, `{{name 'arg' key='value'}}` and `{{{name}}}` in it. Only these forms;
 * blocks, partials and whitespace control are refused when the rule is read, not ignored.
 */
export type Param = { kind: 'string'; value: string } | { kind: 'number'; value: number } | { kind: 'path'; name: string };

export type TemplatePart =
  | { kind: 'text'; text: string }
  | { kind: 'comment' }
  | { kind: 'expr'; name: string; params: Param[]; hash: Record<string, Param>; escape: boolean; source: string };

export interface Template {
  source: string;
  parts: TemplatePart[];
}

/** What an expression's name resolves to: a value, or a helper called with its arguments. */
export type Binding = string | number | readonly (string | number)[] | ((params: Param[], hash: Record<string, Param>) => string);
export type Scope = Readonly<Record<string, Binding | undefined>>;

/** Handlebars' identifier characters (its ID token). */
const ID = /^[^\s!"#%-,./;->@[-^`{-~]+/;

export function parseTemplate(source: string): Template {
  const parts: TemplatePart[] = [];
  let text = '';
  let i = 0;
  while (i < source.length) {
    // `\{{` is a literal `{{`, as in Handlebars.
    if (source.startsWith('\\{{', i)) {
      text += '{{';
      i += 3;
      continue;
    }
    if (!source.startsWith('{{', i)) {
      text += source[i];
      i++;
      continue;
    }
    const triple = source.startsWith('{{{', i);
    const close = triple ? '}}}' : '}}';
    const end = source.indexOf(close, i + close.length);
    if (end < 0) throw new Error(`expression ${JSON.stringify(source.slice(i, i + 40))} has no closing ${close}`);
    const inner = source.slice(i + close.length, end);
    const whole = source.slice(i, end + close.length);
    i = end + close.length;
    if (text) parts.push({ kind: 'text', text });
    text = '';
    if (inner.startsWith('!')) {
      parts.push({ kind: 'comment' });
      continue;
    }
    parts.push(parseExpression(inner, whole, !triple));
  }
  if (text) parts.push({ kind: 'text', text });
  return { source, parts };
}

function parseExpression(inner: string, whole: string, escapeIn: boolean): TemplatePart {
  let body = inner;
  let escape = escapeIn;
  if (/^[#/^>~]|~$/.test(body.trim()) || body.startsWith('else')) {
    throw new Error(`${whole}: blocks, partials and whitespace control are not supported; only {{name}}, {{name 'format'}} and {{name 'format' tz='Zone'}}`);
  }
  if (body.startsWith('&')) {
    escape = false;
    body = body.slice(1);
  }
  const tokens: string[] = [];
  let s = body.trim();
  while (s !== '') {
    const m = /^(?:'[^']*'|"[^"]*"|[^\s'"=]+=(?:'[^']*'|"[^"]*"|[^\s'"]+)|[^\s'"]+)/.exec(s);
    if (!m) throw new Error(`${whole}: cannot read ${JSON.stringify(s)} (an unclosed quote?)`);
    tokens.push(m[0]);
    s = s.slice(m[0].length).trimStart();
  }
  const [name, ...args] = tokens;
  if (name === undefined) throw new Error(`${whole}: names nothing`);
  if (!ID.test(name) || ID.exec(name)![0] !== name) throw new Error(`${whole}: ${JSON.stringify(name)} is not a name; paths such as a.b are not supported`);
  const params: Param[] = [];
  const hash: Record<string, Param> = {};
  for (const arg of args) {
    const kv = /^([^\s'"=]+)=(.*)$/s.exec(arg);
    if (kv) {
      if (!ID.test(kv[1]) || ID.exec(kv[1])![0] !== kv[1]) throw new Error(`${whole}: ${JSON.stringify(kv[1])} is not an attribute name`);
      hash[kv[1]] = param(kv[2], whole);
    } else {
      if (Object.keys(hash).length > 0) throw new Error(`${whole}: ${arg} comes after key=value arguments`);
      params.push(param(arg, whole));
    }
  }
  return { kind: 'expr', name, params, hash, escape, source: whole };
}

function param(token: string, whole: string): Param {
  if (/^(['"]).*\1$/s.test(token)) return { kind: 'string', value: token.slice(1, -1) };
  if (/^-?\d+(?:\.\d+)?$/.test(token)) return { kind: 'number', value: Number(token) };
  if (ID.test(token) && ID.exec(token)![0] === token) return { kind: 'path', name: token };
  throw new Error(`${whole}: ${JSON.stringify(token)} is not a quoted string, a number or a name`);
}

/** The names a template uses. */
export const namesIn = (t: Template): string[] => t.parts.flatMap((p) => (p.kind === 'expr' ? [p.name] : []));

/**
 * Render `t` in `scope` as Handlebars does: a helper is called with its arguments, a value is
 * printed, a name the scope lacks prints nothing, and `{{…}}` (not `{{{…}}}`) HTML-escapes.
 */
export function render(t: Template, scope: Scope): string {
  let out = '';
  for (const p of t.parts) {
    if (p.kind === 'text') {
      out += p.text;
      continue;
    }
    if (p.kind === 'comment') continue;
    const b = Object.prototype.hasOwnProperty.call(scope, p.name) ? scope[p.name] : undefined;
    let value: string;
    if (typeof b === 'function') value = b(p.params, p.hash);
    else if (p.params.length > 0 || Object.keys(p.hash).length > 0) throw new Error(`${p.source}: ${p.name} takes no arguments`);
    else value = b === undefined ? '' : String(b);
    out += p.escape ? escapeHtml(value) : value;
  }
  return out;
}

const htmlEscapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;', '`': '&#x60;', '=': '&#x3D;' };
const escapeHtml = (s: string) => s.replace(/[&<>"'`=]/g, (c) => htmlEscapes[c]!);
