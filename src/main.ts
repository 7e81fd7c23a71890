import * as core from '@actions/core';
import { GoBuildError } from './gobuild/go.js';
import { explainFailure } from './explain.js';
import { runnerContext } from './github/context.js';
import { workflow, type Workflow } from './github/runner.js';
import { runJob } from './job.js';
import { INPUT_NAMES, parseInputs, type RawInputs } from './inputs.js';
import { outputsOf, summaryMarkdown } from './outputs.js';

const SECRETS = new Set<string>(['token', 'github-token']);

/** Read every input once, as raw strings (docs/architecture.md#inputs). The tokens are masked before anything else. */
export function readActionInputs(actions: Workflow): RawInputs {
  const raw: RawInputs = {};
  for (const name of INPUT_NAMES) {
    raw[name] = core.getInput(name);
    if (SECRETS.has(name) && raw[name]) actions.mask(raw[name]);
  }
  // The runner's OIDC request token lets anyone who has it ask for the job's identity token.
  if (process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN) actions.mask(process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN);
  return raw;
}

/**
 * The action: the only place that fails the step (docs/architecture.md#entry). It reads the
 * runner's environment (process.env) and its event payload (@actions/github's context). `signal`:
 * aborted when the step is cancelled (src/cancel.ts).
 */
export async function run(actions: Workflow = workflow, signal?: AbortSignal): Promise<void> {
  const env = process.env;
  try {
    const inputs = parseInputs(readActionInputs(actions));
    const workspace = env.GITHUB_WORKSPACE || process.cwd();
    const { payload } = runnerContext(env, (m) => actions.warning(m));
    const result = await runJob(inputs, env, payload, workspace, actions, { signal });

    for (const [name, value] of Object.entries(outputsOf(result))) actions.setOutput(name, value);
    // Everything is published and the outputs are set: a summary that cannot be written costs
    // the summary, not the step (docker/build-push-action treats its summary the same way).
    if (env.GITHUB_STEP_SUMMARY) {
      await actions.summary(summaryMarkdown(result)).catch((err: Error) =>
        actions.warning(`could not write the step summary to ${env.GITHUB_STEP_SUMMARY}: ${err.message}`),
      );
    }
    for (const p of result.packages) {
      actions.info(`${result.pushed ? 'published' : 'built'} ${p.ref}`);
      for (const t of p.tags) actions.info(`  ${p.repository}:${t}`);
    }
  } catch (err) {
    // A cancelled run fails with why, not with what the killed `go build` or request said.
    if (signal?.aborted) return actions.setFailed(explainFailure(signal.reason));
    if (err instanceof GoBuildError) for (const d of err.diagnostics) actions.error(d.message, d.where);
    actions.setFailed(explainFailure(err));
  }
}
