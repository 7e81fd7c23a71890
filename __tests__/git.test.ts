import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { gitIn } from './support/git.js';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EMPTY_GIT_INFO, gitInfo, realRun, type RunCommand } from '../src/config/git.js';

// Fixed identities and dates make the commit hashes the same on every machine.
const FIRST_DATE = '2026-01-02T03:04:05Z';
const SECOND_DATE = '2026-02-03T04:05:06Z';

let tmp: string;
let repo: string;
let firstCommit: string;
let secondCommit: string;

const sh = (cwd: string, args: string[], date = FIRST_DATE): string => gitIn(cwd, args, date);

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'ko-git-'));
  repo = path.join(tmp, 'repo');
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  await writeFile(path.join(repo, 'a.txt'), 'one\n');
  sh(repo, ['add', 'a.txt']);
  sh(repo, ['commit', '-q', '-m', 'first']);
  firstCommit = sh(repo, ['rev-parse', 'HEAD']);
  sh(repo, ['tag', '-a', 'v1.0.0', '-m', 'v1.0.0']);
  await writeFile(path.join(repo, 'a.txt'), 'two\n');
  sh(repo, ['commit', '-q', '-am', 'second'], SECOND_DATE);
  secondCommit = sh(repo, ['rev-parse', 'HEAD']);
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('gitInfo on a real repository', () => {
  it('reads commit, date, branch and a clean tree; no tag on an untagged commit', async () => {
    const info = await gitInfo({ dir: repo, run: realRun });
    expect(info).toEqual({
      branch: 'main',
      tag: '',
      shortCommit: secondCommit.slice(0, info.shortCommit.length),
      fullCommit: secondCommit,
      commitDate: SECOND_DATE,
      commitTimestamp: String(Date.parse(SECOND_DATE) / 1000),
      isDirty: false,
      treeState: 'clean',
    });
    expect(info.shortCommit.length).toBeGreaterThanOrEqual(7);
  });

  it('names the tag on a tagged commit, and takes the branch from the runner when HEAD is detached', async () => {
    sh(repo, ['checkout', '-q', '--detach', 'v1.0.0']);
    try {
      const bare = await gitInfo({ dir: repo, run: realRun });
      expect(bare).toMatchObject({ tag: 'v1.0.0', fullCommit: firstCommit, branch: '', commitDate: FIRST_DATE });

      // A pull_request run: the PR's source branch.
      const pr = await gitInfo({ dir: repo, run: realRun, env: { GITHUB_HEAD_REF: 'feature/x', GITHUB_REF_NAME: '42/merge', GITHUB_REF_TYPE: 'branch' } });
      expect(pr.branch).toBe('feature/x');
      // A push run checked out detached (e.g. a checkout of github.sha).
      const push = await gitInfo({ dir: repo, run: realRun, env: { GITHUB_HEAD_REF: '', GITHUB_REF_NAME: 'release', GITHUB_REF_TYPE: 'branch' } });
      expect(push.branch).toBe('release');
      const oldRunner = await gitInfo({ dir: repo, run: realRun, env: { GITHUB_REF: 'refs/heads/release', GITHUB_REF_NAME: 'release' } });
      expect(oldRunner.branch).toBe('release');
      // A tag run: the ref name is a tag, not a branch.
      const tagRun = await gitInfo({ dir: repo, run: realRun, env: { GITHUB_REF_NAME: 'v1.0.0', GITHUB_REF_TYPE: 'tag' } });
      expect(tagRun.branch).toBe('');
    } finally {
      sh(repo, ['checkout', '-q', 'main']);
    }
  });

  it('prefers the checked-out branch over the runner variables', async () => {
    const info = await gitInfo({ dir: repo, run: realRun, env: { GITHUB_REF_NAME: 'other', GITHUB_REF_TYPE: 'branch' } });
    expect(info.branch).toBe('main');
  });

  it('reports a dirty tree: a changed tracked file, or an untracked file', async () => {
    await writeFile(path.join(repo, 'a.txt'), 'changed\n');
    try {
      const info = await gitInfo({ dir: repo, run: realRun });
      expect(info).toMatchObject({ isDirty: true, treeState: 'dirty', fullCommit: secondCommit });
    } finally {
      sh(repo, ['checkout', '-q', '--', 'a.txt']);
    }
    const file = path.join(repo, 'untracked.txt');
    await writeFile(file, 'x');
    try {
      expect(await gitInfo({ dir: repo, run: realRun })).toMatchObject({ isDirty: true, treeState: 'dirty' });
    } finally {
      await rm(file);
    }
    expect(await gitInfo({ dir: repo, run: realRun })).toMatchObject({ isDirty: false, treeState: 'clean' });
  });

  it('works from a subdirectory of the repository', async () => {
    const sub = path.join(repo, 'sub');
    await mkdir(sub, { recursive: true });
    const info = await gitInfo({ dir: sub, run: realRun });
    expect(info.fullCommit).toBe(secondCommit);
  });
});

