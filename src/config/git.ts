import { execFile } from 'node:child_process';

/**
 * What ko's templates know about the source checkout (`{{.Git.*}}`). Outside a git repository
 * (or without git installed) every field is empty and `isDirty` is false: templates still render,
 * and a build of a plain directory is not an error.
 */
export interface GitInfo {
  /** The branch being built; empty on a detached HEAD that the environment cannot name (a tag build). */
  branch: string;
  /** A tag pointing exactly at HEAD, or empty. */
  tag: string;
  shortCommit: string;
  fullCommit: string;
  /** Committer date of HEAD, RFC 3339 UTC (`2026-01-02T03:04:05Z`), or empty. */
  commitDate: string;
  /** Committer date of HEAD as decimal Unix seconds, or empty. */
  commitTimestamp: string;
  isDirty: boolean;
  /** `clean` or `dirty`; empty outside a repository, which is neither. */
  treeState: 'clean' | 'dirty' | '';
}

export const EMPTY_GIT_INFO: Readonly<GitInfo> = Object.freeze({
  branch: '',
  tag: '',
  shortCommit: '',
  fullCommit: '',
  commitDate: '',
  commitTimestamp: '',
  isDirty: false,
  treeState: '',
});

/**
 * Runs one command line (`args[0]` is the program) in `cwd` and reports its standard output
 * and exit code. It must not reject for a non-zero exit; `realRun` also resolves (code 127)
 * when the program cannot be started, as a shell would.
 */
export type RunCommand = (args: string[], cwd: string) => Promise<{ stdout: string; code: number; stderr?: string }>;

/** Environment variables read here (a GitHub runner sets them; the CLI usually does not). */
export interface GitEnv {
  GITHUB_HEAD_REF?: string;
  GITHUB_REF?: string;
  GITHUB_REF_NAME?: string;
  GITHUB_REF_TYPE?: string;
  [name: string]: string | undefined;
}

/**
 * `log.showSignature=false`: a user's global config can make `git show` print signature
 * verification lines before the format output (ko passes the same option for that reason).
 */
const git = (...args: string[]): string[] => ['git', '-c', 'log.showSignature=false', ...args];

/** Git facts about `dir` for `{{.Git.*}}` templates. Never throws: an unusable git means no facts. */
export async function gitInfo(opts: { dir: string; run: RunCommand; env?: GitEnv }): Promise<GitInfo> {
  const { dir, env = {} } = opts;
  const run = async (args: string[]) => {
    try {
      const r = await opts.run(args, dir);
      return { ok: r.code === 0, out: r.stdout.replace(/\r\n/g, '\n') };
    } catch {
      return { ok: false, out: '' };
    }
  };

  // Every query at once: each is its own process, so together they take about as long as the
  // slowest. Outside a repository they all fail and the answers are discarded.
  const [inside, head, abbrevRef, described, status] = await Promise.all([
    run(git('rev-parse', '--is-inside-work-tree')),
    // One process for the three commit facts. It fails in a repository without commits, where
    // there is no commit to describe (ko then leaves them empty as well).
    run(git('show', '-s', '--format=%H%n%h%n%ct', 'HEAD')),
    run(git('rev-parse', '--abbrev-ref', 'HEAD')),
    // Only a tag on HEAD itself: ko uses `git describe --tags --abbrev=0`, which names the last
    // tag reachable from HEAD, so an untagged commit after v1.2.3 would still say "v1.2.3".
    run(git('describe', '--tags', '--exact-match', 'HEAD')),
    run(git('status', '--porcelain')),
  ]);
  if (!inside.ok || inside.out.trim() !== 'true') return { ...EMPTY_GIT_INFO };

  let fullCommit = '';
  let shortCommit = '';
  let commitDate = '';
  let commitTimestamp = '';
  if (head.ok) {
    const [full = '', short = '', ct = ''] = head.out.split('\n').map((l) => l.trim());
    fullCommit = full;
    shortCommit = short;
    if (/^-?\d+$/.test(ct)) {
      commitTimestamp = ct;
      commitDate = rfc3339(new Date(Number(ct) * 1000));
    }
  }
  const branch = currentBranch(abbrevRef, env);
  const tag = fullCommit && described.ok ? firstLine(described.out) : '';
  // As in ko: any output from `git status --porcelain` (untracked files included), or a failing
  // status, counts as dirty.
  const isDirty = !status.ok || status.out.trim() !== '';

  return { branch, tag, shortCommit, fullCommit, commitDate, commitTimestamp, isDirty, treeState: isDirty ? 'dirty' : 'clean' };
}

/**
 * The checked-out branch, when HEAD is on one (`local` is `git rev-parse --abbrev-ref HEAD`).
 * actions/checkout leaves HEAD detached for pull requests (at the merge commit) and for tags,
 * so then the runner's variables name the branch: `GITHUB_HEAD_REF` is the PR's source branch,
 * and `GITHUB_REF_NAME` is the branch of a push, schedule or dispatch run — but a tag's name on
 * tag runs, which is not a branch.
 */
function currentBranch(local: { ok: boolean; out: string }, env: GitEnv): string {
  const name = local.ok ? firstLine(local.out) : '';
  if (name && name !== 'HEAD') return name;
  if (env.GITHUB_HEAD_REF) return env.GITHUB_HEAD_REF;
  const isBranchRef = env.GITHUB_REF_TYPE ? env.GITHUB_REF_TYPE === 'branch' : (env.GITHUB_REF ?? '').startsWith('refs/heads/');
  if (isBranchRef && env.GITHUB_REF_NAME) return env.GITHUB_REF_NAME;
  return '';
}

const firstLine = (s: string): string => s.split('\n')[0]!.trim();

/** RFC 3339 in UTC at whole seconds, as Go's `time.RFC3339` prints a UTC time. */
export function rfc3339(d: Date): string {
  if (Number.isNaN(d.getTime())) throw new Error(`invalid date: ${String(d)}`);
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The real runner: `execFile`, so no shell ever parses the arguments (on Windows too).
 * A program that cannot be started resolves with code 127 rather than rejecting, so callers
 * treat "git is not installed" like any failed command. `env` is the whole environment of the
 * commands (PATH finds them): the job gives the run's less the token (childEnv), as go gets it;
 * without one, it is ours.
 */
export const commandRunner = (env?: Record<string, string>): RunCommand => (args, cwd) =>
  new Promise((resolve) => {
    const [file, ...rest] = args;
    if (!file) {
      resolve({ stdout: '', stderr: 'empty command line', code: 127 });
      return;
    }
    execFile(file, rest, { cwd, env, encoding: 'utf8', windowsHide: true, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve({ stdout, stderr, code: 0 });
      // A number is the exit status; a string (`ENOENT`, `EACCES`) means it never ran.
      const status: unknown = (err as { code?: unknown }).code;
      const code = typeof status === 'number' ? status : 127;
      resolve({ stdout: stdout ?? '', stderr: stderr || err.message, code });
    });
  });

export const realRun: RunCommand = commandRunner();
