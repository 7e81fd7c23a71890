import type { EngineDeps, RunResult } from './engine.js';
import { parseKoEnvironment, type Inputs } from './inputs.js';
import type { Logger } from './log.js';
import { BUILDER, prepareRun } from './prepare.js';
import { childEnv } from './gobuild/go.js';
import { commandRunner } from './config/git.js';

/**
 * One run with the real dependencies, shared by the action and the CLI: context and
 * provenance, .ko.yaml, the registries (credentials for the target host only), the engine.
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
  // prepareRun starts its git processes before it first waits, and the engine's code (most of
  // the bundle) is evaluated while they run rather than at start-up. "eager": ncc keeps these
  // modules in the one minified bundle (a separate chunk would be neither minified nor in
  // licenses.txt); only their evaluation waits for the import.
  // git gets the environment go gets: the runner passes the token as INPUT_TOKEN.
  const run = commandRunner(childEnv(env, [inputs.token ?? '', inputs.githubToken ?? ''].filter(Boolean)));
  const preparing = prepareRun(inputs, env, payload, workspace, { logger, run });
  preparing.catch(() => undefined); // awaited below, after go list has started
  const [{ loadKoSettings }, { realDeps }, { listPackages, runEngine }] = await Promise.all([
    import(/* webpackMode: "eager" */ './kosettings.js'),
    import(/* webpackMode: "eager" */ './wiring.js'),
    import(/* webpackMode: "eager" */ './engine.js'),
  ]);
  let prepared: Awaited<typeof preparing> | undefined;
  // .ko.yaml needs nothing from git but its templates, which are rendered only after go list.
  const ko = await loadKoSettings(inputs, env, workspace, (text, where, buildEnv) => prepared!.render!(text, where, buildEnv));
  const deps = realDeps({
    logger,
    env,
    username: inputs.username,
    token: inputs.token,
    githubToken: inputs.githubToken,
    targetRepository: () => inputs.repository ?? parseKoEnvironment(env).repository ?? prepared?.defaultRepository,
    timeoutMs: inputs.timeoutMs,
    signal: seams.signal,
  });
  const used = seams.wrap ? seams.wrap(deps) : deps;
  // go list runs while git does, unless an `env` value is a template: Go must see it rendered.
  const templated = Object.values(inputs.env).some((v) => v.includes('{{'));
  const listed = templated ? preparing.then((p) => listPackages(inputs, workspace, ko, used.go, p.render)) : listPackages(inputs, workspace, ko, used.go);
  listed.catch(() => undefined); // the engine awaits it
  prepared = await preparing;
  return runEngine({ ...prepared, ko, listed }, used);
}
