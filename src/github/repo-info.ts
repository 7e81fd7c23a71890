import { getOctokit } from '@actions/github';
import { GitHub } from '@actions/github/lib/utils';
import type { Logger } from '../log.js';
import { Key } from '../oci/spec.js';
import type { GithubContext } from './context.js';

/** The repository facts that go into the image metadata (docs/image.md#metadata); absent means "omit the key". */
export interface RepoInfo {
  description?: string;
  /** SPDX id. */
  license?: string;
  /** The default branch (for tag rules' type=edge, docs/tag-rules.md). */
  defaultBranch?: string;
}

export interface RepoInfoDeps {
  /** The `github-token` input: sent only to `ctx.apiUrl`, never to a registry (docs/publishing.md#credentials). Empty means an anonymous request. */
  token: string;
  logger: Logger;
  /** Defaults to 10 s; tests shorten it. */
  timeoutMs?: number;
}

export const maxDescriptionLength = 512;

/**
 * Description and license of the repository: from the event payload when it carries a
 * `repository` object, else from one `GET /repos/{owner}/{repo}` on `ctx.apiUrl` (GitHub.com or
 * GHES) with @actions/github's Octokit. Metadata is best effort — a failed request is a warning
 * and the keys are omitted; it never fails the run.
 */
export async function repoInfo(ctx: GithubContext, deps: RepoInfoDeps): Promise<RepoInfo> {
  const raw = ctx.hasPayloadRepository ? { description: ctx.description, license: ctx.license } : await fromApi(ctx, deps);
  return clean(raw, deps.logger);
}

async function fromApi(ctx: GithubContext, { token, logger, timeoutMs = 10_000 }: RepoInfoDeps): Promise<RepoInfo> {
  const baseUrl = ctx.apiUrl.replace(/\/+$/, '');
  const url = `${baseUrl}/repos/${ctx.repository}`;
  // getOctokit needs a token; without one the same client asks anonymously.
  const octokit = token ? getOctokit(token, { baseUrl }) : new GitHub({ baseUrl });
  const [owner, repo] = ctx.repository.split('/') as [string, string];
  const skipped = `the image gets no ${Key.Description} or ${Key.Licenses}`;
  try {
    const { data } = await octokit.rest.repos.get({
      owner,
      repo,
      headers: { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' },
      request: { signal: AbortSignal.timeout(timeoutMs) },
    });
    // Octokit hands on a body that is not JSON as a string.
    if (typeof data !== 'object' || data === null) throw new Error('the answer is not a JSON object');
    const body = data as { description?: unknown; license?: { spdx_id?: unknown } | null; default_branch?: unknown };
    return {
      ...(typeof body.description === 'string' ? { description: body.description } : {}),
      ...(typeof body.default_branch === 'string' ? { defaultBranch: body.default_branch } : {}),
      ...(typeof body.license?.spdx_id === 'string' ? { license: body.license.spdx_id } : {}),
    };
  } catch (err) {
    logger.warning(`could not read repository details from ${url}: ${describeFailure(err, timeoutMs)}; ${skipped}`);
    return {};
  }
}

// Duck-typed, not `instanceof`: fetch's errors (DOMException, TypeError with a cause) may come
// from another realm, where `instanceof Error` is false.
function describeFailure(err: unknown, timeoutMs: number): string {
  const e = err as { status?: unknown; response?: unknown; cause?: unknown } | undefined;
  // Octokit's RequestError: with a response, GitHub answered; without one, fetch failed and the cause says why.
  if (e?.response !== undefined && typeof e.status === 'number') return `HTTP ${e.status}`;
  const f = (e?.cause ?? err) as { name?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } } | undefined;
  if (f?.name === 'TimeoutError') return `no answer within ${timeoutMs / 1000} s`;
  const message = typeof f?.message === 'string' ? f.message : String(f);
  // undici says only "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND, …) is in the cause.
  const cause = f?.cause?.code ?? f?.cause?.message;
  return typeof cause === 'string' ? `${message} (${cause})` : message;
}

function clean({ description, license, defaultBranch }: RepoInfo, logger: Logger): RepoInfo {
  const out: RepoInfo = defaultBranch ? { defaultBranch } : {};
  const d = description?.trim();
  if (d) {
    // Count code points, not UTF-16 units, so an emoji is never cut in half.
    const chars = Array.from(d);
    if (chars.length > maxDescriptionLength) {
      logger.warning(
        `the repository description has ${chars.length} characters; ${Key.Description} keeps the first ${maxDescriptionLength}`,
      );
    }
    out.description = chars.slice(0, maxDescriptionLength).join('');
  }
  // GitHub reports NOASSERTION when it found a license file it cannot identify: not an SPDX id.
  const l = license?.trim();
  if (l && l !== 'NOASSERTION') out.license = l;
  return out;
}
