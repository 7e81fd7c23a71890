import semver from 'semver';
import { contextWithPayload } from './context.js';
import { csvRecords, inputItems, type ListItem } from './csv.js';
import { checkFormat, isTimeZone, type DateFormatter } from './dates.js';
import { namesIn, parseTemplate, render, type Param, type Scope, type Template } from './expressions.js';
import { parseFlavor, parseFlavorItems, type Flavor } from './flavor.js';
import { isValidTag } from './tags.js';

/**
 * docker/metadata-action's tag rules (docs/tag-rules.md): `type=semver,pattern={{major}}.{{minor}}`
 * and the like, one per line, evaluated for the run's event with the same results — the same
 * tags in the same order and the same version — plus floating-tag safety (forwardOnly).
 * Reading (parseTagRules) is pure and refuses a malformed rule naming its line and field, before
 * any build; evaluating (evaluateTagRules) is pure given the context.
 */
export const RULE_TYPES = ['schedule', 'semver', 'match', 'edge', 'ref', 'raw', 'sha'] as const;
export type RuleType = (typeof RULE_TYPES)[number];

const ATTRIBUTES = ['pattern', 'value', 'match', 'group', 'event', 'branch', 'format', 'prefix', 'suffix', 'enable', 'priority'] as const;

/** metadata-action's default priorities: a higher one comes first, and the first tag is the version. */
const DEFAULT_PRIORITY: Record<RuleType, string> = { schedule: '1000', semver: '900', match: '800', edge: '700', ref: '600', raw: '200', sha: '100' };

/** Expressions anywhere but a semver or schedule pattern (metadata-action's "global" ones). */
const GLOBAL_NAMES = ['branch', 'tag', 'sha', 'base_ref', 'is_default_branch', 'is_not_default_branch', 'date', 'commit_date'];
/** A semver pattern sees the parsed version's fields. */
const SEMVER_NAMES = ['version', 'major', 'minor', 'patch', 'prerelease', 'build', 'raw'];
const DATE_HELPERS = ['date', 'commit_date'];

export interface TagRule {
  type: RuleType;
  /** The attributes as metadata-action holds them, defaults filled in. */
  attrs: Record<string, string>;
  /** Where the rule is: `input "tags" line 3 "type=…"`. */
  at: string;
  priority: number;
  templates: { value?: Template; pattern?: Template; prefix?: Template; suffix?: Template; enable: Template };
  /** type=match's pattern; type=semver's match. */
  regex?: RegExp;
}

export interface TagRules {
  /** In evaluation order: by priority, highest first; equal ones as given. */
  rules: TagRule[];
  flavor: Flavor;
  flavorTemplates: { prefix: Template; suffix: Template };
  /** Whether `{{commit_date}}` appears anywhere (the commit time is then looked up). */
  usesCommitDate: boolean;
  /** Whether `{{date}}` or `{{commit_date}}` appears anywhere (a date formatter is then needed). */
  usesDates: boolean;
}

