import semver from 'semver';
import { isPullRequestEvent, type GithubContext } from './context.js';

export type LatestMode = 'auto' | 'true' | 'false';

export interface TagsInput {
  ctx: GithubContext;
  /** The `tags` input, already split into items; empty or absent means "compute them" (docs/tags.md). */
  explicitTags?: readonly string[];
  latest: LatestMode;
  /** Tags already in the target repository (empty when it does not exist or push is off). */
  existingTags: readonly string[];
}

export interface TagsResult {
  /** `Key.Version` and the `version` output. */
  version: string;
  /** Deduplicated, in order: most specific first. */
  tags: string[];
}

/** The distribution spec's tag grammar. */
const ociTag = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const maxTagLength = 128;

export const isValidTag = (tag: string): boolean => ociTag.test(tag);

/**
 * Turn a ref name into a tag (docs/tags.md): lower-case, every character outside `[a-z0-9_.-]`
 * becomes `-` (one for one, not collapsed, so distinct branches stay distinct), leading
 * `.`/`-` are dropped (the tag grammar forbids them), then at most 128 characters.
 */
export function sanitizeTag(s: string): string {
  const tag = s
    .toLowerCase()
    .replace(/[^a-z0-9_.-]/g, '-')
    .replace(/^[.-]+/, '')
    .slice(0, maxTagLength);
  if (tag === '') {
    throw new Error(`"${s}" has no characters usable in an image tag; set the "tags" input`);
  }
  return tag;
}

/** Compute the tags and the version for this run (docs/tags.md). */
export function computeTags({ ctx, explicitTags, latest, existingTags }: TagsInput): TagsResult {
  const explicit = (explicitTags ?? []).map((t) => t.trim()).filter((t) => t !== '');
  if (explicit.length > 0) {
    for (const t of explicit) {
      if (!isValidTag(t)) {
        throw new Error(
          `input "tags": "${t}" is not a valid image tag (letters, digits, "_", "." and "-", at most 128, not starting with "." or "-")`,
        );
      }
    }
    // Explicit tags replace the computed ones; `latest: true` is still honoured because
    // it is an explicit request too. `auto` adds nothing: there is no version line to follow.
    return { version: explicit[0]!, tags: dedupe([...explicit, ...(latest === 'true' ? ['latest'] : [])]) };
  }

  const computed = computedTags(ctx, existingTags);
  const tags = [...computed.tags];
  if (latest === 'true') tags.push('latest');
  else if (latest === 'auto' && computed.latestAllowed) tags.push('latest');
  return { version: computed.version, tags: dedupe(tags) };
}

interface Computed {
  version: string;
  tags: string[];
  /** Whether `latest: auto` sets `latest`. */
  latestAllowed: boolean;
}

function computedTags(ctx: GithubContext, existingTags: readonly string[]): Computed {
  const tag = tagOf(ctx);
  if (tag !== undefined) return fromGitTag(tag, existingTags);

  if (isPullRequestEvent(ctx.eventName)) {
    if (ctx.prNumber === undefined) {
      throw new Error(`${ctx.eventName} event without a pull request number in the payload or GITHUB_REF; set the "tags" input`);
    }
    const pr = `pr-${ctx.prNumber}`;
    return { version: pr, tags: [pr], latestAllowed: false };
  }

  // Other events on a pull request (pull_request_review, pull_request_review_comment) run on its
  // merge ref, refs/pull/<n>/merge, and build that commit: they are the pull request's build too,
  // named as docker/metadata-action's `type=ref,event=pr` names any refs/pull/ ref.
  const pull = /^refs\/pull\/(\d+)\//.exec(ctx.ref);
  if (pull) return { version: `pr-${pull[1]}`, tags: [`pr-${pull[1]}`], latestAllowed: false };

  const short = `sha-${ctx.revision.slice(0, 7)}`;
  if (ctx.ref.startsWith('refs/heads/')) {
    // Branches never get `latest` under `auto`, the default branch included: docs/tags.md gives a
    // branch only `<branch>` and `sha-<7 hex>`, and `latest` stays with released versions so a
    // main-branch build cannot overwrite a release. docker/metadata-action's defaults behave the
    // same (a default-branch `latest` there needs an explicit rule); here `latest: true` opts in.
    const branch = sanitizeTag(ctx.ref.slice('refs/heads/'.length));
    return { version: branch, tags: [branch, short], latestAllowed: false };
  }

  // Any other ref (or none, as in some repository_dispatch-style runs): the commit is all we know.
  return { version: short, tags: [short], latestAllowed: false };
}

/**
 * Whether the repository's existing tags can change what computeTags gives: only a stable
 * semver release's floating tags (`1.2`, `1`, and `latest` under `auto`) follow them. When they
 * cannot, the registry's tag list need not be read.
 */
export function tagsFollowExisting({ ctx, explicitTags }: Pick<TagsInput, 'ctx' | 'explicitTags'>): boolean {
  if ((explicitTags ?? []).some((t) => t.trim() !== '')) return false;
  const tag = tagOf(ctx);
  const v = tag === undefined ? null : parseSemver(tag);
  return v !== null && v.prerelease.length === 0;
}

/** The git tag this run is about: a release's tag, or any event run on a tag ref (docs/tags.md). */
function tagOf(ctx: GithubContext): string | undefined {
  if (ctx.eventName === 'release' && ctx.releaseTag) return ctx.releaseTag;
  if (ctx.ref.startsWith('refs/tags/')) return ctx.ref.slice('refs/tags/'.length);
  return undefined;
}

function fromGitTag(tag: string, existingTags: readonly string[]): Computed {
  const v = parseSemver(tag);
  if (!v) {
    const t = sanitizeTag(tag);
    // A non-semver tag has no version line, so `auto` cannot tell forward from backward.
    return { version: t, tags: [t], latestAllowed: false };
  }
  // `version` drops build metadata (`+…`), which semver ignores for precedence and tags cannot carry.
  const full = sanitizeTag(v.version);
  if (v.prerelease.length > 0) {
    return { version: full, tags: [full], latestAllowed: false };
  }
  const stable = existingTags.map(parseSemver).filter((e): e is semver.SemVer => e !== null && e.prerelease.length === 0);
  // Floating tags only move forward: each is set only if this version is at least every
  // stable version already published within its line.
  const atLeastAll = (line: (e: semver.SemVer) => boolean) => stable.filter(line).every((e) => semver.gte(v, e));
  const tags = [full];
  if (atLeastAll((e) => e.major === v.major && e.minor === v.minor)) tags.push(`${v.major}.${v.minor}`);
  // A bare `0` would float across breaking 0.x releases, so major 0 gets none.
  if (v.major > 0 && atLeastAll((e) => e.major === v.major)) tags.push(`${v.major}`);
  return { version: full, tags, latestAllowed: atLeastAll(() => true) };
}

/** `1.2.3` or `v1.2.3` (with optional prerelease and build); anything else is not semver here. */
function parseSemver(s: string): semver.SemVer | null {
  return semver.parse(s, { loose: false });
}

function dedupe(tags: string[]): string[] {
  return [...new Set(tags)];
}
