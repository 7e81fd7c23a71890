import { rfc3339, type GitInfo } from './git.js';

/**
 * The values ko offers to `flags`/`ldflags` templates (ko's docs/configuration.md,
 * "Templating support"), minus `.GoEnv`, which would need a `go env` run per build.
 */
export interface TemplateData {
  /**
   * `{{.Env.NAME}}`: the build's environment, i.e. the process environment with the build's
   * `env` lines applied on top, as ko gives it.
   */
  env: Readonly<Record<string, string | undefined>>;
  /** The build's created time (docs/image.md#determinism), for `{{.Date}}` and `{{.Timestamp}}`. Never the wall clock. */
  created: Date;
  git: GitInfo;
}

/** Go's template lexer treats exactly these as spaces inside actions and around trim markers. */
const SPACE = ' \t\r\n';
const isSpace = (c: string | undefined) => c !== undefined && SPACE.includes(c);
const trimSpaceEnd = (s: string) => {
  let i = s.length;
  while (i > 0 && isSpace(s[i - 1])) i--;
  return s.slice(0, i);
};
const trimSpaceStart = (s: string) => {
  let i = 0;
  while (i < s.length && isSpace(s[i])) i++;
  return s.slice(i);
};

type Field = (d: TemplateData) => string;

/** Every field we render, by its template name; values print as Go prints them (bools as `true`/`false`). */
const FIELDS: Record<string, Field> = {
  '.Date': (d) => rfc3339(d.created),
  // Go's time.Unix() rounds down, also before 1970.
  '.Timestamp': (d) => String(Math.floor(d.created.getTime() / 1000)),
  '.Git.Branch': (d) => d.git.branch,
  '.Git.Tag': (d) => d.git.tag,
  '.Git.ShortCommit': (d) => d.git.shortCommit,
  '.Git.FullCommit': (d) => d.git.fullCommit,
  '.Git.CommitDate': (d) => d.git.commitDate,
  '.Git.CommitTimestamp': (d) => d.git.commitTimestamp,
  '.Git.IsDirty': (d) => String(d.git.isDirty),
  // Outside a repository the tree is neither clean nor dirty, so both print false there.
  '.Git.IsClean': (d) => String(d.git.treeState === 'clean'),
  '.Git.TreeState': (d) => d.git.treeState,
};

const ENV_FIELD = /^\.Env\.([\p{L}_][\p{L}\p{Nd}_]*)$/u;
const FIELD_CHAIN = /^(\.[\p{L}_][\p{L}\p{Nd}_]*)+$/u;

/**
 * Render one ko-style template: text with `{{.Field}}` actions (spaces and Go's `{{- `/` -}}`
 * trim markers allowed). Anything else Go's text/template could do (pipelines, functions,
 * `if`, comments) is refused rather than passed to `go build` half-rendered.
 *
 * `where` names the template's origin for messages, e.g. `input "ldflags"` or
 * `.ko.yaml builds[1].ldflags`.
 */
export function renderTemplate(text: string, data: TemplateData, where: string): string {
  const fail = (why: string): never => {
    throw new Error(`${where}: template ${JSON.stringify(text)}: ${why}`);
  };
  let out = '';
  let pos = 0;
  for (;;) {
    const open = text.indexOf('{{', pos);
    if (open < 0) {
      out += text.slice(pos);
      return out;
    }
    const close = text.indexOf('}}', open + 2);
    if (close < 0) fail(`"{{" at offset ${open} has no closing "}}"`);
    let inner = text.slice(open + 2, close);
    let literal = text.slice(pos, open);
    // A trim marker is a dash with a space on its inner side; "{{-3}}" would be a number.
    if (inner.startsWith('-') && isSpace(inner[1])) {
      literal = trimSpaceEnd(literal);
      inner = inner.slice(1);
    }
    let trimAfter = false;
    if (inner.endsWith('-') && isSpace(inner[inner.length - 2])) {
      trimAfter = true;
      inner = inner.slice(0, -1);
    }
    out += literal;
    out += evaluate(trimSpaceStart(trimSpaceEnd(inner)), text.slice(open, close + 2), data, fail);
    pos = close + 2;
    if (trimAfter) {
      const rest = text.slice(pos);
      pos += rest.length - trimSpaceStart(rest).length;
    }
  }
}

function evaluate(expr: string, action: string, data: TemplateData, fail: (why: string) => never): string {
  const field = FIELDS[expr];
  if (field) return field(data);
  const env = ENV_FIELD.exec(expr);
  if (env) {
    const name = env[1]!;
    const value = data.env[name];
    if (value !== undefined) return value;
    // ko always defines LDFLAGS (as empty) in its template environment.
    if (name === 'LDFLAGS') return '';
    // ko executes templates with Go's `missingkey=error`, so an unset variable fails the build
    // there ("map has no entry for key"). We fail too rather than print Go's "<no value>" or an
    // empty string into a flag, which would silently build a binary without the intended value.
    return fail(`${action}: environment variable ${JSON.stringify(name)} is not set`);
  }
  if (FIELD_CHAIN.test(expr)) {
    return fail(`${action}: unknown field ${JSON.stringify(expr)}; known fields are .Env.NAME, ${Object.keys(FIELDS).join(', ')}`);
  }
  return fail(`${action}: only fields such as {{.Git.ShortCommit}} or {{.Env.NAME}} are supported, not other template syntax`);
}

/** Render each entry of a list (flags, ldflags); a failure quotes the entry that failed. */
export function renderTemplates(list: readonly string[], data: TemplateData, where: string): string[] {
  return list.map((t) => renderTemplate(t, data, where));
}
