import { request as httpRequest, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';

/**
 * One HTTP/1.1 exchange on Node's own client (`node:http`/`node:https`, keep-alive global
 * agents), for the registry client. Not `fetch`: Node's fetch is undici, whose first use costs
 * some 16 MiB of memory and 40–50 ms of CPU to load, and which copies a streamed request body
 * through a web stream. Here a response is the socket's own stream, and a request body is piped.
 */

/** What the registry client reads of a response. `body` is always there (empty for a HEAD). */
export interface HttpResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: { get(name: string): string | null };
  readonly body: Readable;
}

export interface HttpRequest {
  method: string;
  headers: Record<string, string>;
  /** Bytes, or a stream piped as it is read (chunked unless a Content-Length is given). */
  body?: Buffer | Readable;
  signal?: AbortSignal;
  /**
   * A connection that moves no bytes either way for this long, before or after the response
   * headers, is cut with an ETIMEDOUT error (a timeout, retried: docs/reliability.md).
   */
  idleTimeoutMs: number;
}

/** The statuses of a redirect to follow (RFC 9110 §15.4). */
export const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Methods whose empty body is declared (`Content-Length: 0`) rather than sent chunked. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * Send a request; resolves when the response headers arrive, which may be before the request
 * body is all sent (a registry may refuse an upload early, with 401 or 413). Then the rest of
 * the body is not sent, and the connection is closed once the response has been read.
 */
export async function send(url: URL, { method, headers, body, signal, idleTimeoutMs }: HttpRequest): Promise<HttpResponse> {
  const h: OutgoingHttpHeaders = { ...headers };
  const declared = Object.entries(headers).find(([k]) => k.toLowerCase() === 'content-length')?.[1];
  if (declared === undefined && Buffer.isBuffer(body)) h['Content-Length'] = body.length;
  else if (declared === undefined && body === undefined && BODY_METHODS.has(method)) h['Content-Length'] = 0;
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<HttpResponse>((resolve, reject) => {
    let answered: IncomingMessage | undefined;
    const req: ClientRequest = request(url, { method, headers: h, signal });
    // Errors after the response are the response stream's to report (it is destroyed with them).
    req.on('error', (err) => answered || reject(err));
    req.setTimeout(idleTimeoutMs, () => {
      const err = Object.assign(new Error(`${method} ${url.host}${url.pathname}: the connection was idle for ${idleTimeoutMs / 1000} s`), { code: 'ETIMEDOUT' });
      // Whoever reads the body learns why it ended.
      answered?.destroy(err);
      req.destroy(err);
    });
    req.once('response', (res: IncomingMessage) => {
      answered = res;
      if (!req.writableEnded && typeof body === 'object' && !Buffer.isBuffer(body)) {
        // Answered before the body was sent: stop sending, and close the connection afterwards,
        // since the registry still expects the rest of the body on it.
        body.destroy();
        res.once('close', () => req.destroy());
      }
      resolve(responseOf(res));
    });
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else pump(body, req, declared === undefined ? undefined : Number(declared));
  });
}

/**
 * `body.pipe(req)`, with backpressure, checking the bytes against a declared Content-Length: a
 * body shorter or longer fails the request instead of leaving the registry waiting for bytes
 * that never come. A failing source fails the request; a failed request stops the source.
 */
function pump(body: Readable, req: ClientRequest, length: number | undefined) {
  let sent = 0;
  const fail = (err: Error) => {
    body.destroy();
    req.destroy(err);
  };
  body.on('data', (chunk: Buffer) => {
    sent += chunk.length;
    if (length !== undefined && sent > length) return fail(new Error(`the request body is longer than its Content-Length of ${length} bytes`));
    if (!req.write(chunk)) {
      body.pause();
      req.once('drain', () => body.resume());
    }
  });
  body.once('end', () => {
    if (length !== undefined && sent !== length) fail(new Error(`the request body ended after ${sent} of the ${length} bytes its Content-Length declares`));
    else req.end();
  });
  body.on('error', (err) => req.destroy(err));
  req.once('close', () => req.writableFinished || body.destroy());
}

function responseOf(res: IncomingMessage): HttpResponse {
  return {
    status: res.statusCode ?? 0,
    statusText: res.statusMessage ?? '',
    headers: {
      get(name: string) {
        const v = res.headers[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
      },
    },
    body: res,
  };
}

// --- reading responses ---

/** Let the rest of a response go (to keep the connection for the next request). */
export async function discard(res: HttpResponse): Promise<void> {
  res.body.resume();
}

/** `res` with `text` as its body, to be read again after the original body was consumed. */
export function withBody(res: HttpResponse, text: string): HttpResponse {
  return { status: res.status, statusText: res.statusText, headers: res.headers, body: Readable.from([Buffer.from(text)]) };
}

/** The whole body; more than `limit` bytes fails, naming `what` was being read. */
export async function readLimited(res: HttpResponse, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) {
      res.body.destroy();
      throw new Error(`${what}: the response is larger than ${limit} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** Up to `limit` bytes of the body as text; the rest is not read. */
export async function readText(res: HttpResponse, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body as AsyncIterable<Buffer>) {
    chunks.push(c);
    n += c.length;
    if (n >= limit) break;
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, limit);
}
