// docs/tag-rules.md: what the vectors (github-tag-rules-vectors.test.ts) do not reach — how the
// input is read as a workflow writes it, expressions, the context's environment variables, the
// commit date, and floating-tag safety.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { listItems } from '../src/github/csv.js';
import { dateFormatter, type DateFormatter } from '../src/github/dates.js';
import { planTagRules } from '../src/github/rules-plan.js';
import { evaluateTagRules, forwardOnly, isTagRules, parseTagRules, rulesContext, type RulesContext } from '../src/github/tag-rules.js';
import { parseInputs } from '../src/inputs.js';
import { MemoryLogger } from '../src/log.js';

const SHA = '860c1904a1ce19322e91ac35af1ab07466440c37';
const HEAD = '3370e228f2209994d57af4427fe64e71bb79ac96';
const now = new Date('2026-03-04T05:06:07Z');
let formatDate: DateFormatter;
beforeAll(async () => {
  formatDate = await dateFormatter();
});

const ctxFor = (env: Record<string, string>, payload: unknown = {}, over: Partial<RulesContext> = {}): RulesContext => ({
  ...rulesContext({ GITHUB_SHA: SHA, ...env }, payload, { defaultBranch: 'main', now, commitDate: now, formatDate }),
  ...over,
});
const tagPush = (tag: string) => ctxFor({ GITHUB_EVENT_NAME: 'push', GITHUB_REF: `refs/tags/${tag}` });
const branchPush = (branch: string, payload: unknown = { repository: { default_branch: 'main' } }) =>
  ctxFor({ GITHUB_EVENT_NAME: 'push', GITHUB_REF: `refs/heads/${branch}` }, payload);
const evaluate = (tags: string, ctx: RulesContext, flavor = '') => evaluateTagRules(parseTagRules(tags, flavor), ctx);

describe('which input is rules (isTagRules)', () => {
  it.each([
    ['type=semver,pattern={{version}}', true],
    ['latest\ntype=sha', true],
    ['TYPE=raw,value=x', true],
    ['"type=match,""pattern=\\d"""', true],
    ['latest,v1', false],
    ['mytype=x', false],
    ['', false],
  ])('%j: %s', (input, rules) => expect(isTagRules(input)).toBe(rules));

  it('a plain list keeps its meaning; a rules input has no plain tags', () => {
    expect(parseInputs({ tags: 'v1,latest' })).toMatchObject({ tags: ['v1', 'latest'], tagRules: undefined });
    const rules = parseInputs({ tags: 'type=ref,event=branch\n# a comment\ntype=sha,prefix=', flavor: 'latest=false' });
    expect(rules.tags).toBeUndefined();
    expect(rules.tagRules!.rules.map((r) => r.type)).toEqual(['ref', 'sha']);
    expect(rules.tagRules!.flavor.latest).toBe('false');
  });
});

