// Sigstore keyless signing (docs/provenance.md#signing): the runner's OIDC token is exchanged
// at Fulcio for a short-lived certificate, the DSSE signature is witnessed by Rekor and/or a
// timestamp authority, and the result is a Sigstore bundle (v0.3).
import { loadApart } from '../apart.js';
import type { RetryPolicy } from '../registry/retry.js';
import { INTOTO_PAYLOAD_TYPE } from './statement.js';

/** Each service's base URL, as sigstore-js takes them (`fulcioBaseURL`, `rekorBaseURL`, `tsaBaseURL`). */
export interface SigstoreEndpoints {
  fulcio: string;
  rekor?: string;
  tsa?: string;
}

/** The `sigstore` input (README.md#inputs): an instance by name, or one by its URLs. */
export type SigstoreChoice = 'auto' | 'public-good' | 'github' | { custom: SigstoreEndpoints };

export const PUBLIC_GOOD: SigstoreEndpoints = { fulcio: 'https://fulcio.sigstore.dev', rekor: 'https://rekor.sigstore.dev' };

/** GitHub's instance for a server (Fulcio + timestamp authority), as actions/attest finds it: github.com's lives at githubapp.com. */
export function githubInstance(serverUrl: string): SigstoreEndpoints {
  let host = new URL(serverUrl).hostname;
  if (host === 'github.com') host = 'githubapp.com';
  return { fulcio: `https://fulcio.${host}`, tsa: `https://timestamp.${host}` };
}

/**
 * The instance to sign with: `auto` is public-good for a public repository and GitHub's
 * otherwise, read from the event payload's `repository.visibility` (or `private`) as GitHub's
 * attest actions choose.
 */
export function sigstoreEndpoints(choice: SigstoreChoice, payload: unknown, serverUrl: string): SigstoreEndpoints {
  if (typeof choice === 'object') return choice.custom;
  if (choice === 'public-good') return PUBLIC_GOOD;
  if (choice === 'github') return githubInstance(serverUrl);
  const repo = (payload as { repository?: { visibility?: unknown; private?: unknown } } | undefined)?.repository;
  const isPublic = repo?.visibility !== undefined ? repo.visibility === 'public' : repo?.private === false;
  return isPublic ? PUBLIC_GOOD : githubInstance(serverUrl);
}

export interface SignOptions {
  endpoints: SigstoreEndpoints;
  /** The OIDC token for audience `sigstore`; sent to Fulcio only. */
  token: () => Promise<string>;
  /** The publish phase's retry policy and deadline (docs/reliability.md); signing is inside `timeout`. */
  retry: RetryPolicy;
  /** One request's time limit; less when the deadline is nearer. */
  requestTimeoutMs?: number;
  onRetry?: (message: string) => void;
}

/** The Sigstore bundle's JSON for `payload` (an in-toto statement), signed as a DSSE envelope. */
export async function signStatement(payload: Buffer, what: string, o: SignOptions): Promise<unknown> {
  // Loaded only when signing: it is a bundle of its own (src/apart.ts).
  const { DSSEBundleBuilder, FulcioSigner, RekorWitness, TSAWitness, bundleToJSON } = await loadApart<typeof import('./sigstore-client.js')>('sigstore', async () => ({
    ...(await import(/* webpackIgnore: true */ '@sigstore/sign')),
    ...(await import(/* webpackIgnore: true */ '@sigstore/bundle')),
  }));
  return o.retry.run(
    `sign ${what} with Sigstore (${o.endpoints.fulcio})`,
    async () => {
      const left = o.retry.remainingMs();
      const timeout = Math.max(1000, Math.min(o.requestTimeoutMs ?? 30_000, left ?? Infinity));
      // Retries are ours (one policy and deadline for the whole publish phase), not sigstore-js's.
      const common = { timeout, retry: 0 };
      const witnesses = [
        ...(o.endpoints.rekor ? [new RekorWitness({ rekorBaseURL: o.endpoints.rekor, entryType: 'dsse', fetchOnConflict: true, ...common })] : []),
        ...(o.endpoints.tsa ? [new TSAWitness({ tsaBaseURL: o.endpoints.tsa, ...common })] : []),
      ];
      const signer = new FulcioSigner({ identityProvider: { getToken: o.token }, fulcioBaseURL: o.endpoints.fulcio, ...common });
      try {
        const bundle = await new DSSEBundleBuilder({ signer, witnesses }).create({ data: payload, type: INTOTO_PAYLOAD_TYPE });
        return bundleToJSON(bundle);
      } catch (err) {
        throw signingError(err);
      }
    },
    (e) => o.onRetry?.(`${e.what}: ${(e.error as Error).message}; retrying in ${Math.round(e.delayMs / 100) / 10}s (attempt ${e.attempt + 1} of ${e.maxAttempts})`),
  );
}

/**
 * sigstore-js's error, with the service's status and message (its InternalError wraps an
 * HTTPError), marked retryable for 408, 429 and 5xx as docs/reliability.md says. Its messages
 * hold no token: HTTPError's is the service's answer.
 */
function signingError(err: unknown): Error {
  const outer = err as { message?: string; cause?: { statusCode?: number; message?: string } };
  const status = outer.cause?.statusCode;
  // sigstore-js's message already ends with the service's answer: `… - (503) Service Unavailable`.
  const e = new Error(outer.message ?? String(err), { cause: err }) as Error & { retryable?: boolean };
  if (status !== undefined) e.retryable = status === 408 || status === 429 || status >= 500;
  return e;
}
