import { describe, expect, it } from '@jest/globals';
import { readContext, type GithubContext } from '../src/github/context.js';
import { computeTags, sanitizeTag, tagsFollowExisting, type LatestMode } from '../src/github/tags.js';
import { loadEvent } from './support/events.js';

const ctxOf = (name: string, envOverride: Record<string, string> = {}, payload?: unknown) => {
  const e = loadEvent(name);
  return readContext({ ...e.env, ...envOverride }, payload ?? e.payload);
};
const tagsOf = (ctx: GithubContext, existingTags: string[] = [], latest: LatestMode = 'auto') =>
  computeTags({ ctx, latest, existingTags });

describe('whether the tag list is needed (tagsFollowExisting)', () => {
  // Versions above, below and beside every recorded one: if any existing list changes the tags,
  // one of these does.
  const existing = ['99.0.0', '2.5.0', '1.99.0', '1.2.99', '1.4.9', '0.99.0', '0.4.9', 'v1.2.2', 'latest'];
  it.each([
    ['push-tag-v1.2.3', true],
    ['release-published-v1.2.3', true],
    ['workflow-dispatch-tag-v1.4.0', true],
    ['push-tag-v0.4.1', true],
    ['push-tag-v2.0.0-rc.1', false],
    ['push-tag-nightly-7', false],
    ['push-branch-main', false],
    ['workflow-dispatch-main', false],
    ['schedule-main', false],
    ['push-branch-feature-Foo_bar', false],
    ['pull-request-42', false],
  ])('%s: %s, and the tags differ with an existing list exactly when it is true', (name, follows) => {
    const ctx = ctxOf(name);
    expect(tagsFollowExisting({ ctx })).toBe(follows);
    const changed = existing.some((t) => JSON.stringify(tagsOf(ctx, [t])) !== JSON.stringify(tagsOf(ctx)));
    expect(changed).toBe(follows);
  });

  it('is false with explicit tags, which replace the computed ones', () => {
    expect(tagsFollowExisting({ ctx: ctxOf('push-tag-v1.2.3'), explicitTags: ['stable'] })).toBe(false);
    expect(tagsFollowExisting({ ctx: ctxOf('push-tag-v1.2.3'), explicitTags: [' '] })).toBe(true);
  });
});

describe('docs/tags.md, row by row, over the recorded runs', () => {
  it.each([
    ['push-tag-v1.2.3', ['1.2.3', '1.2', '1', 'latest'], '1.2.3'],
    ['release-published-v1.2.3', ['1.2.3', '1.2', '1', 'latest'], '1.2.3'],
    ['workflow-dispatch-tag-v1.4.0', ['1.4.0', '1.4', '1', 'latest'], '1.4.0'],
    ['push-tag-v0.4.1', ['0.4.1', '0.4', 'latest'], '0.4.1'],
    ['push-tag-v2.0.0-rc.1', ['2.0.0-rc.1'], '2.0.0-rc.1'],
    ['push-tag-nightly-7', ['nightly-7'], 'nightly-7'],
    ['push-branch-main', ['main', 'sha-6fad126'], 'main'],
    ['workflow-dispatch-main', ['main', 'sha-6fad126'], 'main'],
    ['schedule-main', ['main', 'sha-6fad126'], 'main'],
    ['push-branch-feature-Foo_bar', ['feature-foo_bar', 'sha-063a866'], 'feature-foo_bar'],
    ['pull-request-42', ['pr-42'], 'pr-42'],
  ])('%s → %j, version %s', (name, tags, version) => {
    expect(tagsOf(ctxOf(name))).toEqual({ tags, version });
  });

  it('treats a tag without the v the same', () => {
    const ctx = ctxOf('push-tag-v1.2.3', { GITHUB_REF: 'refs/tags/1.2.3', GITHUB_REF_NAME: '1.2.3' });
    expect(tagsOf(ctx)).toEqual({ tags: ['1.2.3', '1.2', '1', 'latest'], version: '1.2.3' });
  });

  it('treats a schedule run on a tag ref as that tag push', () => {
    const ctx = ctxOf('schedule-main', { GITHUB_REF: 'refs/tags/v3.1.4', GITHUB_REF_NAME: 'v3.1.4', GITHUB_REF_TYPE: 'tag' });
    expect(tagsOf(ctx)).toEqual({ tags: ['3.1.4', '3.1', '3', 'latest'], version: '3.1.4' });
  });

  it("takes a release's tag from release.tag_name", () => {
    const { payload } = loadEvent('release-published-v1.2.3');
    const p = structuredClone(payload) as { release: { tag_name: string } };
    p.release.tag_name = 'v1.2.4';
    expect(tagsOf(ctxOf('release-published-v1.2.3', {}, p)).version).toBe('1.2.4');
  });

  it('uses the PR number on pull_request_target, whose ref is the base branch', () => {
    const ctx = ctxOf('pull-request-42', { GITHUB_EVENT_NAME: 'pull_request_target', GITHUB_REF: 'refs/heads/main', GITHUB_REF_NAME: 'main' });
    expect(tagsOf(ctx)).toEqual({ tags: ['pr-42'], version: 'pr-42' });
  });

  it.each(['pull_request_review', 'pull_request_review_comment'])(
    'names a %s run, on the pull request merge ref, pr-<number> as docker/metadata-action does',
    (eventName) => {
      const ctx = ctxOf('pull-request-42', { GITHUB_EVENT_NAME: eventName });
      expect(ctx.ref).toBe('refs/pull/42/merge');
      expect(tagsOf(ctx)).toEqual({ tags: ['pr-42'], version: 'pr-42' });
    },
  );

  it('takes sha-<7 hex> from the revision', () => {
    expect(tagsOf(ctxOf('push-branch-main')).tags[1]).toMatch(/^sha-[0-9a-f]{7}$/);
  });

  it('drops semver build metadata, which a tag cannot carry', () => {
    const ctx = ctxOf('push-tag-v1.2.3', { GITHUB_REF: 'refs/tags/v1.2.3+build.7' });
    expect(tagsOf(ctx)).toEqual({ tags: ['1.2.3', '1.2', '1', 'latest'], version: '1.2.3' });
  });

  it('reads a ref that is neither branch nor tag as the commit alone', () => {
    const ctx = ctxOf('workflow-dispatch-main', { GITHUB_REF: '' });
    expect(tagsOf(ctx)).toEqual({ tags: ['sha-6fad126'], version: 'sha-6fad126' });
  });
});

