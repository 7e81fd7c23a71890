import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import type { Run } from './gobuild/go.js';

/**
 * Runs commands with exactly the environment given and no shell; output is captured, not
 * echoed. The program is found on the command's PATH as the OS does it (libuv adds .exe on
 * Windows). When `signal` aborts (the step is cancelled), each running command is killed, so
 * that no `go build` outlives the run or writes into its work directory as it is removed.
 */
export function execRunner(signal?: AbortSignal): Run {
  return (c) =>
    new Promise((resolve, reject) => {
      const child = spawn(c.cmd, c.args, { cwd: c.cwd, env: c.env, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true, signal });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => stdout.push(b));
      child.stderr.on('data', (b: Buffer) => stderr.push(b));
      child.on('error', (err: NodeJS.ErrnoException) => {
        // spawn says ENOENT for a missing directory as for a missing program: tell them apart.
        if (err.code !== 'ENOENT') return reject(err);
        stat(c.cwd).then(
          () => reject(err),
          () => reject(new Error(`cannot run ${c.cmd}: the directory ${JSON.stringify(c.cwd)} does not exist`, { cause: err })),
        );
      });
      child.on('close', (code, killedBy) =>
        resolve({ code: code ?? (killedBy ? 128 : 1), stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') }),
      );
    });
}

export const execRun: Run = execRunner();
