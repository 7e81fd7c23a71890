// GitHub's attestations API (docs/provenance.md#storage): `POST /repos/{owner}/{repo}/attestations`
// with `{bundle}`, so that `gh attestation verify oci://<image> --owner <owner>` finds it. Best
// effort: the bundle is in the registry already; a refusal is one warning, not a failure.
import { getOctokit } from '@actions/github';
import type { Logger } from '../log.js';
import type { RetryPolicy } from '../registry/retry.js';

type CreateAttestation = Parameters<ReturnType<typeof getOctokit>['rest']['repos']['createAttestation']>[0] & {};

export const ATTESTATIONS_PERMISSION = 'permissions: attestations: write';

export interface AttestationsApiOptions {
  /** `GITHUB_API_URL`, no trailing slash. */
  apiUrl: string;
  /** `owner/repo`. */
  repository: string;
  /** The `github-token` input: sent to `apiUrl` only. */
  token: string;
  /** Octokit's fetch; default the toolkit's, which honours the runner's proxy settings. */
  fetch?: typeof globalThis.fetch;
  logger: Logger;
  retry: RetryPolicy;
}

/**
 * A store for bundles: each call POSTs one and returns its id. After a 401, 403 or 404 (the
 * token may not write attestations here) it warns once and stores nothing more; any other
 * failure, after the retry policy, is a warning too.
 */
export function attestationsApi(o: AttestationsApiOptions): (bundle: unknown) => Promise<string | undefined> {
  const url = `${o.apiUrl}/repos/${o.repository}/attestations`;
  const [owner, repo] = o.repository.split('/') as [string, string];
  // The toolkit's client, on `apiUrl` (GITHUB_API_URL as the run has it); it has no retry
  // plugin: the retries and the deadline are the publish phase's (docs/reliability.md).
  const octokit = getOctokit(o.token, { baseUrl: o.apiUrl, ...(o.fetch ? { request: { fetch: o.fetch } } : {}) });
  let refused = false;
  return async (bundle) => {
    if (refused) return undefined;
    try {
      return await o.retry.run(`store the attestation in ${url}`, async () => {
        try {
          const { data } = await octokit.rest.repos.createAttestation({
            owner,
            repo,
            // The bundle as sigstore-js made it; the API takes it as it is.
            bundle: bundle as CreateAttestation['bundle'],
            headers: { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' },
            request: { signal: AbortSignal.timeout(Math.max(1000, Math.min(30_000, o.retry.remainingMs() ?? 30_000))) },
          });
          const id = (data as { id?: unknown } | undefined)?.id;
          return id === undefined || id === null ? undefined : String(id);
        } catch (err) {
          throw apiError(err);
        }
      });
    } catch (err) {
      const refusal = (err as { refusal?: number }).refusal;
      if (refusal !== undefined) {
        refused = true;
        o.logger.warning(
          `GitHub's attestations API answered ${refusal}: the provenance is signed and in the registry, but \`gh attestation verify\` finds it only once the job has \`${ATTESTATIONS_PERMISSION}\` (docs/provenance.md#permissions)`,
        );
      } else {
        o.logger.warning(`could not store the attestation in GitHub's attestations API (it is in the registry): ${(err as Error).message}`);
      }
      return undefined;
    }
  };
}

/**
 * Octokit's RequestError as the retry policy reads it: 401, 403 and 404 are a refusal, 408, 429
 * and 5xx retryable (docs/reliability.md). Octokit reports a request that got no answer (reset,
 * refused, timed out) as status 500, so those are retried too.
 */
function apiError(err: unknown): Error {
  const status = (err as { status?: unknown }).status;
  if (typeof status !== 'number') return err as Error;
  if (status === 401 || status === 403 || status === 404) return Object.assign(new Error(`${status}`, { cause: err }), { refusal: status });
  const message = (err as Error).message.slice(0, 200);
  return Object.assign(new Error(`${status}: ${message}`, { cause: err }), { retryable: status === 408 || status === 429 || status >= 500 });
}
