import * as core from '@actions/core';
import { readFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { GoBuildError } from './build/go.js';
import { explainFailure } from './explain.js';
import { runJob } from './job.js';
import { INPUT_NAMES, parseInputs, type RawInputs } from './inputs.js';
import type { Logger } from './log.js';
import { outputsOf, summaryMarkdown } from './outputs.js';

/** Read every input once, as raw strings (STYLE §2). The token is masked before anything else. */
export function readActionInputs(): RawInputs {
  const token = core.getInput('token');
  if (token) core.setSecret(token);
  const raw: RawInputs = {};
  for (const name of INPUT_NAMES) raw[name] = name === 'token' ? token : core.getInput(name);
  return raw;
}

/** The logger of a run inside Actions: workflow commands via @actions/core. */
export const actionsLogger: Logger = {
  info: (m) => core.info(m),
  warning: (m, where) => core.warning(m, where),
  error: (m, where) => core.error(m, where),
  debug: (m) => core.debug(m),
  group: (name, fn) => core.group(name, fn),
  section: (name, lines) => {
    core.startGroup(name);
    for (const line of lines) core.info(line);
    core.endGroup();
  },
};

/** The action: the only place that fails the step (STYLE §1). */
export async function run(env: Record<string, string | undefined> = process.env): Promise<void> {
  const logger = actionsLogger;
  try {
    const inputs = parseInputs(readActionInputs());
    const workspace = env.GITHUB_WORKSPACE || process.cwd();
    const payload = env.GITHUB_EVENT_PATH ? JSON.parse(readFileSync(env.GITHUB_EVENT_PATH, 'utf8')) : {};
    const result = await runJob(inputs, env, payload, workspace, logger);

    for (const [name, value] of Object.entries(outputsOf(result))) core.setOutput(name, value);
    if (env.GITHUB_STEP_SUMMARY) await appendFile(env.GITHUB_STEP_SUMMARY, summaryMarkdown(result));
    for (const p of result.packages) {
      core.info(`${result.pushed ? 'published' : 'built'} ${p.ref}`);
      for (const t of p.tags) core.info(`  ${p.repository}:${t}`);
    }
  } catch (err) {
    if (err instanceof GoBuildError) for (const d of err.diagnostics) logger.error(d.message, d.where);
    core.setFailed(explainFailure(err));
  }
}