describe('sanitizeTag', () => {
  it.each([
    ['main', 'main'],
    ['feature/Foo_bar', 'feature-foo_bar'],
    ['Release/V2', 'release-v2'],
    ['dependabot/go_modules/golang.org/x/net-0.33.0', 'dependabot-go_modules-golang.org-x-net-0.33.0'],
    ['a b+c@d', 'a-b-c-d'],
    ['.hidden', 'hidden'],
    ['-dash', 'dash'],
    ['..--.x', 'x'],
    ['/leading-slash', 'leading-slash'],
    ['ünïcode', 'n-code'],
  ])('%s → %s', (input, want) => {
    expect(sanitizeTag(input)).toBe(want);
  });

  it('cuts to 128 characters', () => {
    const long = 'A'.repeat(200);
    expect(sanitizeTag(long)).toBe('a'.repeat(128));
    expect(sanitizeTag(`.${'b'.repeat(199)}`)).toHaveLength(128);
  });

  it('refuses a name with nothing usable', () => {
    expect(() => sanitizeTag('./-')).toThrow(/"\.\/-" has no characters usable in an image tag/);
  });

  it('sanitizes a long branch into a valid tag', () => {
    const ctx = ctxOf('push-branch-main', { GITHUB_REF: `refs/heads/Feature/${'x'.repeat(200)}` });
    const { tags, version } = tagsOf(ctx);
    expect(version).toBe(`feature-${'x'.repeat(120)}`);
    expect(tags).toEqual([version, 'sha-6fad126']);
  });

  it('sanitizes a non-semver tag, and the version with it', () => {
    const ctx = ctxOf('push-tag-nightly-7', { GITHUB_REF: 'refs/tags/Nightly/2026.01.07' });
    expect(tagsOf(ctx)).toEqual({ tags: ['nightly-2026.01.07'], version: 'nightly-2026.01.07' });
  });
});

