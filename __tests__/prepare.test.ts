import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { gitIn } from './support/git.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { realRun, type RunCommand } from '../src/config/git.js';
import { parseInputs } from '../src/inputs.js';
import { MemoryLogger } from '../src/log.js';
import { prepareRun } from '../src/prepare.js';

// A committer offset other than UTC, so that `%cI` and the Unix seconds really are compared.
const DATE = '2026-01-02T05:04:05+02:00';
let tmp: string;
let repo: string;
let head: string;
let first: string;

const git = (args: string[], date = DATE): string => gitIn(repo, args, date);

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'ko-prepare-'));
  repo = path.join(tmp, 'app');
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  await writeFile(path.join(repo, 'a.txt'), 'a\n');
  git(['add', '.']);
  git(['commit', '-q', '-m', 'one']);
  first = git(['rev-parse', 'HEAD']);
  git(['commit', '-q', '--allow-empty', '-m', 'two'], '2026-03-04T05:06:07-05:00');
  head = git(['rev-parse', 'HEAD']);
  git(['remote', 'add', 'origin', 'https://github.com/Octo-Org/Hello-World.git']);
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** realRun, recording each command line as it starts and ends. */
function recording(): { run: RunCommand; events: string[] } {
  const events: string[] = [];
  const run: RunCommand = async (args, cwd) => {
    const name = args.filter((a) => a !== '-c' && a !== 'log.showSignature=false').slice(1).join(' ');
    events.push(`start ${name}`);
    const r = await realRun(args, cwd);
    events.push(`end ${name}`);
    return r;
  };
  return { run, events };
}

const inputs = parseInputs({ push: 'false', sbom: 'none' });
const deps = (run: RunCommand) => ({ logger: new MemoryLogger(), run });

