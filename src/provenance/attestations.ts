// GitHub's attestations API (docs/provenance.md#storage): `POST /repos/{owner}/{repo}/attestations`
// with `{bundle}`, so that `gh attestation verify oci://<image> --owner <owner>` finds it. Best
// effort: the bundle is in the registry already; a refusal is one warning, not a failure.
import type { Logger } from '../log.js';
import type { RetryPolicy } from '../registry/retry.js';

export const ATTESTATIONS_PERMISSION = 'permissions: attestations: write';

export interface AttestationsApiOptions {
  /** `GITHUB_API_URL`, no trailing slash. */
  apiUrl: string;
  /** `owner/repo`. */
  repository: string;
  /** The `github-token` input: sent to `apiUrl` only. */
  token: string;
  fetch: typeof globalThis.fetch;
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
  let refused = false;
  return async (bundle) => {
    if (refused) return undefined;
    try {
      return await o.retry.run(`store the attestation in ${url}`, async () => {
        const res = await o.fetch(url, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${o.token}`,
            accept: 'application/vnd.github+json',
            'content-type': 'application/json',
            'x-github-api-version': '2022-11-28',
          },
          body: JSON.stringify({ bundle }),
          signal: AbortSignal.timeout(Math.max(1000, Math.min(30_000, o.retry.remainingMs() ?? 30_000))),
        });
        const text = await res.text();
        if (res.status === 401 || res.status === 403 || res.status === 404) throw Object.assign(new Error(`${res.status}`), { refusal: res.status });
        if (!res.ok) throw Object.assign(new Error(`${res.status} ${res.statusText}: ${text.slice(0, 200)}`), { retryable: res.status === 408 || res.status === 429 || res.status >= 500 });
        const id = (JSON.parse(text) as { id?: unknown }).id;
        return id === undefined || id === null ? undefined : String(id);
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
