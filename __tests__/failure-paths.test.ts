// What a run does when things go wrong around it rather than in its input: the step being
// cancelled (the runner's SIGINT, then SIGTERM).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cancelOnSignals } from '../src/cancel.js';
import { parseInputs } from '../src/inputs.js';
import { runJob } from '../src/job.js';
import { MemoryLogger } from '../src/log.js';
import { exampleDir } from './support/engine.js';
import { loadEvent } from './support/events.js';

const GO_BIN = '/usr/lib/go-1.23/bin';
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ko-annotate-failure-paths-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** The command lines of the running `go build`s that write below `dir`. */
const goBuildsIn = (dir: string): string[] =>
  execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
    .split('\n')
    .filter((args) => /\bgo build\b/.test(args) && args.includes(dir));

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('cancelOnSignals', () => {
  const fakeProcess = () => Object.assign(new EventEmitter(), { pid: 4242, killed: [] as [number, string][], kill(pid: number, sig: string) { this.killed.push([pid, sig]); } });

  it('aborts on the first SIGINT or SIGTERM, and re-raises a second one with its listeners gone', () => {
    const proc = fakeProcess();
    const signal = cancelOnSignals(proc);
    expect(signal.aborted).toBe(false);
    proc.emit('SIGINT');
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).message).toMatch(/^cancelled by SIGINT/);
    expect(proc.killed).toEqual([]);
    proc.emit('SIGTERM');
    expect(proc.killed).toEqual([[4242, 'SIGTERM']]);
    expect(proc.listenerCount('SIGINT') + proc.listenerCount('SIGTERM')).toBe(0);
  });
});

describe('a cancelled run (the runner: SIGINT, SIGTERM 7.5 s later, then kill)', () => {
  it('kills its go builds, removes its work directory and fails at once', async () => {
    // A fresh Go cache: the standard library compiles for many seconds, the builds are still running when the step is cancelled.
    const root = join(tmp, 'tmp');
    const cache = join(tmp, 'gocache');
    await mkdir(root);
    await mkdir(cache);
    // A killed go leaves its own work directory behind: in ours, which afterAll removes.
    const goTmp = join(tmp, 'gotmp');
    await mkdir(goTmp);
    const event = loadEvent('push-branch-main');
    const env = { ...process.env, ...event.env, PATH: `${GO_BIN}:${process.env.PATH}`, GITHUB_WORKSPACE: exampleDir, GOCACHE: cache, GOTMPDIR: goTmp };
    const inputs = parseInputs({ packages: './cmd/hello', repository: 'ghcr.io/acme/hello', push: 'false', 'base-image': 'scratch', platforms: 'linux/amd64,linux/arm64', sbom: 'none', flags: '-buildvcs=false' });
    const controller = new AbortController();
    const running = runJob(inputs, env, event.payload, exampleDir, new MemoryLogger(), {
      signal: controller.signal,
      wrap: (deps) => ({ ...deps, tmpRoot: root }),
    });
    const outcome = running.then(
      () => undefined,
      (err: Error) => err,
    );
    await until('both go builds running', () => goBuildsIn(root).length === 2, 60_000);
    controller.abort(new Error('cancelled by SIGINT'));
    const cancelledAt = Date.now();
    const err = await outcome;
    // Well before the runner's SIGTERM.
    expect(Date.now() - cancelledAt).toBeLessThan(3000);
    expect(err).toBeDefined();
    expect(goBuildsIn(root)).toEqual([]);
    expect(await readdir(root)).toEqual([]);
  }, 120_000);
});

describe('a cancelled run waiting to retry a request', () => {
  it('stops waiting: a Retry-After of a minute does not hold the run', async () => {
    const { RetryPolicy } = await import('../src/registry/retry.js');
    const controller = new AbortController();
    const retry = new RetryPolicy({ signal: controller.signal });
    let attempts = 0;
    const running = retry.run('PUT a blob', async () => {
      attempts++;
      throw Object.assign(new Error('503 Service Unavailable'), { retryable: true, retryAfterMs: 60_000 });
    });
    const outcome = running.then(
      () => undefined,
      (err: Error) => err,
    );
    await new Promise((r) => setTimeout(r, 50));
    controller.abort(new Error('cancelled by SIGTERM'));
    const started = Date.now();
    expect((await outcome)?.message).toBe('cancelled by SIGTERM');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(attempts).toBe(1);
  });
});