describe('the input as a workflow writes it (docs/tag-rules.md#quoting)', () => {
  it('is read as CSV first, as metadata-action reads it: quotes around a field go, and the fields join again', () => {
    expect(listItems('type=match,"pattern=\\d{1,2}"\n#type=sha\n\n  type=edge  ')).toEqual([
      { text: 'type=match,pattern=\\d{1,2}', line: 1 },
      { text: 'type=edge', line: 4 },
    ]);
    // So a quoted comma splits the rule in metadata-action, and here.
    expect(evaluate('type=raw,"value=a,b"', tagPush('v1')).tags).toEqual(['b']);
  });

  it('quoting the whole line keeps quotes for the rule: a comma inside the pattern survives', () => {
    expect(evaluate('"type=match,""pattern=^release\\d{1,2}"""', tagPush('release12')).tags).toEqual(['release12', 'latest']);
  });

  it('a quote inside a field is refused with its line', () => {
    expect(() => parseTagRules('type=sha\ntype=raw,value=a"b', '')).toThrow(/input "tags" line 2 "type=raw,value=a\\"b": a quote inside a field/);
  });
});

describe('expressions (docs/tag-rules.md#expressions)', () => {
  it('{{ }} HTML-escapes as Handlebars does, {{{ }}} does not; both then sanitize', () => {
    const ctx = branchPush("it's=fine");
    expect(evaluate('type=raw,value=a-{{branch}}\ntype=raw,value=b-{{{branch}}}', ctx).tags).toEqual(['a-it-x27-s-x3D-fine', 'b-it-s-fine']);
  });

  it('date and commit_date in a zone, and the default format when the format is a bare word', () => {
    const ctx = ctxFor({ GITHUB_EVENT_NAME: 'push', GITHUB_REF: 'refs/heads/main' }, {}, { commitDate: new Date('2026-06-30T23:30:00Z') });
    expect(evaluate("type=raw,value={{date 'YYYYMMDD-HHmm' tz='Asia/Kolkata'}}\ntype=raw,value={{commit_date 'YYYY-MM-DD' tz='America/New_York'}}\ntype=raw,value={{commit_date YYYY}}", ctx).tags).toEqual([
      '20260304-1036',
      '2026-06-30',
      '2026-06-30T23-30-00Z',
    ]);
  });

  it('a semver pattern sees the version: {{prerelease}} and {{raw}} of a prerelease', () => {
    expect(evaluate('type=semver,pattern={{raw}}', tagPush('v1.2.3-rc.1')).tags).toEqual(['v1.2.3-rc.1']);
    expect(evaluate('type=semver,pattern={{major}}.{{minor}}', tagPush('v1.2.3-rc.1')).tags).toEqual(['1.2.3-rc.1']);
    expect(evaluate('type=semver,pattern=v{{major}}-{{prerelease}},value=2.0.0-beta.4', branchPush('main')).tags).toEqual(['2.0.0-beta.4']);
  });

  it('case is kept, as metadata-action keeps it', () => {
    expect(evaluate('type=ref,event=branch', branchPush('Feature/Foo_Bar')).tags).toEqual(['Feature-Foo_Bar']);
  });
});

describe('the context (docs/tag-rules.md#context)', () => {
  const pr = { number: 15, pull_request: { head: { sha: HEAD }, base: { ref: 'main' } } };

  it('type=sha is GITHUB_SHA on a pull request, the head with DOCKER_METADATA_PR_HEAD_SHA=true', () => {
    const env = { GITHUB_EVENT_NAME: 'pull_request', GITHUB_REF: 'refs/pull/15/merge' };
    expect(evaluate('type=sha', ctxFor(env, pr)).tags).toEqual([`sha-${SHA.slice(0, 7)}`]);
    expect(evaluate('type=sha', ctxFor({ ...env, DOCKER_METADATA_PR_HEAD_SHA: 'true' }, pr)).tags).toEqual([`sha-${HEAD.slice(0, 7)}`]);
  });

  it('DOCKER_METADATA_SHORT_SHA_LENGTH sets the short length, for type=sha and {{sha}}', () => {
    const ctx = ctxFor({ GITHUB_EVENT_NAME: 'push', GITHUB_REF: 'refs/heads/main', DOCKER_METADATA_SHORT_SHA_LENGTH: '12' });
    expect(evaluate('type=sha\ntype=raw,value=at-{{sha}}', ctx).tags).toEqual([`at-${SHA.slice(0, 12)}`, `sha-${SHA.slice(0, 12)}`]);
    expect(() => ctxFor({ DOCKER_METADATA_SHORT_SHA_LENGTH: 'x' })).toThrow(/DOCKER_METADATA_SHORT_SHA_LENGTH: "x" is not a number/);
  });

  it('pull_request_target is named for the pull request, not the base branch it runs on', () => {
    const ctx = ctxFor({ GITHUB_EVENT_NAME: 'pull_request_target', GITHUB_REF: 'refs/heads/main' }, pr);
    expect(evaluate('type=ref,event=pr\ntype=ref,event=branch', ctx).tags).toEqual(['pr-15']);
  });

  it('{{is_default_branch}} compares the payload\'s default branch; type=edge the repository\'s', () => {
    expect(evaluate('type=raw,value=d,enable={{is_default_branch}}\ntype=raw,value=n,enable={{is_not_default_branch}}', branchPush('main')).tags).toEqual(['d']);
    expect(evaluate('type=raw,value=d,enable={{is_default_branch}}\ntype=raw,value=n,enable={{is_not_default_branch}}', branchPush('dev')).tags).toEqual(['n']);
    expect(evaluate('type=edge', branchPush('main', {})).tags).toEqual(['edge']);
    expect(evaluate('type=edge,branch=dev', branchPush('main')).tags).toEqual([]);
  });

  it('the flavor prefix and suffix go on every tag without its own, and on latest only with onlatest', () => {
    const out = evaluate('type=semver,pattern={{version}}\ntype=sha,prefix=', tagPush('v1.0.0'), 'prefix=app-,onlatest=true\nsuffix=-slim');
    expect(out.tags).toEqual(['app-1.0.0-slim', `${SHA.slice(0, 7)}-slim`, 'app-latest']);
  });
});

describe('floating-tag safety (forwardOnly)', () => {
  const rules = 'type=semver,pattern={{major}}\ntype=semver,pattern={{major}}.{{minor}}\ntype=semver,pattern={{version}}';

  it('leaves out a major or minor tag, and latest, when a later release of that line is there', () => {
    const out = evaluate(rules, tagPush('v2.2.9'));
    expect(out.tags).toEqual(['2', '2.2', '2.2.9', 'latest']);
    expect(forwardOnly(out, [])).toEqual(out.tags);
    expect(forwardOnly(out, ['2.3.4', '2.3', '2', 'latest', 'sha-1234567'])).toEqual(['2.2', '2.2.9']);
    expect(forwardOnly(out, ['2.2.10'])).toEqual(['2.2.9']);
    expect(forwardOnly(out, ['3.0.0'])).toEqual(['2', '2.2', '2.2.9']);
    // Prereleases and tags that are not versions do not count.
    expect(forwardOnly(out, ['3.0.0-rc.1', 'v9', 'nightly'])).toEqual(out.tags);
    // v-prefixed releases do.
    expect(forwardOnly(out, ['v2.5.0'])).toEqual(['2.2', '2.2.9']);
  });

  it('finds releases inside the flavor suffix the full-version tags carry', () => {
    const out = evaluate(rules, tagPush('v2.2.9'), 'suffix=-alpine,onlatest=true');
    expect(out.tags).toEqual(['2-alpine', '2.2-alpine', '2.2.9-alpine', 'latest-alpine']);
    expect(forwardOnly(out, ['2.3.0-alpine'])).toEqual(['2.2-alpine', '2.2.9-alpine']);
  });

  it('guards latest from type=ref,event=tag and type=match when the tag is a version', () => {
    expect(forwardOnly(evaluate('type=ref,event=tag', tagPush('v1.0.0')), ['1.1.0'])).toEqual(['v1.0.0']);
    expect(forwardOnly(evaluate('type=match,pattern=\\d+.\\d+.\\d+', tagPush('v1.0.0')), ['1.1.0'])).toEqual(['1.0.0']);
    // Not a version: nothing to compare, metadata-action's latest stands.
    expect(forwardOnly(evaluate('type=ref,event=tag', tagPush('release1')), ['1.1.0'])).toEqual(['release1', 'latest']);
  });

  it('latest=true in the flavor, and a raw latest, are the user\'s word and stay', () => {
    expect(forwardOnly(evaluate(rules, tagPush('v1.0.0'), 'latest=true'), ['2.0.0'])).toEqual(['1', '1.0', '1.0.0', 'latest']);
    expect(forwardOnly(evaluate('type=raw,value=latest\ntype=sha', branchPush('main')), ['2.0.0'])).toEqual(['latest', `sha-${SHA.slice(0, 7)}`]);
  });
});

describe('planning a run (planTagRules)', () => {
  const input = (over: Partial<Parameters<typeof planTagRules>[1]> = {}) => ({
    env: { GITHUB_EVENT_NAME: 'push', GITHUB_REF: 'refs/heads/main', GITHUB_SHA: SHA },
    payload: {},
    now,
    commitTime: async () => undefined,
    logger: new MemoryLogger(),
    ...over,
  });

  it('commit_date: the payload\'s commit, else git\'s time of it, else the clock with a warning', async () => {
    const rules = parseTagRules("type=raw,value={{commit_date 'YYYYMMDD-HHmmss'}}", '');
    const payload = { commits: [{ id: SHA, timestamp: '2026-01-02T03:04:05+01:00' }] };
    expect((await planTagRules(rules, input({ payload }))).plan(undefined).tags).toEqual(['20260102-020405']);
    const asked: string[] = [];
    const git = input({ commitTime: async (sha) => (asked.push(sha), '2025-12-31T23:59:59Z') });
    expect((await planTagRules(rules, git)).plan(undefined).tags).toEqual(['20251231-235959']);
    expect(asked).toEqual([SHA]);
    const logger = new MemoryLogger();
    expect((await planTagRules(rules, input({ logger }))).plan(undefined).tags).toEqual(['20260304-050607']);
    expect(logger.lines.some((l) => l.startsWith('warning: {{commit_date}}'))).toBe(true);
  });

  it('warns as metadata-action does, and when there is no tag at all', async () => {
    const logger = new MemoryLogger();
    const plan = await planTagRules(parseTagRules('type=semver,pattern={{version}},value=nope', ''), input({ logger }));
    expect(plan.plan(['1.0.0'])).toEqual({ version: '', tags: [] });
    expect(plan.followsExisting).toBe(false);
    expect(logger.lines.filter((l) => l.startsWith('warning:'))).toEqual([
      'warning: input "tags" line 1 "type=semver,pattern={{version}},value=nope": "nope" is not a semantic version (https://semver.org/)',
      'warning: the tag rules give no tag for this run, as metadata-action would; the image is published by digest only',
    ]);
  });

  it('reads the registry only when a floating tag could be held back', async () => {
    const env = { GITHUB_EVENT_NAME: 'push', GITHUB_REF: 'refs/tags/v1.2.3', GITHUB_SHA: SHA };
    expect((await planTagRules(parseTagRules('type=semver,pattern={{major}}', ''), input({ env }))).followsExisting).toBe(true);
    expect((await planTagRules(parseTagRules('type=semver,pattern={{version}}', ''), input({ env }))).followsExisting).toBe(true); // latest
    expect((await planTagRules(parseTagRules('type=semver,pattern={{version}}', 'latest=false'), input({ env }))).followsExisting).toBe(false);
    expect((await planTagRules(parseTagRules('type=ref,event=branch', ''), input())).followsExisting).toBe(false);
  });
});