describe('prepareRun and git', () => {
  it('outside Actions: starts every git query before waiting for any, and takes HEAD’s time from them', async () => {
    const { run, events } = recording();
    const prepared = await prepareRun(inputs, { PATH: process.env.PATH, HOME: process.env.HOME }, {}, repo, deps(run));
    // What `git log -1 --format=%cI HEAD` says, in UTC.
    expect(prepared.provenance.created).toBe('2026-03-04T10:06:07Z');
    expect(prepared.ctx.repository).toBe('Octo-Org/Hello-World');
    expect(prepared.ctx.revision).toBe(head);
    expect(prepared.git).toMatchObject({ branch: 'main', fullCommit: head, isDirty: false });
    const firstEnd = events.findIndex((e) => e.startsWith('end '));
    expect(events.slice(0, firstEnd)).toHaveLength(6);
    expect(events.slice(firstEnd).some((e) => e.startsWith('start '))).toBe(false);
    expect(events).not.toContain('start log -1 --format=%cI ' + head);
  });

  it('in Actions: asks git for the time of a revision that is not HEAD', async () => {
    const { run, events } = recording();
    const env = {
      GITHUB_REPOSITORY: 'Octo-Org/Hello-World',
      GITHUB_SHA: first,
      GITHUB_REF: 'refs/heads/main',
      GITHUB_EVENT_NAME: 'push',
    };
    const prepared = await prepareRun(inputs, env, {}, repo, deps(run));
    expect(prepared.provenance.created).toBe('2026-01-02T03:04:05Z');
    expect(events).toContain(`start log -1 --format=%cI ${first}`);
    // The runner's context: no origin lookup.
    expect(events.some((e) => e.includes('remote get-url'))).toBe(false);
  });

  it('says whether the tags follow the repository\'s existing ones: a stable release\'s do, a branch\'s and explicit tags do not', async () => {
    const env = (ref: string) => ({ GITHUB_REPOSITORY: 'Octo-Org/Hello-World', GITHUB_SHA: head, GITHUB_REF: ref, GITHUB_EVENT_NAME: 'push' });
    expect((await prepareRun(inputs, env('refs/heads/main'), {}, repo, deps(realRun))).tagsFollowExisting).toBe(false);
    expect((await prepareRun(inputs, env('refs/tags/v1.2.3'), {}, repo, deps(realRun))).tagsFollowExisting).toBe(true);
    expect((await prepareRun(inputs, env('refs/tags/v1.3.0-rc.1'), {}, repo, deps(realRun))).tagsFollowExisting).toBe(false);
    const explicit = parseInputs({ push: 'false', sbom: 'none', tags: 'stable' });
    expect((await prepareRun(explicit, env('refs/tags/v1.2.3'), {}, repo, deps(realRun))).tagsFollowExisting).toBe(false);
  });

  it('fails as before when the revision has no commit time', async () => {
    const env = { GITHUB_REPOSITORY: 'Octo-Org/Hello-World', GITHUB_SHA: 'f'.repeat(40), GITHUB_REF: 'refs/heads/main', GITHUB_EVENT_NAME: 'push' };
    await expect(prepareRun(inputs, env, {}, repo, deps(realRun))).rejects.toThrow(`no git commit time for ${'f'.repeat(40)}`);
  });

  it('on a pull request checked out as actions/checkout does (the merge commit, depth 1), fetches the head for its time', async () => {
    // The base repository: main, a feature branch (the PR head), and GitHub's refs/pull/1/merge.
    const origin = path.join(tmp, 'pr-origin');
    execFileSync('git', ['init', '-q', '-b', 'main', origin]);
    const at = (args: string[], date: string) => gitIn(origin, args, date);
    at(['commit', '-q', '--allow-empty', '-m', 'base'], '2026-01-01T00:00:00Z');
    at(['checkout', '-q', '-b', 'feature'], '2026-01-01T00:00:00Z');
    at(['commit', '-q', '--allow-empty', '-m', 'head'], '2026-02-03T04:05:06+01:00');
    const prHead = at(['rev-parse', 'HEAD'], '2026-01-01T00:00:00Z');
    at(['checkout', '-q', 'main'], '2026-01-01T00:00:00Z');
    at(['merge', '-q', '--no-ff', 'feature', '-m', 'merge'], '2026-05-06T07:08:09Z');
    const merge = at(['rev-parse', 'HEAD'], '2026-01-01T00:00:00Z');
    at(['update-ref', 'refs/pull/1/merge', merge], '2026-01-01T00:00:00Z');
    at(['reset', '-q', '--hard', 'HEAD~1'], '2026-01-01T00:00:00Z');
    // The workspace: only the merge commit, as actions/checkout fetches it for pull_request.
    const ws = path.join(tmp, 'pr-ws');
    execFileSync('git', ['init', '-q', ws]);
    execFileSync('git', ['remote', 'add', 'origin', `file://${origin}`], { cwd: ws });
    execFileSync('git', ['fetch', '-q', '--no-tags', '--depth=1', 'origin', `+${merge}:refs/remotes/pull/1/merge`], { cwd: ws });
    execFileSync('git', ['checkout', '-q', '--detach', 'refs/remotes/pull/1/merge'], { cwd: ws });
    expect((await realRun(['git', 'cat-file', '-e', prHead], ws)).code).not.toBe(0);

    const env = { GITHUB_REPOSITORY: 'Octo-Org/Hello-World', GITHUB_SHA: merge, GITHUB_REF: 'refs/pull/1/merge', GITHUB_EVENT_NAME: 'pull_request' };
    const payload = { pull_request: { number: 1, head: { sha: prHead } } };
    const logger = new MemoryLogger();
    const prepared = await prepareRun(inputs, env, payload, ws, { logger, run: realRun });
    expect(prepared.provenance.revision).toBe(prHead);
    expect(prepared.provenance.created).toBe('2026-02-03T03:05:06Z');
    expect(logger.lines).toContain(`fetched the pull request's head ${prHead} for its commit time (the checkout has only the merge commit)`);
  });
});
