import { commandRunner } from './config/git.js';
import { runEngine, type EngineDeps, type RunResult } from './engine.js';
import { childEnv } from './gobuild/go.js';
import { parseKoEnvironment, type Inputs } from './inputs.js';
import { loadKoSettings } from './kosettings.js';
import type { Logger } from './log.js';
import { BUILDER, prepareRun } from './prepare.js';
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
  });
  return runEngine({ ...prepared, ko }, seams.wrap ? seams.wrap(deps) : deps);
}
