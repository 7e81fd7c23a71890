// The runner's OIDC token (docs/provenance.md#permissions): a job with `permissions:
// id-token: write` gets ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN, and a
// GET of that URL with the audience, authorized by that token, answers `{"value": "<jwt>"}`.

export const ID_TOKEN_PERMISSION = 'permissions: id-token: write';

/** Whether the runner offers an OIDC token to this job. */
export const offersIdToken = (env: Record<string, string | undefined>): boolean => !!env.ACTIONS_ID_TOKEN_REQUEST_URL && !!env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;

export interface IdTokenDeps {
  env: Record<string, string | undefined>;
  fetch: typeof globalThis.fetch;
  /** Called with the token before anything else sees it (the runner's add-mask). */
  mask(secret: string): void;
  timeoutMs?: number;
}

/** One OIDC token for `audience`, as @actions/core's getIDToken asks for it. */
export async function requestIdToken(audience: string, deps: IdTokenDeps): Promise<string> {
  const url = deps.env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const requestToken = deps.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  if (!url || !requestToken) throw new Error(`the runner offers no OIDC token: the job needs \`${ID_TOKEN_PERMISSION}\``);
  const at = `${url}${url.includes('?') ? '&' : '?'}audience=${encodeURIComponent(audience)}`;
  let res: Response;
  try {
    res = await deps.fetch(at, {
      headers: { authorization: `Bearer ${requestToken}`, accept: 'application/json' },
      signal: AbortSignal.timeout(deps.timeoutMs ?? 30_000),
    });
  } catch (err) {
    throw new Error(`requesting the OIDC token from the runner: ${(err as Error).message}`, { cause: err });
  }
  if (!res.ok) throw new Error(`requesting the OIDC token from the runner: ${res.status} ${res.statusText}`);
  const value = ((await res.json()) as { value?: unknown }).value;
  if (typeof value !== 'string' || !value) throw new Error('requesting the OIDC token from the runner: the answer holds no token');
  deps.mask(value);
  return value;
}
