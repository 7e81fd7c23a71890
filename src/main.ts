import { appendFile } from 'node:fs/promises';
import { GoBuildError } from './gobuild/go.js';
import { explainFailure } from './explain.js';
import { getInput, workflow, type Workflow } from './github/commands.js';
import { readPayload } from './github/payload.js';
import { runJob } from './job.js';
import { INPUT_NAMES, parseInputs, type RawInputs } from './inputs.js';
import { outputsOf, summaryMarkdown } from './outputs.js';

/** Read every input once, as raw strings (docs/architecture.md#inputs). The token is masked before anything else. */
export function readActionInputs(env: Record<string, string | undefined>, actions: Workflow): RawInputs {
  const token = getInput('token', env);
  if (token) actions.mask(token);
  const raw: RawInputs = {};
  for (const name of INPUT_NAMES) raw[name] = name === 'token' ? token : getInput(name, env);
  return raw;
}

/**
 * The action: the only place that fails the step (docs/architecture.md#entry). `signal`: aborted when the step
 * is cancelled (src/cancel.ts).
 */
export async function run(env: Record<string, string | undefined> = process.env, actions: Workflow = workflow(env), signal?: AbortSignal): Promise<void> {
  try {
    const inputs = parseInputs(readActionInputs(env, actions));
    const workspace = env.GITHUB_WORKSPACE || process.cwd();
    const payload = readPayload(env, (m) => actions.warning(m));
    const result = await runJob(inputs, env, payload, workspace, actions, { signal });

    for (const [name, value] of Object.entries(outputsOf(result))) actions.setOutput(name, value);
    // Everything is published and the outputs are set: a summary that cannot be written costs
    // the summary, not the step (docker/build-push-action treats its summary the same way).
    const summary = env.GITHUB_STEP_SUMMARY;
    if (summary) {
      await appendFile(summary, summaryMarkdown(result)).catch((err: Error) =>
        actions.warning(`could not write the step summary to ${summary}: ${err.message}`),
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