describe('floating tags only move forward (latest: auto)', () => {
  const at = (tag: string) => ctxOf('push-tag-v1.2.3', { GITHUB_REF: `refs/tags/${tag}`, GITHUB_REF_NAME: tag });

  it.each([
    ['an empty repository', 'v1.2.4', [], ['1.2.4', '1.2', '1', 'latest']],
    ['re-release v1.2.4 after v1.3.0 exists', 'v1.2.4', ['v1.2.3', 'v1.3.0', '1.3', '1', 'latest'], ['1.2.4', '1.2']],
    ['the same, existing tags without v', 'v1.2.4', ['1.2.3', '1.3.0'], ['1.2.4', '1.2']],
    ['a patch behind in its own line', 'v1.2.4', ['v1.2.5'], ['1.2.4']],
    ['a newer major exists', 'v1.5.0', ['v1.4.9', 'v2.0.0'], ['1.5.0', '1.5', '1']],
    ['newest everywhere', 'v1.3.1', ['v1.2.9', 'v1.3.0', 'v0.9.0'], ['1.3.1', '1.3', '1', 'latest']],
    ['rebuilding the newest version', 'v1.3.0', ['v1.3.0', 'v1.2.0'], ['1.3.0', '1.3', '1', 'latest']],
    ['prereleases and non-semver tags are ignored', 'v1.2.4', ['v2.0.0-rc.1', '1.3.0-beta', 'nightly-7', 'main', 'sha-6fad126', 'pr-42', '9'], ['1.2.4', '1.2', '1', 'latest']],
    ['build metadata compares equal', 'v1.2.4', ['v1.2.4+build.1'], ['1.2.4', '1.2', '1', 'latest']],
    ['v0.x: no bare 0 even when newest', 'v0.4.1', ['v0.4.0', 'v0.3.9'], ['0.4.1', '0.4', 'latest']],
    ['v0.x behind 0.5', 'v0.4.2', ['v0.5.0'], ['0.4.2', '0.4']],
    ['v0.x behind 1.0', 'v0.9.1', ['v0.9.0', 'v1.0.0'], ['0.9.1', '0.9']],
  ])('%s: %s over %j → %j', (_what, tag, existing, want) => {
    expect(tagsOf(at(tag), existing).tags).toEqual(want);
  });

  it.each([
    ['an empty repository', []],
    ['older releases', ['v1.0.0', 'v1.9.9']],
    ['newer releases', ['v3.0.0']],
  ])('a prerelease moves nothing (%s)', (_what, existing) => {
    expect(tagsOf(ctxOf('push-tag-v2.0.0-rc.1'), existing)).toEqual({ tags: ['2.0.0-rc.1'], version: '2.0.0-rc.1' });
  });
});

describe('latest: true / false', () => {
  it.each([
    ['push-tag-v1.2.3', ['v1.9.0'], ['1.2.3', '1.2', 'latest']],
    ['push-tag-v2.0.0-rc.1', [], ['2.0.0-rc.1', 'latest']],
    ['push-tag-nightly-7', [], ['nightly-7', 'latest']],
    ['push-branch-main', [], ['main', 'sha-6fad126', 'latest']],
    ['pull-request-42', [], ['pr-42', 'latest']],
  ])('true always sets latest: %s over %j → %j', (name, existing, want) => {
    expect(tagsOf(ctxOf(name), existing, 'true').tags).toEqual(want);
  });

  it.each([
    ['push-tag-v1.2.3', ['1.2.3', '1.2', '1']],
    ['push-tag-v0.4.1', ['0.4.1', '0.4']],
    ['push-branch-main', ['main', 'sha-6fad126']],
  ])('false never sets latest: %s → %j', (name, want) => {
    expect(tagsOf(ctxOf(name), [], 'false').tags).toEqual(want);
  });

  it('auto leaves latest off the default branch', () => {
    const ctx = ctxOf('push-branch-main');
    expect(ctx.defaultBranch).toBe('main');
    expect(tagsOf(ctx).tags).not.toContain('latest');
  });
});

describe('explicit tags', () => {
  const ctx = ctxOf('push-tag-v1.2.3');

  it('replace the computed ones; the version is the first', () => {
    expect(computeTags({ ctx, explicitTags: ['stable', 'v1', 'stable', ' edge '], latest: 'auto', existingTags: [] })).toEqual({
      tags: ['stable', 'v1', 'edge'],
      version: 'stable',
    });
  });

  it('get latest only with latest: true', () => {
    expect(computeTags({ ctx, explicitTags: ['x'], latest: 'true', existingTags: [] }).tags).toEqual(['x', 'latest']);
    expect(computeTags({ ctx, explicitTags: ['x'], latest: 'false', existingTags: [] }).tags).toEqual(['x']);
  });

  it('fall back to the computed ones when all are empty', () => {
    expect(computeTags({ ctx, explicitTags: ['', '  '], latest: 'auto', existingTags: [] }).version).toBe('1.2.3');
  });

  it.each(['Has Space', '.dot', '-dash', 'a/b', 'x'.repeat(129), 'tag:colon', 'sha256@x'])('%s is an error naming the input', (bad) => {
    expect(() => computeTags({ ctx, explicitTags: ['ok', bad], latest: 'auto', existingTags: [] })).toThrow(
      `input "tags": "${bad}" is not a valid image tag`,
    );
  });

  it('accept upper case and 128 characters, as the distribution spec does', () => {
    const long = `A${'b'.repeat(127)}`;
    expect(computeTags({ ctx, explicitTags: ['V1', long], latest: 'auto', existingTags: [] }).tags).toEqual(['V1', long]);
  });
});
