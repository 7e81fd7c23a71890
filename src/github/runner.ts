import * as core from '@actions/core';
import type { Logger } from '../log.js';

/** What the action tells the runner, through @actions/core: log lines and annotations, secrets to mask, outputs, the summary, failure. */
export interface Workflow extends Logger {
  mask(secret: string): void;
  setOutput(name: string, value: string): void;
  /** Appends Markdown to the step summary (GITHUB_STEP_SUMMARY); rejects when it cannot be written. */
  summary(markdown: string): Promise<void>;
  /** An error annotation, and exit code 1 for the step. */
  setFailed(message: string): void;
}

export const workflow: Workflow = {
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
  mask: (secret) => core.setSecret(secret),
  setOutput: (name, value) => core.setOutput(name, value),
  summary: async (markdown) => {
    try {
      await core.summary.addRaw(markdown).write();
    } finally {
      // What could not be written is not written later with another run's summary.
      core.summary.emptyBuffer();
    }
  },
  setFailed: (message) => core.setFailed(message),
};
