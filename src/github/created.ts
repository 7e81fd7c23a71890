import { isPullRequestEvent, type GithubContext } from './context.js';

export interface CreatedInput {
  /** Only `SOURCE_DATE_EPOCH` is read. */
  env: Record<string, string | undefined>;
  ctx: GithubContext;
  /**
   * The committer time of `ctx.revision` as git prints it (`git log -1 --format=%cI <revision>`
   * in the workspace). Called only when neither the environment nor the payload has a time.
   */
  gitCommitTime: () => Promise<string | undefined>;
}

// The last second toISOString() still prints with a four-digit year.
const maxEpochSeconds = 253402300799;

/**
 * `Key.Created` (docs/image.md#determinism): `SOURCE_DATE_EPOCH`, else the payload's
 * head commit time, else git's commit time of the revision — never the wall clock, so that
 * rebuilding the same commit gives the same digests. RFC 3339 UTC, whole seconds.
 */
export async function createdTime({ env, ctx, gitCommitTime }: CreatedInput): Promise<string> {
  const epoch = env.SOURCE_DATE_EPOCH?.trim();
  // The reproducible-builds convention treats an empty variable as unset.
  if (epoch) {
    const seconds = /^\d+$/.test(epoch) ? Number(epoch) : NaN;
    if (!Number.isSafeInteger(seconds) || seconds > maxEpochSeconds) {
      throw new Error(`SOURCE_DATE_EPOCH: "${epoch}" is not a whole number of seconds since 1970-01-01T00:00:00Z`);
    }
    return formatUtc(seconds * 1000);
  }

  // A malformed payload time is not fatal: git is just as deterministic.
  const fromPayload = ctx.headCommitTime === undefined ? undefined : parseRfc3339(ctx.headCommitTime);
  if (fromPayload !== undefined) return formatUtc(fromPayload);

  const hint =
    'set SOURCE_DATE_EPOCH, or check out the repository (actions/checkout) before this step so that git can give the commit time' +
    (isPullRequestEvent(ctx.eventName) ? " (for a pull request, with fetch-depth: 0 if the pull request's head cannot be fetched)" : '');
  let fromGit: string | undefined;
  try {
    fromGit = (await gitCommitTime())?.trim();
  } catch (cause) {
    throw new Error(
      `cannot determine the image creation time: the event payload has no head_commit time and git could not read the time of commit ${ctx.revision}; ${hint}`,
      { cause },
    );
  }
  if (!fromGit) {
    throw new Error(
      `cannot determine the image creation time: no SOURCE_DATE_EPOCH, no head_commit time in the event payload, and no git commit time for ${ctx.revision}; ${hint}`,
    );
  }
  const ms = parseRfc3339(fromGit);
  if (ms === undefined) {
    throw new Error(`git gave "${fromGit}" as the time of commit ${ctx.revision}, which is not an RFC 3339 time`);
  }
  return formatUtc(ms);
}

/** Milliseconds since the epoch, or undefined unless `s` is a full RFC 3339 date-time with an offset. */
export function parseRfc3339(s: string): number | undefined {
  // Date.parse alone accepts far more than RFC 3339 (and reads offset-less times as local).
  if (!/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/.test(s.trim())) return undefined;
  const ms = Date.parse(s.trim().replace(' ', 'T').toUpperCase());
  return Number.isNaN(ms) ? undefined : ms;
}

/** `2026-01-02T03:04:05Z`: fractional seconds are dropped (floored), not rounded. */
function formatUtc(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
