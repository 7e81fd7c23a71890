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
  /** A GitHub token (see apiToken); sent only to `ctx.apiUrl`. Empty means an anonymous request. */
  token: string;
  fetch: typeof globalThis.fetch;
  logger: Logger;
  /** Defaults to 10 s; tests shorten it. */
  timeoutMs?: number;
}

export const maxDescriptionLength = 512;

const githubApiUrl = 'https://api.github.com';

/**
 * The token for the repository lookup, given the `token` input and the registry host it is
 * for. That input belongs to `repository`'s host alone (docs/publishing.md#credentials): a Docker Hub or cloud
 * registry token must not reach GitHub. Only a ghcr.io token, which is GitHub.com's own (the
 * default is `github.token`), goes to GitHub.com's API; otherwise the lookup is anonymous.
 */
export function apiToken(ctx: GithubContext, registryHost: string, token: string | undefined): string {
  return registryHost.toLowerCase() === 'ghcr.io' && ctx.apiUrl === githubApiUrl ? (token ?? '') : '';
}

/**
 * Description and license of the repository: from the event payload when it carries a
 * `repository` object, else from one `GET /repos/{owner}/{repo}`. Metadata is best effort —
 * a failed request is a warning and the keys are omitted; it never fails the run.
 */
export async function repoInfo(ctx: GithubContext, deps: RepoInfoDeps): Promise<RepoInfo> {
  const raw = ctx.hasPayloadRepository ? { description: ctx.description, license: ctx.license } : await fromApi(ctx, deps);
  return clean(raw, deps.logger);
}

async function fromApi(ctx: GithubContext, { token, fetch, logger, timeoutMs = 10_000 }: RepoInfoDeps): Promise<RepoInfo> {
  const url = `${ctx.apiUrl.replace(/\/+$/, '')}/repos/${ctx.repository}`;
  const headers: Record<string, string> = {
    Accept: 'application/vnd.github+json',
    'X-GitHub-Api-Version': '2022-11-28',
    'User-Agent': 'ko-annotate',
  };
  if (token) headers.Authorization = `Bearer ${token}`;
  const skipped = `the image gets no ${Key.Description} or ${Key.Licenses}`;
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) {
      // Drain the body so the connection can be reused or closed.
      await res.body?.cancel().catch(() => undefined);
      logger.warning(`could not read repository details from ${url}: HTTP ${res.status}; ${skipped}`);
      return {};
    }
    const body = (await res.json()) as { description?: unknown; license?: { spdx_id?: unknown } | null; default_branch?: unknown };
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
  const e = err as { name?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } } | undefined;
  if (e?.name === 'TimeoutError') return `no answer within ${timeoutMs / 1000} s`;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  // undici says only "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND, …) is in the cause.
  const cause = e?.cause?.code ?? e?.cause?.message;
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
