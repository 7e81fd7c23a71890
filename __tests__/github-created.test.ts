import { describe, expect, it } from '@jest/globals';
import { readContext } from '../src/github/context.js';
import { createdTime } from '../src/github/created.js';
import { loadEvent } from './support/events.js';

const ctxOf = (name: string, payload?: unknown) => {
  const e = loadEvent(name);
  return readContext(e.env, payload ?? e.payload);
};

/** A git stand-in that records whether it was asked. */
const git = (answer: string | undefined | Error) => {
  const calls: number[] = [];
  const fn = async () => {
    calls.push(1);
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return Object.assign(fn, { calls });
};

describe('createdTime (docs/image.md#determinism)', () => {
  it.each([
    ['push-branch-main', '2026-01-02T03:04:05Z'], // +02:00 converted to UTC
    ['push-tag-v1.2.3', '2026-01-02T03:04:05Z'],
    ['push-tag-v0.4.1', '2025-11-20T14:15:00Z'], // -05:00
    ['push-tag-v2.0.0-rc.1', '2026-01-10T12:00:30Z'],
    ['push-tag-nightly-7', '2026-01-07T22:59:59Z'],
    ['push-branch-feature-Foo_bar', '2026-01-03T05:20:00Z'], // +09:00
  ])('%s: from the payload head_commit → %s, git not asked', async (name, want) => {
    const g = git('2000-01-01T00:00:00Z');
    expect(await createdTime({ env: {}, ctx: ctxOf(name), gitCommitTime: g })).toBe(want);
    expect(g.calls).toHaveLength(0);
  });

  it.each(['pull-request-42', 'release-published-v1.2.3', 'workflow-dispatch-main', 'workflow-dispatch-tag-v1.4.0', 'schedule-main'])(
    '%s: no head_commit, so git gives the time',
    async (name) => {
      const g = git('2026-02-03T10:11:12+05:30\n');
      expect(await createdTime({ env: {}, ctx: ctxOf(name), gitCommitTime: g })).toBe('2026-02-03T04:41:12Z');
      expect(g.calls).toHaveLength(1);
    },
  );

  it.each([
    ['1767323045', '2026-01-02T03:04:05Z'],
    [' 0 ', '1970-01-01T00:00:00Z'],
    ['253402300799', '9999-12-31T23:59:59Z'],
  ])('SOURCE_DATE_EPOCH %p wins over everything → %s', async (epoch, want) => {
    const g = git('2000-01-01T00:00:00Z');
    expect(await createdTime({ env: { SOURCE_DATE_EPOCH: epoch }, ctx: ctxOf('push-branch-main'), gitCommitTime: g })).toBe(want);
    expect(g.calls).toHaveLength(0);
  });

  it('treats an empty SOURCE_DATE_EPOCH as unset', async () => {
    expect(await createdTime({ env: { SOURCE_DATE_EPOCH: '' }, ctx: ctxOf('push-branch-main'), gitCommitTime: git(undefined) })).toBe(
      '2026-01-02T03:04:05Z',
    );
  });

  it.each(['abc', '-1', '1.5', '1e9', '0x10', '253402300800', '99999999999999999999'])('SOURCE_DATE_EPOCH %p is an error naming it', async (epoch) => {
    await expect(createdTime({ env: { SOURCE_DATE_EPOCH: epoch }, ctx: ctxOf('push-branch-main'), gitCommitTime: git(undefined) })).rejects.toThrow(
      `SOURCE_DATE_EPOCH: "${epoch}" is not a whole number of seconds`,
    );
  });

  it('drops fractional seconds', async () => {
    const payload = structuredClone(loadEvent('push-branch-main').payload) as { head_commit: { timestamp: string } };
    payload.head_commit.timestamp = '2026-01-02T05:04:05.987+02:00';
    expect(await createdTime({ env: {}, ctx: ctxOf('push-branch-main', payload), gitCommitTime: git(undefined) })).toBe('2026-01-02T03:04:05Z');
  });

  it('falls back to git when the payload time is malformed', async () => {
    const payload = structuredClone(loadEvent('push-branch-main').payload) as { head_commit: { timestamp: string } };
    payload.head_commit.timestamp = 'yesterday';
    const g = git('2026-01-02T03:04:05Z');
    expect(await createdTime({ env: {}, ctx: ctxOf('push-branch-main', payload), gitCommitTime: g })).toBe('2026-01-02T03:04:05Z');
    expect(g.calls).toHaveLength(1);
  });

  it('never uses the wall clock: nothing available is an error that says what to do', async () => {
    const ctx = ctxOf('schedule-main');
    await expect(createdTime({ env: {}, ctx, gitCommitTime: git(undefined) })).rejects.toThrow(
      /cannot determine the image creation time.*set SOURCE_DATE_EPOCH, or check out the repository/,
    );
    await expect(createdTime({ env: {}, ctx, gitCommitTime: git('  ') })).rejects.toThrow(/cannot determine the image creation time/);
  });

  it('wraps a git failure, keeping it as the cause', async () => {
    const failure = new Error('fatal: not a git repository (or any of the parent directories): .git');
    const err = await createdTime({ env: {}, ctx: ctxOf('pull-request-42'), gitCommitTime: git(failure) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/git could not read the time of commit a5132d3462e663a1accdaa681b79c2ce7bdc6b3b; set SOURCE_DATE_EPOCH/);
    expect((err as Error).cause).toBe(failure);
  });

  it('rejects git output that is not RFC 3339', async () => {
    await expect(createdTime({ env: {}, ctx: ctxOf('schedule-main'), gitCommitTime: git('Fri Jan 2 03:04:05 2026') })).rejects.toThrow(
      /git gave "Fri Jan 2 03:04:05 2026" as the time of commit/,
    );
  });
});
