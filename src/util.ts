import { availableParallelism } from 'node:os';

/**
 * Map with at most `limit` calls in flight; results keep the input order. After a failure no
 * new call starts, the ones in flight are allowed to finish (nothing is left running behind
 * the caller's back), and then the first error is thrown.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, f: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        results[i] = await f(items[i], i);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.err;
  return results;
}

/**
 * Like Promise.all, but settles every promise before throwing the first failure (in their
 * order, not in time): nothing is left running behind a caller that has failed, and no
 * rejection goes unhandled.
 */
export async function allDone<T extends readonly unknown[]>(ps: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(ps);
  for (const r of settled) if (r.status === 'rejected') throw r.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

export const cpuCount = (): number => Math.max(1, availableParallelism());

/** `1.3 MiB`: binary units, one decimal, for logs and the job summary. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/**
 * Runs `f` with `env` as process.env, synchronously, and puts the real one back: for toolkit
 * code that reads process.env itself (@actions/github's Context, @actions/core's getIDToken)
 * while the CLI and the tests pass an env of their own.
 */
export function withProcessEnv<T>(env: Record<string, string | undefined>, f: () => T): T {
  const saved = process.env;
  process.env = env as NodeJS.ProcessEnv;
  try {
    return f();
  } finally {
    process.env = saved;
  }
}
