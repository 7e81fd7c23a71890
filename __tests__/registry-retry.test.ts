import { describe, expect, it } from '@jest/globals';
import { RegistryError } from '../src/registry/errors.js';
import { GaveUpError, isRetryable, parseRetryAfter, RetryPolicy, type RetryOptions } from '../src/registry/retry.js';

const op = { action: 'push manifest v1', preposition: 'to' as const };
const registryError = (status: number, retryAfterMs?: number) => new RegistryError({ operation: op, host: 'r.io', repository: 'app', status, retryAfterMs });
const reset = () => new TypeError('fetch failed', { cause: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }) });

/** A policy with a fake clock whose sleep advances the clock. */
function policy(opts: RetryOptions = {}) {
  let now = 1_000_000;
  const sleeps: number[] = [];
  const p = new RetryPolicy({
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
    },
    random: () => 0.5,
    ...opts,
  });
  return { p, sleeps, clock: () => now };
}

/** Fails with each error in turn, then returns 'ok'. */
function failing(...errors: unknown[]) {
  let calls = 0;
  const fn = async () => {
    calls++;
    if (errors.length) throw errors.shift();
    return 'ok';
  };
  return { fn, calls: () => calls };
}

describe('RetryPolicy', () => {
  it.each([
    ['503', true, registryError(503)],
    ['500', true, registryError(500)],
    ['408', true, registryError(408)],
    ['429', true, registryError(429)],
    ['connection reset', true, reset()],
    ['undici socket closed', true, new TypeError('terminated', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) })],
    ['headers timeout', true, new TypeError('fetch failed', { cause: Object.assign(new Error('timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' }) })],
    ['401', false, registryError(401)],
    ['403', false, registryError(403)],
    ['404', false, registryError(404)],
    ['400', false, registryError(400)],
    ['connection refused', false, new TypeError('fetch failed', { cause: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }) })],
    ['our own deadline', false, new DOMException('The operation was aborted due to timeout', 'TimeoutError')],
    ['a plain Error', false, new Error('digest mismatch')],
  ])('%s: retryable = %s', async (_name, retryable, err) => {
    expect(isRetryable(err)).toBe(retryable);
    const { p } = policy();
    const f = failing(err);
    if (retryable) await expect(p.run('x', f.fn)).resolves.toBe('ok');
    else await expect(p.run('x', f.fn)).rejects.toBe(err);
    expect(f.calls()).toBe(retryable ? 2 : 1);
  });

  it('backs off exponentially with full jitter, bounded by maxDelayMs', async () => {
    const { p, sleeps } = policy({ baseDelayMs: 1000, maxDelayMs: 5000, maxAttempts: 6 });
    const f = failing(registryError(503), registryError(503), registryError(503), registryError(503), registryError(503));
    await expect(p.run('x', f.fn)).resolves.toBe('ok');
    // random() = 0.5 of caps 1000, 2000, 4000, 5000, 5000.
    expect(sleeps).toEqual([500, 1000, 2000, 2500, 2500]);
  });

  it('gives up after maxAttempts with the last error as cause', async () => {
    const { p, sleeps } = policy({ maxAttempts: 3 });
    const last = registryError(502);
    const f = failing(registryError(503), registryError(500), last);
    const err = (await p.run('pull manifest', f.fn).catch((e) => e)) as GaveUpError;
    expect(err).toBeInstanceOf(GaveUpError);
    expect(err.message).toBe('pull manifest: push manifest v1 to r.io/app: 502 (gave up after 3 attempts)');
    expect(err.cause).toBe(last);
    expect(f.calls()).toBe(3);
    expect(sleeps).toHaveLength(2);
  });

  it.each([
    ['seconds', '7', 7000],
    ['a long wait, capped', '3600', 60_000],
  ])('honours Retry-After (%s)', async (_name, header, slept) => {
    const { p, sleeps, clock } = policy();
    const f = failing(registryError(429, parseRetryAfter(header, clock())));
    await p.run('x', f.fn);
    expect(sleeps).toEqual([slept]);
  });

  it('reads Retry-After as an HTTP date', () => {
    const now = Date.parse('2026-01-02T03:04:05Z');
    expect(parseRetryAfter('Fri, 02 Jan 2026 03:04:15 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Fri, 02 Jan 2026 03:04:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });

  it('stops at the deadline instead of sleeping past it', async () => {
    const { p, sleeps, clock } = policy({ baseDelayMs: 10_000, maxAttempts: 100, random: () => 0.999, deadline: 1_000_000 + 15_000 });
    const f = failing(...Array.from({ length: 50 }, () => registryError(503)));
    const err = (await p.run('upload blob', f.fn).catch((e) => e)) as GaveUpError;
    expect(err).toBeInstanceOf(GaveUpError);
    expect(err.message).toMatch(/^upload blob: .*503 \(the time budget ran out after 2 attempts \(deadline .*Z\)\)$/);
    // 9990 ms fits in the 15 s budget, the next 19980 ms does not.
    expect(sleeps).toEqual([9990]);
    expect(f.calls()).toBe(2);
    expect(clock()).toBeLessThan(1_015_000);
  });

  it('does not start when the deadline has passed', async () => {
    let now = 5000;
    const p = new RetryPolicy({ now: () => now, deadline: 4000 });
    const f = failing();
    await expect(p.run('push', f.fn)).rejects.toThrow(/push: the time budget ran out \(deadline/);
    expect(f.calls()).toBe(0);
    now = 0;
    await expect(p.run('push', f.fn)).resolves.toBe('ok');
  });

  it('never retries a GaveUpError from an inner operation', async () => {
    const { p } = policy();
    const f = failing(new GaveUpError('inner', 3, undefined));
    await expect(p.run('outer', f.fn)).rejects.toThrow('inner');
    expect(f.calls()).toBe(1);
  });

  it('tells the listener about each retry', async () => {
    const { p } = policy({ maxAttempts: 4 });
    const events: string[] = [];
    await p.run('x', failing(registryError(503), reset()).fn, (e) => events.push(`${e.attempt}/${e.maxAttempts} ${e.delayMs}`));
    expect(events).toEqual(['1/4 500', '2/4 1000']);
  });
});
