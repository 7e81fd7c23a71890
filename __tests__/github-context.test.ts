import { describe, expect, it } from '@jest/globals';
import { contextWithPayload, defaultRepository, readContext, runnerContext, sourceUrl } from '../src/github/context.js';
import { eventNames, loadEvent } from './support/events.js';

const MAIN = '6fad12684c7fd5fb7b3c083101884ba27a1b8b07';
const V123 = '3946162f07b73bb4f5d7b1118769d55e5409cde6';
const PR_HEAD = 'a5132d3462e663a1accdaa681b79c2ce7bdc6b3b';
const PR_MERGE = '3fc0c0533319a3d97a98b993a23110fe041b33cd';
const DESC = 'A tiny Go service that says hello, shipped as an OCI image';

const ctxOf = (name: string) => {
  const { env, payload } = loadEvent(name);
  return readContext(env, payload);
};

describe('readContext over the recorded runs', () => {
  it('has a fixture for every run this table covers', () => {
    expect(eventNames()).toEqual([
      'pull-request-42',
      'push-branch-feature-Foo_bar',
      'push-branch-main',
      'push-tag-nightly-7',
      'push-tag-v0.4.1',
      'push-tag-v1.2.3',
      'push-tag-v2.0.0-rc.1',
      'release-published-v1.2.3',
      'schedule-main',
      'workflow-dispatch-main',
      'workflow-dispatch-tag-v1.4.0',
    ]);
  });

  it.each([
    ['push-tag-v1.2.3', { eventName: 'push', refType: 'tag', refName: 'v1.2.3', sha: V123, revision: V123, headCommitTime: '2026-01-02T05:04:05+02:00' }],
    ['push-tag-v0.4.1', { eventName: 'push', refType: 'tag', refName: 'v0.4.1', headCommitTime: '2025-11-20T09:15:00-05:00' }],
    ['push-tag-v2.0.0-rc.1', { refType: 'tag', refName: 'v2.0.0-rc.1', headCommitTime: '2026-01-10T12:00:30Z' }],
    ['push-tag-nightly-7', { refType: 'tag', refName: 'nightly-7' }],
    ['push-branch-main', { eventName: 'push', refType: 'branch', refName: 'main', sha: MAIN, revision: MAIN, headCommitTime: '2026-01-02T05:04:05+02:00' }],
    ['push-branch-feature-Foo_bar', { refType: 'branch', refName: 'feature/Foo_bar', headCommitTime: '2026-01-03T14:20:00+09:00' }],
    ['pull-request-42', { eventName: 'pull_request', ref: 'refs/pull/42/merge', refName: '42/merge', sha: PR_MERGE, revision: PR_HEAD, prNumber: 42 }],
    ['release-published-v1.2.3', { eventName: 'release', refType: 'tag', releaseTag: 'v1.2.3', sha: V123, revision: V123 }],
    ['workflow-dispatch-main', { eventName: 'workflow_dispatch', refType: 'branch', refName: 'main', revision: MAIN }],
    ['workflow-dispatch-tag-v1.4.0', { eventName: 'workflow_dispatch', refType: 'tag', refName: 'v1.4.0' }],
    ['schedule-main', { eventName: 'schedule', refType: 'branch', refName: 'main', revision: MAIN, hasPayloadRepository: false }],
  ])('%s', (name, expected) => {
    expect(ctxOf(name)).toMatchObject(expected);
  });

  it.each(eventNames().filter((n) => n !== 'schedule-main'))('%s: repository facts come from the payload', (name) => {
    const ctx = ctxOf(name);
    expect(ctx).toMatchObject({
      repository: 'Octo-Org/Hello-World',
      owner: 'Octo-Org',
      actor: 'monalisa',
      serverUrl: 'https://github.com',
      apiUrl: 'https://api.github.com',
      hasPayloadRepository: true,
      description: DESC,
      license: 'Apache-2.0',
      defaultBranch: 'main',
    });
    expect(sourceUrl(ctx)).toBe('https://github.com/Octo-Org/Hello-World');
    expect(defaultRepository(ctx)).toBe('ghcr.io/octo-org/hello-world');
  });

  it('leaves out what the payload does not have', () => {
    const ctx = ctxOf('schedule-main');
    for (const k of ['description', 'license', 'defaultBranch', 'headCommitTime', 'prNumber', 'releaseTag'] as const) {
      expect(ctx).not.toHaveProperty(k);
    }
    // Only pull request events have a PR number; a release only on release events.
    expect(ctxOf('push-branch-main')).not.toHaveProperty('prNumber');
    expect(ctxOf('push-tag-v1.2.3')).not.toHaveProperty('releaseTag');
  });
});

