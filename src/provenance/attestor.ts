// The run's Attestor (publish/attachments.ts): one OIDC token for the run, its claims for the
// predicate, Sigstore signing and GitHub's attestations API, on the publish phase's retry policy.
import type { Logger } from '../log.js';
import type { Attestor } from '../publish/attachments.js';
import type { RetryPolicy } from '../registry/retry.js';
import { attestationsApi } from './attestations.js';
import { requestIdToken } from './oidc.js';
import { signStatement, type SigstoreEndpoints } from './sigstore.js';
import { workflowClaims } from './statement.js';

export interface AttestorOptions {
  env: Record<string, string | undefined>;
  endpoints: SigstoreEndpoints;
  serverUrl: string;
  logger: Logger;
  /** Called with the OIDC token besides the toolkit's own masking. */
  mask?(secret: string): void;
  /** The publish phase's policy: signing counts against `timeout` (docs/reliability.md). */
  retry: () => RetryPolicy;
  /** GitHub's attestations API, when there is a `github-token`. */
  api?: { apiUrl: string; repository: string; token: string };
}

export function makeAttestor(o: AttestorOptions): Attestor {
  let token: Promise<string> | undefined;
  // Sigstore's audience; one token for the run (it lives for minutes; a run signs within them).
  const idToken = () => (token ??= requestIdToken('sigstore', { env: o.env, mask: o.mask }));
  const api = o.api;
  // Made at its first use: the publish phase's policy (and its deadline) must not start earlier.
  let post: ((bundle: unknown) => Promise<string | undefined>) | undefined;
  const store = api ? (bundle: unknown) => (post ??= attestationsApi({ ...api, logger: o.logger, retry: o.retry() }))(bundle) : undefined;
  return {
    serverUrl: o.serverUrl,
    claims: async () => workflowClaims(await idToken()),
    sign: (st, what) =>
      signStatement(Buffer.from(JSON.stringify(st)), what, {
        endpoints: o.endpoints,
        token: idToken,
        retry: o.retry(),
        onRetry: (m) => o.logger.info(m),
      }),
    store,
  };
}
