import { execFileSync } from 'node:child_process';

/**
 * `git` in `cwd` as a test fixture's author: a fixed identity and date, no signing, no system
 * config; returns trimmed stdout.
 */
export function gitIn(cwd: string, args: readonly string[], date: string): string {
  return execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', '-c', 'commit.gpgsign=false', '-c', 'tag.gpgsign=false', ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date, GIT_CONFIG_NOSYSTEM: '1' },
  }).trim();
}