describe('readContext details', () => {
  const base = loadEvent('push-branch-main');

  it('builds the PR head on pull_request_target too', () => {
    const { env, payload } = loadEvent('pull-request-42');
    // pull_request_target runs on the base branch: GITHUB_REF/GITHUB_SHA are the base's.
    const ctx = readContext(
      { ...env, GITHUB_EVENT_NAME: 'pull_request_target', GITHUB_REF: 'refs/heads/main', GITHUB_REF_NAME: 'main', GITHUB_SHA: MAIN },
      payload,
    );
    expect(ctx).toMatchObject({ sha: MAIN, revision: PR_HEAD, prNumber: 42, refType: 'branch' });
  });

  it('falls back to GITHUB_SHA when a pull_request payload has no head SHA, and to the ref for the number', () => {
    const { env } = loadEvent('pull-request-42');
    expect(readContext(env, {})).toMatchObject({ revision: PR_MERGE, prNumber: 42 });
  });

  it('uses the head commit time only when head_commit is the revision', () => {
    const payload = structuredClone(base.payload) as { head_commit: { id: string } };
    payload.head_commit.id = V123;
    expect(readContext(base.env, payload)).not.toHaveProperty('headCommitTime');
  });

  it.each([
    ['https://ghe.example.com/', 'https://ghe.example.com/api/v3/', 'https://ghe.example.com', 'https://ghe.example.com/api/v3'],
    ['https://ghe.example.com', 'https://ghe.example.com/api/v3', 'https://ghe.example.com', 'https://ghe.example.com/api/v3'],
    [undefined, undefined, 'https://github.com', 'https://api.github.com'],
    ['', '', 'https://github.com', 'https://api.github.com'],
  ])('server %s, API %s → %s, %s (GHES-safe)', (server, api, wantServer, wantApi) => {
    const ctx = readContext({ ...base.env, GITHUB_SERVER_URL: server, GITHUB_API_URL: api }, base.payload);
    expect(ctx.serverUrl).toBe(wantServer);
    expect(ctx.apiUrl).toBe(wantApi);
    expect(sourceUrl(ctx)).toBe(`${wantServer}/Octo-Org/Hello-World`);
  });

  it('trims a trailing slash in sourceUrl even on a hand-made context', () => {
    const ctx = { ...readContext(base.env, base.payload), serverUrl: 'https://ghe.example.com/' };
    expect(sourceUrl(ctx)).toBe('https://ghe.example.com/Octo-Org/Hello-World');
  });

  it.each([
    [undefined, /GITHUB_REPOSITORY is not set/],
    ['', /GITHUB_REPOSITORY is not set/],
    ['hello-world', /GITHUB_REPOSITORY: "hello-world" is not owner\/repo/],
    ['a/b/c', /GITHUB_REPOSITORY: "a\/b\/c" is not owner\/repo/],
    ['owner/', /is not owner\/repo/],
    ['own er/repo', /is not owner\/repo/],
  ])('GITHUB_REPOSITORY %p is an error', (value, message) => {
    expect(() => readContext({ ...base.env, GITHUB_REPOSITORY: value }, base.payload)).toThrow(message);
  });

  it.each([
    [undefined, /GITHUB_SHA is not set/],
    ['main', /GITHUB_SHA: "main" is not a commit SHA/],
  ])('GITHUB_SHA %p is an error', (value, message) => {
    expect(() => readContext({ ...base.env, GITHUB_SHA: value }, base.payload)).toThrow(message);
  });

  it('derives the ref type and name from GITHUB_REF when the runner did not set them', () => {
    const env = { GITHUB_REPOSITORY: 'o/r', GITHUB_SHA: MAIN.toUpperCase(), GITHUB_REF: 'refs/tags/v9.9.9' };
    expect(readContext(env, null)).toMatchObject({ refType: 'tag', refName: 'v9.9.9', sha: MAIN, eventName: '', actor: '', hasPayloadRepository: false });
  });

  it('treats a null license and description as absent', () => {
    const payload = structuredClone(base.payload) as { repository: { license: unknown; description: unknown } };
    payload.repository.license = null;
    payload.repository.description = null;
    const ctx = readContext(base.env, payload);
    expect(ctx.hasPayloadRepository).toBe(true);
    expect(ctx).not.toHaveProperty('license');
    expect(ctx).not.toHaveProperty('description');
  });
});

describe("@actions/github's Context for an environment", () => {
  it.each(eventNames())('%s: runnerContext reads GITHUB_EVENT_PATH and the run variables of the env it is given', (name) => {
    const { env, payload } = loadEvent(name);
    const warnings: string[] = [];
    const run = runnerContext(env, (m) => warnings.push(m));
    expect(warnings).toEqual([]);
    expect(run.payload).toEqual(payload);
    expect({ eventName: run.eventName, ref: run.ref, sha: run.sha, actor: run.actor, runId: run.runId }).toEqual({
      eventName: env.GITHUB_EVENT_NAME,
      ref: env.GITHUB_REF,
      sha: env.GITHUB_SHA,
      actor: env.GITHUB_ACTOR,
      runId: Number(env.GITHUB_RUN_ID),
    });
    // What the action reads from the file is what readContext makes of the recorded payload.
    expect(readContext(env, run.payload)).toEqual(readContext(env, payload));
  });

  it('warns about a GITHUB_EVENT_PATH that names no file and reads no payload, leaving process.env alone', () => {
    const { env } = loadEvent('push-branch-main');
    const before = process.env;
    const warnings: string[] = [];
    const run = runnerContext({ ...env, GITHUB_EVENT_PATH: '/nonexistent/event.json' }, (m) => warnings.push(m));
    expect(warnings).toEqual(['GITHUB_EVENT_PATH /nonexistent/event.json does not exist; running without the event payload']);
    expect(run.payload).toEqual({});
    expect(run.sha).toBe(MAIN);
    expect(process.env).toBe(before);
  });

  it('contextWithPayload takes the payload given, not the file GITHUB_EVENT_PATH names', () => {
    const { env } = loadEvent('push-branch-main');
    expect(contextWithPayload(env, { number: 7 }).payload).toEqual({ number: 7 });
    expect(contextWithPayload(env, null).payload).toEqual({});
    expect(contextWithPayload({}, {})).toMatchObject({ serverUrl: 'https://github.com', apiUrl: 'https://api.github.com' });
  });
});
