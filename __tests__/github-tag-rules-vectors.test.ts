// docs/tag-rules.md: the tag rules give the same results as docker/metadata-action. Every case of
// its own test tables (fixtures/metadata-action-cases.json) is run here: its rule and flavor
// parser tables, and each event's version and tags; a case that cannot apply is listed with the
// reason (exclusionOf) and still checked for what this action does instead. Labels are not
// compared: this action writes its own (docs/tag-rules.md#differences); the version label is
// checked end to end (e2e-tag-rules.test.ts).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { dateFormatter, type DateFormatter } from '../src/github/dates.js';
import { defaultFlavor, parseFlavorItems } from '../src/github/flavor.js';
import { evaluateTagRules, parseRule, rulesContext, tagRulesOf } from '../src/github/tag-rules.js';
import { exclusionOf, METADATA_ACTION_DEFAULT_RULES, tagsForOneImage, vectors, type Expected, type VectorCase } from './support/metadata-action-cases.js';

const items = (list: readonly string[]) => list.map((text, i) => ({ text, line: i + 1 }));
const counts = { applicable: 0, excluded: [] as string[] };
let formatDate: DateFormatter;
beforeAll(async () => {
  formatDate = await dateFormatter();
});

afterAll(() => {
  console.log(
    `metadata-action vectors: ${vectors.cases.length} cases, ${counts.applicable} applicable and passed (version and tags; labels are this action's own, docs/tag-rules.md#differences), ${counts.excluded.length} excluded:\n` +
      counts.excluded.map((e) => `  ${e}`).join('\n'),
  );
});

const byKind = (kind: VectorCase['kind']) => vectors.cases.filter((c) => c.kind === kind).map((c) => [c.id, c] as const);

describe('rule parser (metadata-action tag.test.ts Parse)', () => {
  test.each(byKind('tag_parse'))('%s', (_id, c) => {
    const read = () => parseRule({ text: c.input as string, line: 1 });
    if (c.expected_invalid) expect(read).toThrow(/input "tags" line 1/);
    else {
      const r = read();
      expect({ type: r.type, attrs: r.attrs }).toEqual(c.expected);
    }
    counts.applicable++;
  });
});

describe('rule order (metadata-action tag.test.ts Transform)', () => {
  test.each(byKind('tag_transform'))('%s', (_id, c) => {
    const rules = tagRulesOf(items(c.input as string[]), defaultFlavor).rules;
    expect(rules.map((r) => ({ type: r.type, attrs: r.attrs }))).toEqual(c.expected);
    counts.applicable++;
  });
});

describe('flavor parser (metadata-action flavor.test.ts)', () => {
  test.each(byKind('flavor_transform'))('%s', (_id, c) => {
    const read = () => parseFlavorItems(items(c.input as string[]));
    if (c.expected_invalid) expect(read).toThrow(/input "flavor" line \d/);
    else expect(read()).toEqual(c.expected);
    counts.applicable++;
  });
});

describe('version and tags for each event (metadata-action meta.test.ts)', () => {
  const now = new Date(vectors.harness.now);
  test.each(byKind('version_tags_labels'))('%s', (_id, c) => {
    const fixture = vectors.fixtures[c.fixture!]!;
    const env = { ...fixture.env, ...c.extra_env };
    // An empty tags input is metadata-action's default rules; this action's own default (docs/tags.md)
    // differs, so its rules are written out.
    const tags = c.inputs!.tags.length > 0 ? c.inputs!.tags : METADATA_ACTION_DEFAULT_RULES;
    const run = () => {
      const rules = tagRulesOf(items(tags), parseFlavorItems(items(c.inputs!.flavor)));
      // The harness fixes the clock for {{date}} and {{commit_date}} alike, and the repository API's default branch.
      const ctx = rulesContext(env, fixture.payload, { defaultBranch: vectors.harness.repo_api_response.default_branch, now, commitDate: now, formatDate });
      return evaluateTagRules(rules, ctx);
    };
    const why = exclusionOf(c);
    if (why) {
      counts.excluded.push(`${c.id}: ${why}`);
      expect(run).toThrow(/pep440/);
      return;
    }
    const e = c.expected as Expected;
    const out = run();
    expect(out.version).toBe(e.version.main ?? '');
    expect(out.tags).toEqual(tagsForOneImage(c));
    expect(out.latest).toBe(e.version.latest);
    expect(out.tags.slice(1, out.latest ? -1 : undefined)).toEqual(e.version.partial);
    counts.applicable++;
  });
});

// Runs last (jest runs a file's tests in order): every case was run or excluded with its reason.
test('no vector is passed over silently', () => {
  expect(counts.applicable + counts.excluded.length).toBe(vectors.cases.length);
  expect(counts.excluded.every((e) => /pep440/.test(e))).toBe(true);
});
