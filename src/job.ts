import { commandRunner } from './config/git.js';
import { runEngine, type EngineDeps, type RunResult } from './engine.js';
import { childEnv } from './gobuild/go.js';
import { parseKoEnvironment, type Inputs } from './inputs.js';
import { loadKoSettings } from './kosettings.js';
import type { Logger } from './log.js';
import { BUILDER, prepareRun } from './prepare.js';
import { ID_TOKEN_PERMISSION, offersIdToken } from './provenance/oidc.js';
import { sigstoreEndpoints } from './provenance/sigstore.js';
import { realDeps } from './wiring.js';

/**
 * One run with the real dependencies, shared by the action and the CLI, in order: the context
 * and provenance (git, the event, the repository API), .ko.yaml, the registries (credentials for
 * the target host only), then the engine, which lists the packages with Go and builds them.
 */
export async function runJob(
  inputs: Inputs,
  env: Record<string, string | undefined>,
  payload: unknown,
  workspace: string,
  logger: Logger,
  seams: {
    /** Lets a test observe or replace real dependencies (docs/architecture.md#dependencies). */
    wrap?: (deps: EngineDeps) => EngineDeps;
    /** Aborted when the step is cancelled (src/cancel.ts). */
    signal?: AbortSignal;
  } = {},
): Promise<RunResult> {
  // docs/provenance.md#permissions: a required signature without a token is bad input, before any build.
  if (inputs.provenance === 'true' && !offersIdToken(env)) {
    throw new Error(`input "provenance": "true" needs the runner's OIDC token, which it offers only to a job with \`${ID_TOKEN_PERMISSION}\` (docs/provenance.md#permissions)`);
  }
  logger.info(`${BUILDER}: ${inputs.packages.join(', ')} in ${inputs.workingDirectory}`);
  // git gets the environment go gets: without the action's inputs and tokens.
  const secrets = [inputs.token ?? '', inputs.githubToken ?? ''].filter(Boolean);
  const prepared = await prepareRun(inputs, env, payload, workspace, { logger, run: commandRunner(childEnv(env, secrets)) });
  const ko = await loadKoSettings(inputs, env, workspace, prepared.render);
  const deps = realDeps({
    logger,
    env,
    username: inputs.username,
    token: inputs.token,
    githubToken: inputs.githubToken,
    targetRepository: inputs.repository ?? parseKoEnvironment(env).repository ?? prepared.defaultRepository,
    timeoutMs: inputs.timeoutMs,
    signal: seams.signal,
    provenance: () => {
      const p = prepared;
      if (!p.push || inputs.provenance === 'false' || !offersIdToken(env)) return undefined;
      return {
        env,
        endpoints: sigstoreEndpoints(inputs.sigstore, payload, p.ctx.serverUrl),
        serverUrl: p.ctx.serverUrl,
        // The toolkit's getIDToken masks the token itself (`::add-mask::`); no second mask.
        // The github-token goes to GitHub's API only, never to a registry (docs/publishing.md#credentials).
        api: inputs.githubToken ? { apiUrl: p.ctx.apiUrl, repository: p.ctx.repository, token: inputs.githubToken } : undefined,
      };
    },
  });
  logger.info(provenanceLine(inputs, env, payload, prepared.push, prepared.ctx.serverUrl));
  return { ...(await runEngine({ ...prepared, ko }, seams.wrap ? seams.wrap(deps) : deps)), owner: prepared.ctx.owner };
}

/** One line on whether and how this run signs (docs/provenance.md). */
function provenanceLine(inputs: Inputs, env: Record<string, string | undefined>, payload: unknown, push: boolean, serverUrl: string): string {
  if (inputs.provenance === 'false') return 'provenance: off (input "provenance" is false)';
  if (!push) return 'provenance: not signed, nothing is pushed';
  if (!offersIdToken(env)) return `provenance: not signed: the runner offers no OIDC token; give the job \`${ID_TOKEN_PERMISSION}\` (and \`permissions: attestations: write\`) to sign it (docs/provenance.md)`;
  const e = sigstoreEndpoints(inputs.sigstore, payload, serverUrl);
  return `provenance: signing with Sigstore: Fulcio ${e.fulcio}${e.rekor ? `, Rekor ${e.rekor}` : ''}${e.tsa ? `, timestamp authority ${e.tsa}` : ''}`;
}
