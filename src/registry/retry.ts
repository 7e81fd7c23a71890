/**
 * The one retry layer (docs/architecture.md#push-protocol). An error is retried when it says so (`retryable: true`, as
 * RegistryError does for 408, 429 and 5xx) or when the connection broke: resets and timeouts.
 * Backoff is exponential with full jitter, bounded, and a `Retry-After` the server sent wins
 * (up to a cap). An overall deadline bounds the whole run (docs/reliability.md: it never loops forever).
 */
export interface RetryOptions {
  /** Attempts per operation, the first included. */
  maxAttempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** A longer `Retry-After` is shortened to this. */
  maxRetryAfterMs?: number;
  /**
   * Milliseconds since the epoch after which nothing more is attempted; a function for a
   * deadline that is set only later (undefined until then).
   */
  deadline?: number | (() => number | undefined);
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** In [0, 1). */
  random?: () => number;
  /** Aborted when the step is cancelled: no further attempt, no wait for one (src/cancel.ts). */
  signal?: AbortSignal;
}

export interface RetryEvent {
  what: string;
  /** The attempt that failed, from 1. */
  attempt: number;
  maxAttempts: number;
  delayMs: number;
  error: unknown;
}

/** Thrown when retries or the time budget ran out; the last failure is its cause. */
export class GaveUpError extends Error {
  override readonly name = 'GaveUpError';
  constructor(
    message: string,
    readonly attempts: number,
    cause: unknown,
  ) {
    super(message, { cause });
  }
}

export class RetryPolicy {
  readonly maxAttempts: number;
  private readonly deadlineOf: () => number | undefined;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  readonly signal?: AbortSignal;

  constructor(opts: RetryOptions = {}) {
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 5);
    this.baseDelayMs = opts.baseDelayMs ?? 1000;
    this.maxDelayMs = opts.maxDelayMs ?? 30_000;
    this.maxRetryAfterMs = opts.maxRetryAfterMs ?? 60_000;
    const deadline = opts.deadline;
    this.deadlineOf = typeof deadline === 'function' ? deadline : () => deadline;
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = opts.random ?? Math.random;
    this.signal = opts.signal;
  }

  get deadline(): number | undefined {
    return this.deadlineOf();
  }

  /** Milliseconds left before the deadline, or undefined without one. */
  remainingMs(): number | undefined {
    const deadline = this.deadline;
    return deadline === undefined ? undefined : deadline - this.now();
  }

  /** Run `fn` until it succeeds, fails for good, or attempts or time run out. */
  async run<T>(what: string, fn: (attempt: number) => Promise<T>, onRetry?: (e: RetryEvent) => void): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      this.signal?.throwIfAborted();
      this.checkDeadline(what, attempt - 1, undefined);
      try {
        return await fn(attempt);
      } catch (err) {
        if (!isRetryable(err)) throw err;
        if (attempt >= this.maxAttempts) {
          throw new GaveUpError(`${withContext(what, messageOf(err))} (gave up after ${attempt} attempts)`, attempt, err);
        }
        const delayMs = this.delayFor(attempt, err);
        const left = this.remainingMs();
        if (left !== undefined && delayMs >= left) this.checkDeadline(what, attempt, err, true);
        onRetry?.({ what, attempt, maxAttempts: this.maxAttempts, delayMs, error: err });
        await this.wait(delayMs);
      }
    }
  }

  /** `sleep`, cut short when the step is cancelled (a Retry-After may ask for a minute). */
  private async wait(ms: number): Promise<void> {
    const signal = this.signal;
    if (!signal) return this.sleep(ms);
    let onAbort!: () => void;
    const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', (onAbort = () => resolve()), { once: true }));
    try {
      await Promise.race([this.sleep(ms), aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    signal.throwIfAborted();
  }

  /** Full jitter over an exponentially growing cap, unless the server named a wait. */
  delayFor(attempt: number, err: unknown): number {
    const asked = (err as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
    if (typeof asked === 'number' && asked >= 0) return Math.min(asked, this.maxRetryAfterMs);
    const cap = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    return Math.floor(this.random() * cap);
  }

  private checkDeadline(what: string, attempts: number, last: unknown, force = false) {
    const left = this.remainingMs();
    if (left === undefined || (left > 0 && !force)) return;
    const after = attempts > 0 ? ` after ${attempts} attempt${attempts === 1 ? '' : 's'}` : '';
    const budget = `the time budget ran out${after} (deadline ${new Date(this.deadline!).toISOString()})`;
    // One message, the operation named once: the last error already starts with it.
    const message = last === undefined ? `${what}: ${budget}` : `${withContext(what, messageOf(last))} (${budget})`;
    throw new GaveUpError(message, attempts, last);
  }
}

/**
 * `Retry-After` as milliseconds from `now`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
 * Undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

// Node's and undici's codes for a connection that broke or stalled (not for one refused:
// a wrong host or port should fail at once).
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ECONNABORTED',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

export function isRetryable(err: unknown): boolean {
  if (err instanceof GaveUpError) return false;
  if ((err as { retryable?: unknown } | undefined)?.retryable === true) return true;
  return isTransientNetworkError(err);
}

/** Walks the `cause` chain: undici wraps socket errors as `TypeError: fetch failed` / `terminated`. */
export function isTransientNetworkError(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, name, retryable } = e as { code?: unknown; name?: unknown; retryable?: unknown };
    // Our own deadline aborts requests; that is final, not a timeout to retry.
    if (name === 'AbortError' || name === 'TimeoutError' || retryable === false) return false;
    if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
  }
  return false;
}

const messageOf = (err: unknown): string => {
  const message = (err as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : String(err);
};

/** Errors from the client already start with what was being done; others get it prefixed. */
const withContext = (what: string, message: string): string => (message.startsWith(what) ? message : `${what}: ${message}`);