/** Whether the `tags` input is tag rules: any line of the form `type=…` (docs/tag-rules.md). */
export function isTagRules(tags: string): boolean {
  return tags.split(/\r?\n/).some((line) => /^\s*"*\s*type\s*=/i.test(line));
}

/** Read the `tags` and `flavor` inputs as metadata-action does. */
export function parseTagRules(tags: string, flavor: string): TagRules {
  return tagRulesOf(inputItems('tags', tags), parseFlavor(flavor), 'input "tags"');
}

/** Rules from items already split into lines (metadata-action's list of tag rules). */
export function tagRulesOf(items: readonly ListItem[], flavor: Flavor, where = 'input "tags"'): TagRules {
  const flavorAt = (field: string) => `input "flavor": ${field}`;
  const flavorTemplates = {
    prefix: checkedTemplate(flavor.prefix, flavorAt('prefix'), 'global'),
    suffix: checkedTemplate(flavor.suffix, flavorAt('suffix'), 'global'),
  };
  const parsed = items.map((item) => parseRule(item, where));
  // Array.prototype.sort is stable: rules of equal priority keep their order, as in metadata-action.
  const rules = parsed.sort((a, b) => b.priority - a.priority);
  const all = [...rules.flatMap((r) => Object.values(r.templates)), flavorTemplates.prefix, flavorTemplates.suffix];
  const uses = (name: string) => all.some((t) => t !== undefined && namesIn(t).includes(name));
  return { rules, flavor, flavorTemplates, usesCommitDate: uses('commit_date'), usesDates: uses('date') || uses('commit_date') };
}

/** One rule, checked: metadata-action's checks, and those that would otherwise fail or be ignored at run time. */
export function parseRule(item: ListItem, where = 'input "tags"'): TagRule {
  const at = `${where} line ${item.line} ${JSON.stringify(item.text)}`;
  const bad = (why: string): never => {
    throw new Error(`${at}: ${why}`);
  };
  let fields: string[];
  try {
    fields = csvRecords(item.text, { relaxQuotes: false, comments: false })[0]?.fields ?? [];
  } catch (err) {
    return bad((err as Error).message);
  }
  const attrs: Record<string, string> = {};
  let type: RuleType | undefined;
  for (const field of fields) {
    // Split at the first `=` only (a value may hold more); a field without one is the value.
    const eq = field.indexOf('=');
    if (eq <= 0) {
      attrs.value = field.trim();
      continue;
    }
    const key = field.slice(0, eq).trim().toLowerCase();
    const value = field.slice(eq + 1).trim();
    if (key === 'type') {
      if (value === 'pep440') bad('type "pep440" (PEP 440 versions) is not supported; use type=semver or type=match');
      if (!(RULE_TYPES as readonly string[]).includes(value)) bad(`type ${JSON.stringify(value)} is not one of ${RULE_TYPES.join(', ')}`);
      type = value as RuleType;
    } else if ((ATTRIBUTES as readonly string[]).includes(key)) {
      attrs[key] = value;
    } else {
      bad(`attribute ${JSON.stringify(field.slice(0, eq).trim())} is not one of type, ${ATTRIBUTES.join(', ')}`);
    }
  }
  type ??= 'raw';
  const has = (k: string) => Object.prototype.hasOwnProperty.call(attrs, k);
  const need = (k: string, why: string) => {
    if (!has(k)) bad(`${k} is missing: ${why}`);
  };
  const oneOf = (k: string, allowed: readonly string[]) => {
    if (!allowed.includes(attrs[k]!)) bad(`${k} ${JSON.stringify(attrs[k])} must be one of ${allowed.join(', ')}`);
  };
  let regex: RegExp | undefined;
  switch (type) {
    case 'schedule':
      if (!has('pattern')) attrs.pattern = 'nightly';
      break;
    case 'semver':
      need('pattern', 'type=semver needs pattern=, e.g. {{version}} or {{major}}.{{minor}}');
      if (!has('value')) attrs.value = '';
      if (!has('match')) attrs.match = '';
      if (attrs.match) {
        regex = compile(attrs.match, (why) => bad(`match ${JSON.stringify(attrs.match)} ${why}`));
        if (new RegExp(`${regex.source}|`).exec('')!.length < 2) bad(`match ${JSON.stringify(attrs.match)} has no capture group; the version is its group 1`);
      }
      break;
    case 'match':
      need('pattern', 'type=match needs pattern=, a regular expression');
      if (!has('group')) attrs.group = '0';
      if (Number.isNaN(Number(attrs.group))) bad(`group ${JSON.stringify(attrs.group)} is not a number`);
      if (!has('value')) attrs.value = '';
      {
        // `/…/flags` is a regular expression literal; anything else is its source.
        const literal = /^\/(.+)\/(.*)$/.exec(attrs.pattern!);
        regex = literal
          ? compile(literal[1]!, (why) => bad(`pattern ${JSON.stringify(attrs.pattern)} ${why}`), literal[2])
          : compile(attrs.pattern!, (why) => bad(`pattern ${JSON.stringify(attrs.pattern)} ${why}`));
      }
      break;
    case 'edge':
      if (!has('branch')) attrs.branch = '';
      break;
    case 'ref':
      need('event', 'type=ref needs event=branch, event=tag or event=pr');
      oneOf('event', ['branch', 'tag', 'pr']);
      if (attrs.event === 'pr' && !has('prefix')) attrs.prefix = 'pr-';
      break;
    case 'raw':
      need('value', 'type=raw needs value= (or the tag alone: type=raw,mytag)');
      break;
    case 'sha':
      if (!has('prefix')) attrs.prefix = 'sha-';
      if (!has('format')) attrs.format = 'short';
      oneOf('format', ['short', 'long']);
      break;
  }
  if (!has('enable')) attrs.enable = 'true';
  if (!has('priority')) attrs.priority = DEFAULT_PRIORITY[type];
  const priority = Number(attrs.priority);
  if (Number.isNaN(priority)) bad(`priority ${JSON.stringify(attrs.priority)} is not a number`);

  const template = (k: string, scope: ScopeKind) => (has(k) ? checkedTemplate(attrs[k]!, `${at}: ${k}`, scope) : undefined);
  const enable = checkedTemplate(attrs.enable!, `${at}: enable`, 'global');
  if (!enable.parts.some((p) => p.kind === 'expr') && attrs.enable !== 'true' && attrs.enable !== 'false') {
    bad(`enable ${JSON.stringify(attrs.enable)} must be true, false or an expression such as {{is_default_branch}}`);
  }
  const patternScope: ScopeKind | undefined = type === 'semver' ? 'semver' : type === 'schedule' ? 'schedule' : undefined;
  const pattern = patternScope ? template('pattern', patternScope) : undefined;
  if (type === 'semver' && !namesIn(pattern!).some((n) => SEMVER_NAMES.includes(n))) {
    bad(`pattern ${JSON.stringify(attrs.pattern)} has no placeholder; use {{version}}, {{major}}, {{minor}}, {{patch}}, {{prerelease}}, {{build}} or {{raw}}`);
  }
  return {
    type,
    attrs,
    at,
    priority,
    regex,
    templates: { value: template('value', 'global'), pattern, prefix: template('prefix', 'global'), suffix: template('suffix', 'global'), enable },
  };
}

type ScopeKind = 'global' | 'semver' | 'schedule';

const scopeNames = (kind: ScopeKind) => (kind === 'global' ? GLOBAL_NAMES : kind === 'semver' ? SEMVER_NAMES : DATE_HELPERS);

/**
 * Parse an attribute's expressions and check them as far as they can be without the run: every
 * name is one this action knows, the date helpers get a format and a known zone. A known name that
 * the attribute's scope lacks (`{{branch}}` in a semver pattern) prints nothing, as in metadata-action.
 */
function checkedTemplate(source: string, at: string, kind: ScopeKind): Template {
  let t: Template;
  try {
    t = parseTemplate(source);
  } catch (err) {
    throw new Error(`${at} ${(err as Error).message}`);
  }
  const known = new Set([...GLOBAL_NAMES, ...SEMVER_NAMES]);
  const inScope = scopeNames(kind);
  for (const p of t.parts) {
    if (p.kind !== 'expr') continue;
    const bad = (why: string): never => {
      throw new Error(`${at} ${p.source}: ${why}`);
    };
    if (!known.has(p.name)) bad(`${JSON.stringify(p.name)} is not an expression (${inScope.map((n) => `{{${n}}}`).join(', ')})`);
    const args = p.params.length > 0 || Object.keys(p.hash).length > 0;
    if (DATE_HELPERS.includes(p.name) && inScope.includes(p.name)) {
      const format = p.params[0];
      if (format === undefined) bad(`${p.name} needs a format, e.g. {{${p.name} 'YYYYMMDD'}}`);
      if (p.params.length > 1) bad(`${p.name} takes one format`);
      if (format!.kind === 'number' || (format!.kind === 'path' && known.has(format!.name))) bad(`the format must be quoted, e.g. '${'YYYYMMDD'}'`);
      if (format!.kind === 'string') {
        try {
          checkFormat(format!.value);
        } catch (err) {
          bad((err as Error).message);
        }
      }
      for (const [key, value] of Object.entries(p.hash)) {
        if (key !== 'tz') bad(`attribute ${JSON.stringify(key)} is not known; only tz='Zone'`);
        if (value.kind !== 'string') bad(`tz must be a quoted zone name, e.g. tz='Asia/Tokyo'`);
        if (!isTimeZone((value as { value: string }).value)) bad(`tz ${JSON.stringify((value as { value: string }).value)} is not an IANA time zone`);
      }
    } else if (args && (!inScope.includes(p.name) || !GLOBAL_NAMES.includes(p.name))) {
      bad(`${p.name} takes no arguments`);
    }
  }
  return t;
}

function compile(source: string, bad: (why: string) => never, flags?: string): RegExp {
  try {
    return new RegExp(source, flags);
  } catch (err) {
    return bad(`is not a regular expression: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/** What the rules see of the run, as metadata-action's context gives it. */
export interface RulesContext {
  eventName: string;
  /** GITHUB_REF; `refs/pull/<number>/merge` on pull_request_target. */
  ref: string;
  /** GITHUB_SHA, or the pull request's head with DOCKER_METADATA_PR_HEAD_SHA=true. */
  sha: string;
  shortShaLength: number;
  /** The payload's `base_ref` (tag pushes). */
  baseRef?: string;
  /** The payload's `pull_request.base.ref`. */
  prBaseRef?: string;
  /** The payload's `repository.default_branch`: what {{is_default_branch}} compares. */
  payloadDefaultBranch?: string;
  /** The repository's default branch (payload, else the GitHub API): what type=edge defaults to. */
  defaultBranch?: string;
  /** The run's clock, for {{date}}. */
  now: Date;
  /** The commit's time, for {{commit_date}}. */
  commitDate: Date;
  /** Renders {{date}} and {{commit_date}}; needed only when the rules use them (TagRules.usesDates). */
  formatDate?: DateFormatter;
}

const SHORT_SHA_LENGTH = 7;

/**
 * The rules' context from the runner's environment and the event payload, as metadata-action
 * reads it (docs/tag-rules.md#context). Pure.
 */
export function rulesContext(
  env: Record<string, string | undefined>,
  payload: unknown,
  known: { defaultBranch?: string; now: Date; commitDate: Date; formatDate?: DateFormatter },
): RulesContext {
  // metadata-action reads @actions/github's context; so do the rules.
  const run = contextWithPayload(env, payload);
  const p: Record<string, unknown> = run.payload;
  const pr = record(p.pull_request);
  const eventName = run.eventName ?? '';
  let ref = run.ref ?? '';
  // metadata-action: a pull_request_target run is named for the pull request, not the base branch it runs on.
  if (/pull_request_target/.test(eventName)) ref = `refs/pull/${String(p.number)}/merge`;
  let sha = run.sha ?? '';
  const headSha = record(pr.head).sha;
  if (/true/i.test(env.DOCKER_METADATA_PR_HEAD_SHA ?? '') && /pull_request/.test(eventName) && headSha !== undefined && headSha !== null) sha = String(headSha);
  const lengthVar = env.DOCKER_METADATA_SHORT_SHA_LENGTH;
  const shortShaLength = lengthVar ? Number(lengthVar) : SHORT_SHA_LENGTH;
  if (Number.isNaN(shortShaLength)) throw new Error(`DOCKER_METADATA_SHORT_SHA_LENGTH: ${JSON.stringify(lengthVar)} is not a number`);
  const str = (v: unknown) => (v === undefined || v === null ? undefined : String(v));
  return {
    eventName,
    ref,
    sha,
    shortShaLength,
    baseRef: str(p.base_ref),
    prBaseRef: str(record(pr.base).ref),
    payloadDefaultBranch: str(record(p.repository).default_branch),
    defaultBranch: known.defaultBranch,
    now: known.now,
    commitDate: known.commitDate,
    formatDate: known.formatDate,
  };
}

/** The semver line a floating tag follows: its major, its major.minor, or every version (`latest`). */
export type Line = 'major' | 'minor' | 'all';

export interface RulesOutcome {
  /** metadata-action's version: the first tag; empty when the rules give none. */
  version: string;
  /** In metadata-action's order: the version, the other tags, then latest. */
  tags: string[];
  latest: boolean;
  /** Tags that float over a semver line, with the version that made them (forwardOnly). */
  floating: { tag: string; version: semver.SemVer; line: Line }[];
  /** The prefix and suffix around each full-version semver tag, to find earlier releases by. */
  releaseAffixes: { prefix: string; suffix: string }[];
  /** What metadata-action warns about (a pattern that does not match, a value that is not semver). */
  warnings: string[];
}

/** Evaluate the rules for the run (docs/tag-rules.md): metadata-action's tags and version. */
export function evaluateTagRules(rules: TagRules, ctx: RulesContext): RulesOutcome {
  const { flavor } = rules;
  const global = globalScope(ctx);
  const warnings: string[] = [];
  const floating: RulesOutcome['floating'] = [];
  const releaseAffixes: RulesOutcome['releaseAffixes'] = [];
  let main: string | undefined;
  const partial: string[] = [];
  let latest: boolean | undefined;
  let latestFrom: semver.SemVer | null = null;

  const tagName = () => (/^refs\/tags\//.test(ctx.ref) ? ctx.ref.replace(/^refs\/tags\//g, '') : undefined);
  /** The rule's prefix, else the flavor's; the same for the suffix. */
  const affixes = (rule: TagRule) => ({
    prefix: rule.templates.prefix ? render(rule.templates.prefix, global) : flavor.prefix.length > 0 ? render(rules.flavorTemplates.prefix, global) : '',
    suffix: rule.templates.suffix ? render(rule.templates.suffix, global) : flavor.suffix.length > 0 ? render(rules.flavorTemplates.suffix, global) : '',
  });
  const latestFor = (auto: boolean) => (flavor.latest === 'auto' ? auto : flavor.latest === 'true');
  /** metadata-action's setVersion: the first value is the version; the first rule with a value decides latest. */
  const add = (rule: TagRule, value: string, auto: boolean, from: semver.SemVer | null, line?: Line) => {
    const { prefix, suffix } = affixes(rule);
    const full = `${prefix}${value}${suffix}`;
    if (full.length === 0) return;
    const tag = sanitize(full);
    if (main === undefined) main = tag;
    else if (tag !== main) partial.push(tag);
    if (line) floating.push({ tag, version: from!, line });
    else if (rule.type === 'semver' && from) releaseAffixes.push({ prefix: sanitize(prefix), suffix: sanitize(suffix) });
    if (latest === undefined) {
      latest = latestFor(auto);
      // Only a version the rules derived automatically is guarded; latest=true is the user's word.
      latestFrom = latest && flavor.latest === 'auto' && from && from.prerelease.length === 0 ? from : null;
    }
  };

  for (const rule of rules.rules) {
    const enabled = render(rule.templates.enable, global);
    if (enabled !== 'true' && enabled !== 'false') throw new Error(`${rule.at}: enable gave ${JSON.stringify(enabled)}, which is neither true nor false`);
    if (enabled !== 'true') continue;
    const a = rule.attrs;
    switch (rule.type) {
      case 'schedule': {
        if (!/schedule/.test(ctx.eventName)) break;
        add(rule, render(rule.templates.pattern!, dateScope(ctx)), false, null);
        break;
      }
      case 'semver': {
        if (tagName() === undefined && a.value!.length === 0) break;
        let raw = a.value!.length > 0 ? render(rule.templates.value!, global) : tagName()!;
        if (a.match!.length > 0) {
          const m = raw.match(rule.regex!);
          if (!m) warnings.push(`${rule.at}: match ${a.match} does not match ${JSON.stringify(raw)}`);
          else raw = m[1] ?? '';
        }
        raw = raw.replace(/\//g, '-');
        if (!semver.valid(raw)) {
          warnings.push(`${rule.at}: ${JSON.stringify(raw)} is not a semantic version (https://semver.org/)`);
          break;
        }
        const v = semver.parse(raw, { loose: true })!;
        const scope = semverScope(v);
        if (semver.prerelease(raw)) {
          // A prerelease gets its own full version only, whatever the pattern ({{raw}} aside).
          const value = isRawStatement(rule.templates.pattern!) ? render(rule.templates.pattern!, scope) : render(parseTemplate('{{version}}'), scope);
          add(rule, value, false, v);
        } else {
          add(rule, render(rule.templates.pattern!, scope), true, v, lineOf(rule.templates.pattern!));
        }
        break;
      }
      case 'match': {
        if (tagName() === undefined && a.value!.length === 0) break;
        const raw = a.value!.length > 0 ? render(rule.templates.value!, global) : tagName()!;
        const m = raw.match(rule.regex!);
        if (!m) {
          warnings.push(`${rule.at}: pattern ${a.pattern} does not match ${JSON.stringify(raw)}`);
          break;
        }
        const group = (m as unknown as Record<string, string | undefined>)[a.group!];
        if (typeof group === 'undefined') {
          warnings.push(`${rule.at}: group ${a.group} does not exist in pattern ${a.pattern}`);
          break;
        }
        add(rule, group, true, stableSemver(group));
        break;
      }
      case 'ref': {
        if (a.event === 'branch') {
          if (!/^refs\/heads\//.test(ctx.ref)) break;
          add(rule, ctx.ref.replace(/^refs\/heads\//g, ''), false, null);
        } else if (a.event === 'tag') {
          const tag = tagName();
          if (tag === undefined) break;
          add(rule, tag, true, stableSemver(tag));
        } else {
          if (!/^refs\/pull\//.test(ctx.ref)) break;
          add(rule, ctx.ref.replace(/^refs\/pull\//g, '').replace(/\/merge$/g, ''), false, null);
        }
        break;
      }
      case 'edge': {
        if (!/^refs\/heads\//.test(ctx.ref)) break;
        const branch = a.branch!.length > 0 ? a.branch : ctx.defaultBranch;
        if (branch !== ctx.ref.replace(/^refs\/heads\//g, '')) break;
        add(rule, 'edge', false, null);
        break;
      }
      case 'raw':
        add(rule, render(rule.templates.value!, global), false, null);
        break;
      case 'sha': {
        if (!ctx.sha) break;
        add(rule, a.format === 'short' ? shortSha(ctx.sha, ctx.shortShaLength) : ctx.sha, false, null);
        break;
      }
    }
  }

  const partials = partial.filter((t, i) => partial.indexOf(t) === i);
  const tags = main === undefined ? [] : [main, ...partials];
  if (main !== undefined && latest) {
    // The latest tag takes the flavor's prefix and suffix as written, without their expressions.
    const tag = sanitize(`${flavor.prefixLatest ? flavor.prefix : ''}latest${flavor.suffixLatest ? flavor.suffix : ''}`);
    tags.push(tag);
    if (latestFrom) floating.push({ tag, version: latestFrom, line: 'all' });
  }
  const unique = tags.filter((t, i) => tags.indexOf(t) === i);
  for (const t of unique) {
    if (!isValidTag(t)) throw new Error(`input "tags": the rules give ${JSON.stringify(t)}, which is not a valid image tag (letters, digits, "_", "." and "-", at most 128, not starting with "." or "-")`);
  }
  return { version: main ?? '', tags: unique, latest: latest ?? false, floating, releaseAffixes, warnings };
}

/**
 * Floating-tag safety (docs/tag-rules.md#differences): a tag that floats over a semver line (a
 * `{{major}}` or `{{major}}.{{minor}}` pattern, and `latest` under latest=auto) is left out when the
 * repository already holds a later stable release in that line. Releases are the existing tags
 * that are a stable semantic version, bare or inside the prefix and suffix of a full-version rule.
 */
export function forwardOnly(outcome: RulesOutcome, existingTags: readonly string[]): string[] {
  const releases: semver.SemVer[] = [];
  const affixes = [{ prefix: '', suffix: '' }, ...outcome.releaseAffixes];
  for (const tag of existingTags) {
    for (const { prefix, suffix } of affixes) {
      if (!tag.startsWith(prefix) || !tag.endsWith(suffix) || tag.length < prefix.length + suffix.length) continue;
      const v = stableSemver(tag.slice(prefix.length, tag.length - suffix.length));
      if (v) releases.push(v);
    }
  }
  const inLine = (v: semver.SemVer, line: Line) => (e: semver.SemVer) =>
    line === 'all' || (e.major === v.major && (line === 'major' || e.minor === v.minor));
  const behind = new Set(outcome.floating.filter((f) => releases.filter(inLine(f.version, f.line)).some((e) => semver.gt(e, f.version))).map((f) => f.tag));
  return outcome.tags.filter((t) => !behind.has(t));
}

/** The line a semver pattern's tag floats over; undefined when it names the whole version. */
function lineOf(pattern: Template): Line | undefined {
  const names = namesIn(pattern);
  if (['version', 'patch', 'raw', 'prerelease', 'build'].some((n) => names.includes(n))) return undefined;
  if (names.includes('minor')) return 'minor';
  return names.includes('major') ? 'major' : undefined;
}

/** metadata-action's isRawStatement: the pattern is `{{raw}}` and nothing else. */
function isRawStatement(t: Template): boolean {
  return t.parts.length === 1 && t.parts[0]!.kind === 'expr' && t.parts[0]!.name === 'raw';
}

function stableSemver(s: string): semver.SemVer | null {
  const v = semver.parse(s, { loose: false });
  return v && v.prerelease.length === 0 ? v : null;
}

/** metadata-action's tag sanitizing: each run of other characters becomes one `-`; case is kept. */
const sanitize = (tag: string) => tag.replace(/[^a-zA-Z0-9._-]+/g, '-');

const shortSha = (sha: string, length: number) => (length >= sha.length ? sha : sha.substring(0, length));

function semverScope(v: semver.SemVer): Scope {
  return { version: v.version, major: v.major, minor: v.minor, patch: v.patch, prerelease: v.prerelease, build: v.build, raw: v.raw };
}

function dateScope(ctx: RulesContext): Scope {
  const helper = (date: Date) => (params: Param[], hash: Record<string, Param>) => {
    if (!ctx.formatDate) throw new Error('the tag rules use a date, but no date formatter was loaded (TagRules.usesDates)');
    const format = params[0]?.kind === 'string' ? params[0].value : undefined;
    const tz = hash.tz?.kind === 'string' ? hash.tz.value : 'UTC';
    return ctx.formatDate(date, format, tz);
  };
  return { date: helper(ctx.now), commit_date: helper(ctx.commitDate) };
}

function globalScope(ctx: RulesContext): Scope {
  const isDefaultBranch = () => {
    const branch = ctx.ref.replace(/^refs\/heads\//g, '');
    if (branch.length === 0) return 'false';
    if (ctx.payloadDefaultBranch === branch) return 'true';
    // These events always run on the default branch's last commit (GitHub's events documentation).
    return /create|discussion|issues|schedule/.test(ctx.eventName) ? 'true' : 'false';
  };
  return {
    ...dateScope(ctx),
    branch: () => (/^refs\/heads\//.test(ctx.ref) ? ctx.ref.replace(/^refs\/heads\//g, '') : ''),
    tag: () => (/^refs\/tags\//.test(ctx.ref) ? ctx.ref.replace(/^refs\/tags\//g, '') : ''),
    sha: () => shortSha(ctx.sha, ctx.shortShaLength),
    base_ref: () => {
      if (/^refs\/tags\//.test(ctx.ref) && ctx.baseRef !== undefined) return ctx.baseRef.replace(/^refs\/heads\//g, '');
      if (/^refs\/pull\//.test(ctx.ref) && ctx.prBaseRef !== undefined) return ctx.prBaseRef;
      return '';
    },
    is_default_branch: isDefaultBranch,
    is_not_default_branch: () => (isDefaultBranch() === 'false' ? 'true' : 'false'),
  };
}

function record(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

export { parseFlavorItems };
