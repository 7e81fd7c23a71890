import { existsSync } from 'node:fs';
import { context as importedContext } from '@actions/github';
import { withProcessEnv } from '../util.js';

/**
 * @actions/github's context: the event payload and the run's variables, as read when it was made.
 * Its `repo` and `issue` getters read process.env when they are called, whatever env it was made
 * from; use readContext's `repository`, `owner` and `prNumber` instead.
 */
export type RunnerContext = typeof importedContext;

/**
 * @actions/github's Context for `env` (the action's is process.env; the CLI and tests pass
 * theirs), with the event payload read from GITHUB_EVENT_PATH. A path that names no file (a
 * local runner such as act, a hand-made environment) is reported through `warn` and read as no
 * payload; the toolkit itself would print a bare line to stdout.
 */
export function runnerContext(env: Record<string, string | undefined>, warn: (message: string) => void): RunnerContext {
  const path = env.GITHUB_EVENT_PATH;
  const missing = Boolean(path) && !existsSync(path!);
  if (missing) warn(`GITHUB_EVENT_PATH ${path} does not exist; running without the event payload`);
  return constructContext(missing ? { ...env, GITHUB_EVENT_PATH: '' } : env);
}

/**
 * @actions/github's Context for `env` with `payload` as the event, for callers that hold the
 * parsed payload already (prepare.ts gets runnerContext's; tests pass recorded ones). Pure: no
 * file is read.
 */
export function contextWithPayload(env: Record<string, string | undefined>, payload: unknown): RunnerContext {
  const ctx = constructContext({ ...env, GITHUB_EVENT_PATH: '' });
  ctx.payload = asRecord(payload) as RunnerContext['payload'];
  return ctx;
}

/**
 * The class reads process.env when it is constructed, and the module's own `context` was made at
 * import, so a fresh one is built with `env` in place.
 */
function constructContext(env: Record<string, string | undefined>): RunnerContext {
  const Context = importedContext.constructor as new () => RunnerContext;
  return withProcessEnv(env, () => new Context());
}

/**
 * The GitHub Actions run as data: the runner's environment plus the event payload
 * (the JSON file at `GITHUB_EVENT_PATH`, as runnerContext reads it). Everything that
 * feeds the image metadata (docs/image.md#metadata) and the tags (docs/tags.md) is taken from here.
 */
export interface GithubContext {
  /** `GITHUB_EVENT_NAME`: `push`, `pull_request`, `release`, `workflow_dispatch`, … */
  readonly eventName: string;
  /** `GITHUB_REF`, e.g. `refs/heads/main`, `refs/tags/v1.2.3`, `refs/pull/42/merge`; may be empty. */
  readonly ref: string;
  readonly refType: 'branch' | 'tag' | undefined;
  /** The short ref name: `main`, `v1.2.3`, `42/merge`. */
  readonly refName: string;
  /** `GITHUB_SHA`, lower-case. On pull_request events this is the test merge commit. */
  readonly sha: string;
  /** The commit the image is built from: the PR head on pull_request events, else `sha`. */
  readonly revision: string;
  /** No trailing slash. */
  readonly serverUrl: string;
  /** No trailing slash. */
  readonly apiUrl: string;
  /** `owner/repo`, as GitHub spells it. */
  readonly repository: string;
  readonly owner: string;
  /** `GITHUB_ACTOR`; empty when unset. */
  readonly actor: string;
  readonly prNumber?: number;
  /** `release.tag_name` on release events. */
  readonly releaseTag?: string;
  /** `head_commit.timestamp` exactly as given (RFC 3339 with the committer's offset). */
  readonly headCommitTime?: string;
  /** Whether the payload carried a `repository` object; then its description and license are authoritative. */
  readonly hasPayloadRepository: boolean;
  readonly description?: string;
  /** The license's SPDX id as GitHub reports it (possibly `NOASSERTION`; see repo-info.ts). */
  readonly license?: string;
  readonly defaultBranch?: string;
}

/** Both pull request events build the PR head, not the merge commit (docs/image.md#metadata). */
export const isPullRequestEvent = (eventName: string): boolean =>
  eventName === 'pull_request' || eventName === 'pull_request_target';

/**
 * Read the context from the runner's environment and the parsed event payload.
 * Pure: `env` is usually `process.env`, `payload` runnerContext's (`{}` when there is none,
 * as in local runs). The event, ref, SHA, actor, payload and URLs are @actions/github's Context's
 * (contextWithPayload); what is added here is what the toolkit does not say: the revision, the
 * ref's type and short name, the release tag and the repository facts of the payload.
 */
