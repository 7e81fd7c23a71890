import { getExecOutput } from '@actions/exec';
import type { Run } from './build/go.js';

/**
 * Runs a command with exactly the environment given and no shell; output is captured, not
 * echoed. @actions/exec finds the program on PATH the way each OS does (PATHEXT on Windows).
 */
export const execRun: Run = async (c) => {
  const r = await getExecOutput(c.cmd, c.args, { cwd: c.cwd, env: c.env, silent: true, ignoreReturnCode: true });
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
};
