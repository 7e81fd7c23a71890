// A fault-injecting HTTP proxy in front of a real TestRegistry, for the reliability tests of
// docs/reliability.md. It listens on 127.0.0.1 (port 0) and forwards every request to the registry;
// a seeded PRNG picks which requests get a fault and which fault, so a run is reproducible
// for a given seed and request order. It rewrites `Location`, `Link` and `WWW-Authenticate`
// so that the client keeps talking to the proxy (a bearer token realm on another host stays
// direct). Blob GETs can be sent by a 307 to a second loopback server, "storage", which
// serves the bytes (fetching them itself with credentials the proxy holds, as a presigned
// URL would) and records every request header it receives.
import { randomBytes } from 'node:crypto';
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export const FAULT_KINDS = ['500', '502', '503', '429', '429-retry-after', 'reset-request', 'reset-response', 'stall'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultProxyOptions {
  /** `127.0.0.1:PORT` of the registry behind the proxy. */
  upstream: string;
  /** Seed of the PRNG that decides the faults. */
  seed?: number;
  /** Fraction of requests (0..1) that get a fault. */
  rate?: number;
  /** Faults to draw from, with equal weight. */
  kinds?: readonly FaultKind[];
  /** Which requests may get a fault; default all. */
  eligible?: (method: string, path: string) => boolean;
  /** How long a stalled response is held before its socket is closed; longer than the client's request timeout. */
  stallMs?: number;
  /** The `Retry-After` value (seconds) of `429-retry-after`. */
  retryAfterSeconds?: number;
  /** Send every blob GET to the storage server with a 307. */
  redirectBlobGets?: boolean;
}

export interface ProxyRecord {
  seq: number;
  method: string;
  /** Path and query as the client sent them. */
  path: string;
  fault?: FaultKind | 'down' | 'redirect';
  /** The status the client got, or 'reset' when its connection was cut. */
  status?: number | 'reset';
  /** Whether the client sent an Authorization header (never its value). */
  authorized: boolean;
}

export interface StorageRecord {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

/** mulberry32: a small, well-mixed 32-bit PRNG; deterministic per seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BLOB_GET = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/;

export class FaultProxy {
  /** `127.0.0.1:PORT` of the proxy: use it as the registry host. */
  host = '';
  /** `127.0.0.1:PORT` of the redirect target. */
  storageHost = '';
  readonly records: ProxyRecord[] = [];
  readonly storageRecords: StorageRecord[] = [];
  /** Every distinct Authorization value clients sent to the proxy (for token hygiene checks). */
  readonly authorizations = new Set<string>();
  rate: number;
  private readonly random: () => number;
  private readonly kinds: readonly FaultKind[];
  private readonly opts: FaultProxyOptions;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 16 });
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly presigned = new Map<string, { path: string; authorization?: string }>();
  private downMode: 'up' | 'reset' | 'refuse' = 'up';
  private downAfter?: number;
  private server!: Server;
  private storage!: Server;

  private constructor(opts: FaultProxyOptions) {
    this.opts = opts;
    this.rate = opts.rate ?? 0;
    this.random = prng(opts.seed ?? 1);
    this.kinds = opts.kinds ?? FAULT_KINDS;
  }

  static async start(opts: FaultProxyOptions): Promise<FaultProxy> {
    const p = new FaultProxy(opts);
    p.server = createServer((req, res) => p.handle(req, res));
    p.storage = createServer((req, res) => p.serveStorage(req, res));
    for (const s of [p.server, p.storage]) {
      s.on('connection', (sock: Socket) => {
        p.sockets.add(sock);
        sock.on('close', () => p.sockets.delete(sock));
      });
      // No request may hang a test: Node's own limits stay, plus a short keep-alive.
      s.keepAliveTimeout = 2000;
    }
    p.host = await listen(p.server);
    p.storageHost = await listen(p.storage);
    return p;
  }

  /** Cut every connection and refuse (or reset) every request from now on. */
  goDown(mode: 'reset' | 'refuse' = 'reset'): void {
    this.downMode = mode;
    if (mode === 'refuse') this.server.close();
    for (const s of this.sockets) s.destroy();
  }

  /** Go down (resetting) once `n` requests have been seen; the (n+1)th is the first refused. */
  goDownAfter(n: number): void {
    this.downAfter = n;
  }

  /** Injected faults by kind. */
  faultCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.records) if (r.fault && r.fault !== 'redirect') out[r.fault] = (out[r.fault] ?? 0) + 1;
    return out;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.sockets) s.destroy();
    this.agent.destroy();
    await Promise.all([this.server, this.storage].map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
  }

  private handle(req: IncomingMessage, res: ServerResponse) {
    const rec: ProxyRecord = { seq: this.records.length + 1, method: req.method ?? 'GET', path: req.url ?? '/', authorized: !!req.headers.authorization };
    this.records.push(rec);
    if (req.headers.authorization) this.authorizations.add(req.headers.authorization);
    // Two draws per request, always, so that the sequence does not depend on the outcome.
    const roll = this.random();
    const pick = this.random();
    if (this.downAfter !== undefined && rec.seq > this.downAfter && this.downMode === 'up') this.goDown('reset');
    if (this.downMode !== 'up') {
      rec.fault = 'down';
      return this.reset(req, rec);
    }
    const pathname = rec.path.split('?')[0];
    if (this.opts.redirectBlobGets && rec.method === 'GET' && BLOB_GET.test(pathname)) {
      // Like a registry sending readers to object storage: the presigned URL carries its own
      // authority, so the client must not send its credentials there.
      const id = randomBytes(12).toString('hex');
      this.presigned.set(id, { path: pathname, authorization: req.headers.authorization });
      rec.fault = 'redirect';
      rec.status = 307;
      req.resume();
      res.writeHead(307, { Location: `http://${this.storageHost}/storage/${id}${pathname}`, 'Content-Length': '0' });
      res.end();
      return;
    }
    const eligible = this.opts.eligible?.(rec.method, rec.path) ?? true;
    const fault = eligible && roll < this.rate ? this.kinds[Math.floor(pick * this.kinds.length)] : undefined;
    rec.fault = fault;
    switch (fault) {
      case '500':
      case '502':
      case '503':
      case '429':
      case '429-retry-after':
        return this.answer(req, res, rec, fault);
      case 'reset-request':
        return this.forward(req, res, rec, { cutRequest: true });
      case 'reset-response':
        return this.forward(req, res, rec, { cutResponse: true });
      case 'stall':
        return this.forward(req, res, rec, { stall: true });
      default:
        return this.forward(req, res, rec, {});
    }
  }

  private reset(req: IncomingMessage, rec: ProxyRecord) {
    rec.status = 'reset';
    req.socket.destroy();
  }

  /** An error status without asking the registry, after the request body has arrived. */
  private answer(req: IncomingMessage, res: ServerResponse, rec: ProxyRecord, fault: '500' | '502' | '503' | '429' | '429-retry-after') {
    const status = fault.startsWith('429') ? 429 : Number(fault);
    req.resume();
    req.on('end', () => {
      const headers: OutgoingHttpHeaders = { 'Content-Type': 'application/json' };
      if (fault === '429-retry-after') headers['Retry-After'] = String(this.opts.retryAfterSeconds ?? 1);
      const code = status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE';
      rec.status = status;
      res.writeHead(status, headers);
      res.end(JSON.stringify({ errors: [{ code, message: `injected ${fault}` }] }));
    });
  }

  private forward(req: IncomingMessage, res: ServerResponse, rec: ProxyRecord, how: { cutRequest?: boolean; cutResponse?: boolean; stall?: boolean }) {
    const headers: OutgoingHttpHeaders = { ...req.headers, host: this.opts.upstream };
    const up = httpRequest({ host: '127.0.0.1', port: Number(this.opts.upstream.split(':')[1]), method: rec.method, path: rec.path, headers, agent: this.agent });
    let cut = false;
    const cutBoth = () => {
      if (cut) return;
      cut = true;
      rec.status = 'reset';
      up.destroy();
      req.socket.destroy();
    };
    up.on('error', () => cutBoth());
    req.on('error', () => cutBoth());
    up.on('response', (upRes) => {
      if (cut) return upRes.resume();
      const out = this.rewriteHeaders(upRes.headers);
      const deliver = () => {
        if (cut || req.socket.destroyed) return upRes.resume();
        const length = Number(upRes.headers['content-length'] ?? NaN);
        if (how.cutResponse) {
          // The registry did the work but the client never hears the end of it.
          if (!(length > 1)) return cutBoth();
          res.writeHead(upRes.statusCode ?? 502, out);
          let sent = 0;
          upRes.on('data', (chunk: Buffer) => {
            if (cut) return;
            const room = Math.floor(length / 2) - sent;
            if (room > 0) res.write(chunk.subarray(0, room));
            sent += Math.min(room, chunk.length);
            if (sent >= Math.floor(length / 2)) setTimeout(cutBoth, 5);
          });
          return;
        }
        rec.status = upRes.statusCode;
        res.writeHead(upRes.statusCode ?? 502, out);
        upRes.pipe(res);
      };
      if (how.stall) {
        // Held past the client's request timeout; then the connection is cut.
        upRes.pause();
        const t = setTimeout(() => {
          this.timers.delete(t);
          upRes.resume();
          cutBoth();
        }, this.opts.stallMs ?? 2000);
        this.timers.add(t);
        return;
      }
      deliver();
    });
    if (how.cutRequest) {
      const length = Number(req.headers['content-length'] ?? 0);
      if (!(length > 1)) return cutBoth();
      // Half the body reaches the registry, then both connections break.
      let seen = 0;
      req.on('data', (chunk: Buffer) => {
        if (cut) return;
        const room = Math.floor(length / 2) - seen;
        if (room > 0) up.write(chunk.subarray(0, room));
        seen += chunk.length;
        if (seen >= Math.floor(length / 2)) setImmediate(cutBoth);
      });
      return;
    }
    req.pipe(up);
  }

  private rewriteHeaders(h: IncomingHttpHeaders): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    const from = new RegExp(`http://${this.opts.upstream.replace(/[.]/g, '\\.')}`, 'g');
    const to = `http://${this.host}`;
    for (const [k, v] of Object.entries(h)) {
      if (v === undefined || k === 'connection' || k === 'keep-alive' || k === 'transfer-encoding') continue;
      if (k === 'location' || k === 'www-authenticate' || k === 'link') {
        out[k] = Array.isArray(v) ? v.map((x) => x.replace(from, to)).join(', ') : v.replace(from, to);
      } else out[k] = v;
    }
    return out;
  }

  /** The redirect target: records headers, then serves the blob it was presigned for. */
  private serveStorage(req: IncomingMessage, res: ServerResponse) {
    this.storageRecords.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers: { ...req.headers } });
    req.resume();
    const m = /^\/storage\/([0-9a-f]+)(\/.*)$/.exec(req.url ?? '');
    const grant = m ? this.presigned.get(m[1]) : undefined;
    if (!grant || grant.path !== m![2]) {
      res.writeHead(403, { 'Content-Type': 'text/plain' });
      res.end('no such presigned URL');
      return;
    }
    const headers: OutgoingHttpHeaders = { host: this.opts.upstream };
    if (grant.authorization) headers.authorization = grant.authorization;
    const up = httpRequest({ host: '127.0.0.1', port: Number(this.opts.upstream.split(':')[1]), method: req.method, path: grant.path, headers, agent: this.agent });
    up.on('error', () => res.destroy());
    up.on('response', (upRes) => {
      const out: OutgoingHttpHeaders = {};
      for (const k of ['content-type', 'content-length', 'docker-content-digest']) {
        const v = upRes.headers[k];
        if (v !== undefined) out[k] = v;
      }
      res.writeHead(upRes.statusCode ?? 502, out);
      upRes.pipe(res);
    });
    up.end();
  }
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}