export function readContext(env: Record<string, string | undefined>, payload: unknown): GithubContext {
  // The toolkit falls back to github.com and api.github.com only when a URL variable is unset;
  // a blank one (a workflow's `env:` naming it without a value) is read as unset here too.
  const urls = ['GITHUB_SERVER_URL', 'GITHUB_API_URL'].filter((name) => !env[name]?.trim());
  const run = contextWithPayload(urls.length ? { ...env, ...Object.fromEntries(urls.map((name) => [name, undefined])) } : env, payload);
  // The repository is checked here, not taken from the toolkit's `repo`: that getter splits
  // GITHUB_REPOSITORY without checking it (`a/b/c` reads as a/b) and reads process.env when it
  // is called, not the `env` the context was made from.
  const repository = (env.GITHUB_REPOSITORY ?? '').trim();
  const parts = repository.split('/');
  if (parts.length !== 2 || !parts.every((p) => /^[A-Za-z0-9_.-]+$/.test(p))) {
    throw new Error(
      repository === ''
        ? 'GITHUB_REPOSITORY is not set; it must name the repository as owner/repo (outside Actions, set it yourself)'
        : `GITHUB_REPOSITORY: "${repository}" is not owner/repo`,
    );
  }
  const owner = parts[0]!;

  // The toolkit passes GITHUB_SHA on as it is; the revision is an image label and part of tags,
  // so it must be a commit SHA: 40 hex for SHA-1 repositories, 64 for SHA-256 ones.
  const sha = (run.sha ?? '').trim().toLowerCase();
  if (!/^[0-9a-f]{40}(?:[0-9a-f]{24})?$/.test(sha)) {
    throw new Error(sha === '' ? 'GITHUB_SHA is not set; it must be the commit being built' : `GITHUB_SHA: "${sha}" is not a commit SHA`);
  }

  const p: Record<string, unknown> = run.payload;
  const eventName = run.eventName ?? '';
  const ref = run.ref ?? '';
  // The toolkit's sha on pull request events is the test merge commit; the image is built from
  // the PR head (docs/image.md#metadata).
  const pr = asRecord(p.pull_request);
  const headSha = str(asRecord(pr.head).sha)?.toLowerCase();
  const revision = isPullRequestEvent(eventName) && headSha ? headSha : sha;

  const headCommit = asRecord(p.head_commit);
  const headCommitId = str(headCommit.id)?.toLowerCase();
  // head_commit describes the pushed commit; use its time only when it is the one being
  // built, so that the time can never belong to a different commit than the revision.
  const headCommitTime = headCommitId === undefined || headCommitId === revision ? str(headCommit.timestamp) : undefined;

  const repo = p.repository === undefined || p.repository === null ? undefined : asRecord(p.repository);
  // Not the toolkit's `issue.number`: that getter goes through `repo` (process.env, above), and
  // a payload without a number still has one in refs/pull/<n>/merge.
  const prNumber = num(pr.number) ?? num(p.number) ?? prNumberFromRef(ref);

  return {
    eventName,
    ref,
    // The toolkit has no ref type or short name; GITHUB_REF_TYPE and GITHUB_REF_NAME are the
    // runner's, and a hand-made environment may lack them.
    refType: refTypeOf(ref, env.GITHUB_REF_TYPE),
    refName: env.GITHUB_REF_NAME || shortRef(ref),
    sha,
    revision,
    serverUrl: trimSlash(run.serverUrl),
    apiUrl: trimSlash(run.apiUrl),
    repository,
    owner,
    actor: run.actor ?? '',
    ...(isPullRequestEvent(eventName) && prNumber !== undefined ? { prNumber } : {}),
    ...optional('releaseTag', eventName === 'release' ? str(asRecord(p.release).tag_name) : undefined),
    ...optional('headCommitTime', headCommitTime),
    hasPayloadRepository: repo !== undefined,
    ...optional('description', str(repo?.description)),
    ...optional('license', str(asRecord(repo?.license).spdx_id)),
    ...optional('defaultBranch', str(repo?.default_branch)),
  };
}

/** `Key.Source` and `Key.Url`: the repository's web page, without `.git`. */
export function sourceUrl(ctx: GithubContext): string {
  return `${trimSlash(ctx.serverUrl)}/${ctx.repository}`;
}

/** The default `repository` input (README.md#inputs); registries reject upper-case repository names. */
export function defaultRepository(ctx: GithubContext): string {
  return `ghcr.io/${ctx.repository}`.toLowerCase();
}

function refTypeOf(ref: string, envType: string | undefined): 'branch' | 'tag' | undefined {
  if (ref.startsWith('refs/heads/')) return 'branch';
  if (ref.startsWith('refs/tags/')) return 'tag';
  // GitHub reports `branch` for refs/pull/… as well; keep what it says for refs we cannot classify.
  return envType === 'branch' || envType === 'tag' ? envType : undefined;
}

function shortRef(ref: string): string {
  return ref.replace(/^refs\/(?:heads|tags)\//, '').replace(/^refs\/pull\//, '');
}

function prNumberFromRef(ref: string): number | undefined {
  const m = /^refs\/pull\/(\d+)\//.exec(ref);
  return m ? Number(m[1]) : undefined;
}

function trimSlash(url: string | undefined): string {
  return (url ?? '').trim().replace(/\/+$/, '');
}

function asRecord(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}

/** Spread helper so absent values stay absent keys (the context is compared and serialized in tests). */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
