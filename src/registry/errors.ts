/** One entry of a registry's `errors[]` body (distribution spec, "Error Codes"). */
export interface RegistryErrorEntry {
  readonly code: string;
  readonly message?: string;
}

/** What was being done, for messages: `push manifest 1.2.3` + `to` + `host/repo`. */
export interface Operation {
  readonly action: string;
  readonly preposition: 'to' | 'from' | 'in' | 'of';
}

export interface RegistryErrorInit {
  operation: Operation;
  host: string;
  repository?: string;
  status?: number;
  statusText?: string;
  errors?: readonly RegistryErrorEntry[];
  /** A short plain-text body, when the registry sent no `errors[]`. */
  text?: string;
  /** The part of the exchange that failed when it was not the request itself (`token request to auth.docker.io`). */
  stage?: string;
  retryAfterMs?: number;
  /** Worth another attempt whatever the status says: a 404 of an upload session (see sessionError in upload.ts). */
  retryable?: boolean;
  cause?: unknown;
}

/**
 * A registry said no. The message says what was being done where and why, e.g.
 * `push manifest latest to 127.0.0.1:5000/app: 401 UNAUTHORIZED: authentication required`.
 * Messages are built from the operation, host, repository, status and the body's error codes
 * only: never from request headers, so credentials and tokens cannot end up in them.
 */
export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  readonly status?: number;
  readonly errors: readonly RegistryErrorEntry[];
  readonly operation: string;
  readonly host: string;
  readonly repository?: string;
  /** Read by the retry policy (retry.ts): 408, 429 and 5xx are worth another attempt. */
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
  /** What it was made from, less the operation, repository and cause (to say the same again). */
  readonly init: Omit<RegistryErrorInit, 'operation' | 'repository' | 'cause'>;

  constructor(init: RegistryErrorInit) {
    super(formatMessage(init), init.cause === undefined ? undefined : { cause: init.cause });
    const { operation: _op, repository: _repo, cause: _cause, ...rest } = init;
    this.init = rest;
    this.status = init.status;
    this.errors = init.errors ?? [];
    this.operation = init.operation.action;
    this.host = init.host;
    this.repository = init.repository;
    this.retryable = init.retryable ?? (init.status !== undefined && (isRetryableStatus(init.status) || isSecondaryRateLimit(init)));
    this.retryAfterMs = init.retryAfterMs;
  }

  /** Whether the body carried this error code (`NAME_UNKNOWN`, `BLOB_UNKNOWN`, …). */
  hasCode(code: string): boolean {
    return this.errors.some((e) => e.code === code);
  }
}

/**
 * GitHub answers its "secondary rate limit" (too many requests in a short time, per token)
 * with a 403 whose message says so, and asks clients to wait (Retry-After) and try again.
 * It is the one 403 worth retrying (docs/reliability.md); every other 403 is a refusal.
 */
function isSecondaryRateLimit(init: RegistryErrorInit): boolean {
  if (init.status !== 403) return false;
  const texts = [init.text ?? '', ...(init.errors ?? []).map((e) => `${e.code} ${e.message ?? ''}`)];
  return texts.some((t) => /secondary rate limit/i.test(t));
}

/** 408, 429 and 5xx are transient (docs/reliability.md); every other 4xx will fail the same way again. */
export const isRetryableStatus = (status: number): boolean => status === 408 || status === 429 || (status >= 500 && status <= 599);

/**
 * Parse a registry error body: `{"errors":[{"code","message","detail"}]}` per the
 * distribution spec, or the token server's `{"details": "..."}` (Docker Hub's auth.docker.io,
 * distribution's token servers). Anything else yields a short, single-line text.
 */
export function parseErrorBody(body: string): { errors: RegistryErrorEntry[]; text?: string } {
  const trimmed = body.trim();
  if (trimmed === '') return { errors: [] };
  try {
    const doc = JSON.parse(trimmed) as { errors?: unknown; details?: unknown; message?: unknown; error?: unknown };
    if (Array.isArray(doc.errors)) {
      const errors = doc.errors
        .filter((e): e is { code?: unknown; message?: unknown } => typeof e === 'object' && e !== null)
        .map((e) => ({
          code: typeof e.code === 'string' ? e.code : 'UNKNOWN',
          ...(typeof e.message === 'string' && e.message !== '' && { message: e.message }),
        }));
      return { errors };
    }
    for (const field of [doc.details, doc.message, doc.error]) {
      if (typeof field === 'string' && field !== '') return { errors: [], text: oneLine(field) };
    }
    return { errors: [] };
  } catch {
    // HTML error pages from proxies and load balancers say nothing useful beyond the status.
    if (/^<(!doctype|html)/i.test(trimmed)) return { errors: [] };
    return { errors: [], text: oneLine(trimmed) };
  }
}

function oneLine(s: string): string {
  const line = s.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** `push manifest 1.2.3 to ghcr.io/o/app`: what was being done where, the head of a message. */
export function describeOperation(op: Operation, host: string, repository?: string): string {
  return `${op.action} ${op.preposition} ${repository ? `${host}/${repository}` : host}`;
}

function formatMessage(init: RegistryErrorInit): string {
  const head = describeOperation(init.operation, init.host, init.repository);
  const stage = init.stage ? `: ${init.stage}` : '';
  const reasons: string[] = [];
  for (const e of init.errors ?? []) reasons.push(e.message ? `${e.code}: ${e.message}` : e.code);
  if (init.text) reasons.push(init.text);
  const status = init.status !== undefined ? `${init.status}${reasons.length ? '' : init.statusText ? ` ${init.statusText}` : ''}` : '';
  const why = [status, reasons.join('; ')].filter((x) => x !== '').join(' ');
  return `${head}${stage}${why ? `: ${why}` : ''}`;
}

/** A failure's message, and its cause's when that says more (`… : connect ECONNREFUSED …`). */
export function describeFailure(err: unknown): string {
  // Duck-typed: errors may come from another realm (jest's VM), failing instanceof.
  const e = err as { name?: unknown; message?: unknown; cause?: { message?: unknown } } | undefined;
  if (typeof e?.message !== 'string') return String(err);
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'the time budget ran out';
  const cause = typeof e.cause?.message === 'string' ? e.cause.message : undefined;
  return cause && cause !== e.message ? `${e.message}: ${cause}` : e.message;
}