describe('gitInfo without a repository', () => {
  it('returns empty facts outside a git repository', async () => {
    const outside = await mkdtemp(path.join(tmpdir(), 'ko-nogit-'));
    // Stop git's upward search at the temp directory, in case the machine's temp dir is itself
    // inside a checkout.
    const saved = process.env.GIT_CEILING_DIRECTORIES;
    process.env.GIT_CEILING_DIRECTORIES = path.dirname(outside);
    try {
      expect(await gitInfo({ dir: outside, run: realRun })).toEqual(EMPTY_GIT_INFO);
      const notARepo: RunCommand = async () => ({ stdout: '', stderr: 'fatal: not a git repository', code: 128 });
      expect(await gitInfo({ dir: outside, run: notARepo })).toEqual(EMPTY_GIT_INFO);
    } finally {
      if (saved === undefined) delete process.env.GIT_CEILING_DIRECTORIES;
      else process.env.GIT_CEILING_DIRECTORIES = saved;
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('returns empty facts when git is not installed (realRun resolves 127) or the runner throws', async () => {
    expect(await realRun(['git-does-not-exist-here'], tmpdir())).toMatchObject({ code: 127 });
    const throwing: RunCommand = async () => {
      throw new Error('spawn git ENOENT');
    };
    expect(await gitInfo({ dir: tmpdir(), run: throwing })).toEqual(EMPTY_GIT_INFO);
  });

  it('leaves commit facts empty in a repository without commits', async () => {
    const fresh = path.join(tmp, 'fresh');
    execFileSync('git', ['init', '-q', '-b', 'main', fresh]);
    const info = await gitInfo({ dir: fresh, run: realRun });
    expect(info).toMatchObject({ fullCommit: '', shortCommit: '', commitDate: '', commitTimestamp: '', tag: '', isDirty: false, treeState: 'clean' });
  });
});

describe('gitInfo command lines', () => {
  it('runs git with arguments as data, never through a shell, in the given directory', async () => {
    const calls: { args: string[]; cwd: string }[] = [];
    const run: RunCommand = async (args, cwd) => {
      calls.push({ args, cwd });
      const sub = args.slice(3).join(' ');
      if (sub === 'rev-parse --is-inside-work-tree') return { stdout: 'true\n', code: 0 };
      if (sub.startsWith('show')) return { stdout: 'f'.repeat(40) + '\r\nfffffff\r\n1767323045\r\n', code: 0 };
      if (sub === 'rev-parse --abbrev-ref HEAD') return { stdout: 'main\n', code: 0 };
      if (sub.startsWith('describe')) return { stdout: '', code: 128 };
      if (sub === 'status --porcelain') return { stdout: '', code: 0 };
      return { stdout: '', code: 1 };
    };
    const info = await gitInfo({ dir: '/src', run });
    expect(info).toEqual({
      branch: 'main',
      tag: '',
      shortCommit: 'fffffff',
      fullCommit: 'f'.repeat(40),
      commitDate: '2026-01-02T03:04:05Z',
      commitTimestamp: '1767323045',
      isDirty: false,
      treeState: 'clean',
    });
    expect(calls.every((c) => c.cwd === '/src' && c.args[0] === 'git' && c.args[1] === '-c')).toBe(true);
    expect(calls.map((c) => c.args.slice(3).join(' '))).toContain('describe --tags --exact-match HEAD');
  });
});
