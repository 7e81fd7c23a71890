// The runner's OIDC token (docs/provenance.md#permissions): a job with `permissions:
// id-token: write` gets ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN; the
// toolkit's getIDToken asks that URL for a token of an audience and masks what it gets.
import { getIDToken } from '@actions/core';
import { withProcessEnv } from '../util.js';

export const ID_TOKEN_PERMISSION = 'permissions: id-token: write';

/** Whether the runner offers an OIDC token to this job. */
export const offersIdToken = (env: Record<string, string | undefined>): boolean => !!env.ACTIONS_ID_TOKEN_REQUEST_URL && !!env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;

export interface IdTokenDeps {
  /** The run's environment (the action's is process.env; the CLI and tests pass theirs). */
  env: Record<string, string | undefined>;
  /** Called with the token, besides the toolkit's own `::add-mask::`, before anything else sees it. */
  mask?(secret: string): void;
  /** How long the whole request may take, the toolkit's own retries included. */
  timeoutMs?: number;
}

/** One OIDC token for `audience`, from @actions/core's getIDToken. */
export async function requestIdToken(audience: string, deps: IdTokenDeps): Promise<string> {
  if (!offersIdToken(deps.env)) throw new Error(`the runner offers no OIDC token: the job needs \`${ID_TOKEN_PERMISSION}\``);
  // getIDToken reads both variables from process.env, as does its HTTP client for the proxy, all
  // before its first await (OidcClient.getIDTokenUrl, getRequestToken, HttpClient.request):
  // `env` is put in place for that synchronous part only, as runnerContext does for @actions/github.
  const asked = withProcessEnv(deps.env, () => getIDToken(audience));
  // getIDToken retries 502, 503 and 504 itself (up to 10 times, milliseconds apart) and has no
  // time limit: the limit here bounds the whole of it. The token is not part of our retry
  // policy: it is asked for once per run, and a refusal (no permission) would not change.
  const ms = deps.timeoutMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000}s`)), ms);
    timer.unref();
  });
  let value: string;
  try {
    value = await Promise.race([asked, late]);
  } catch (err) {
    // The toolkit's message spreads over lines ("Error Code : 401\n Error Message: …").
    const why = (err as Error).message.replace(/\s*\n\s*/g, ' ').replace(/^Error message: /, '');
    throw new Error(`requesting the OIDC token from the runner: ${why}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
  deps.mask?.(value);
  return value;
}
