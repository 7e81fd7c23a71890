// A loopback stand-in of GitHub's artifact service (the "results" service the toolkit's
// @actions/artifact client speaks to), at its HTTP boundary, for the real client to run against:
//   - the Twirp JSON API github.actions.results.api.v1.ArtifactService (CreateArtifact,
//     FinalizeArtifact, ListArtifacts, GetSignedArtifactURL) under ACTIONS_RESULTS_URL, with the
//     runtime token (ACTIONS_RUNTIME_TOKEN, a JWT whose `scp` claim carries
//     `Actions.Results:<run backend id>:<job backend id>`) as the bearer, checked against the ids
//     each request names;
//   - the signed blob URL CreateArtifact hands out, written with Azure's blob protocol as the
//     client's BlockBlobClient writes it (PUT ?comp=block&blockid=…, then PUT ?comp=blocklist;
//     or one PUT of the whole blob), and read back with a plain GET of the signed download URL.
// Names are unique per workflow run across attempts, as on GitHub: a second CreateArtifact of a
// name answers 409 Conflict. Requests are recorded; `fault` makes a method answer an error.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const SERVICE = '/twirp/github.actions.results.api.v1.ArtifactService/';

export interface StoredArtifact {
  id: number;
  runBackendId: string;
  jobBackendId: string;
  name: string;
  blobKey: string;
  finalized: boolean;
  size?: number;
  /** `sha256:<hex>` as FinalizeArtifact reported it. */
  hash?: string;
  createdAt: string;
}

export interface ServiceRequest {
  method: string;
  path: string;
  /** The Twirp method, for API calls. */
  rpc?: string;
  status: number;
}

export type Fault = { status: number; code: string; msg: string };

export interface ArtifactService {
  /** ACTIONS_RESULTS_URL. */
  url: string;
  /** The runtime token for one job of one run (what the runner gives that job's steps). */
  tokenFor(runBackendId: string, jobBackendId: string): string;
  /** The environment a job's step gets: ACTIONS_RUNTIME_TOKEN and ACTIONS_RESULTS_URL. */
  envFor(runBackendId: string, jobBackendId: string): Record<string, string>;
  artifacts: StoredArtifact[];
  /** The stored bytes of a finalized artifact. */
  contentOf(a: StoredArtifact): Buffer | undefined;
  requests: ServiceRequest[];
  /** Make a Twirp method (or 'blob' for the blob PUTs) answer an error; undefined: normal. */
  fault?: (rpc: string, jobBackendId: string | undefined) => Fault | undefined;
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export async function startArtifactService(): Promise<ArtifactService> {
  const secret = randomBytes(32);
  const artifacts: StoredArtifact[] = [];
  const blobs = new Map<string, { blocks: Map<string, Buffer>; content?: Buffer; contentType?: string }>();
  const requests: ServiceRequest[] = [];
  let nextId = 1000;
  let base = '';

  const sign = (s: string) => createHmac('sha256', secret).update(s).digest('base64url');
  /** The runtime token: an HS256 JWT, verified here as the service verifies its own. */
  const tokenFor = (run: string, job: string) => {
    const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
    const payload = b64url(JSON.stringify({ scp: `Actions.GenericRead:${run} Actions.Results:${run}:${job}`, iat: 1767225600, exp: 4102444800 }));
    return `${header}.${payload}.${sign(`${header}.${payload}`)}`;
  };
  /** The run and job ids a bearer token grants, or undefined for a bad token. */
  const scopeOf = (auth: string | undefined): { run: string; job: string } | undefined => {
    const m = /^Bearer (\S+)$/.exec(auth ?? '');
    const [h, p, s] = m?.[1].split('.') ?? [];
    if (!h || !p || !s || sign(`${h}.${p}`) !== s) return undefined;
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as { scp?: string };
    for (const scope of claims.scp?.split(' ') ?? []) {
      const [kind, run, job] = scope.split(':');
      if (kind === 'Actions.Results' && run && job) return { run, job };
    }
    return undefined;
  };
  /** A blob URL signed for `key`, as the service's SAS URLs are (the signature is a query parameter). */
  const signedUrl = (key: string, perm: 'w' | 'r') => `${base}/devstoreaccount1/actions-results/${key}?sp=${perm}&se=2099-01-01T00%3A00%3A00Z&sig=${encodeURIComponent(sign(`${key}:${perm}`))}`;

  const body = (req: IncomingMessage) =>
    new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });
  const json = (res: ServerResponse, status: number, value: unknown) => {
    const bytes = Buffer.from(JSON.stringify(value));
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': bytes.length });
    res.end(bytes);
  };
  const twirpError = (res: ServerResponse, f: Fault) => json(res, f.status, { code: f.code, msg: f.msg });
  const monolith = (a: StoredArtifact) => ({
    workflow_run_backend_id: a.runBackendId,
    workflow_job_run_backend_id: a.jobBackendId,
    database_id: String(a.id),
    name: a.name,
    size: String(a.size ?? 0),
    created_at: a.createdAt,
    ...(a.hash ? { digest: a.hash } : {}),
  });

  async function api(req: IncomingMessage, res: ServerResponse, rpc: string): Promise<number> {
    const scope = scopeOf(req.headers.authorization);
    if (!scope) {
      twirpError(res, { status: 401, code: 'unauthenticated', msg: 'the runtime token is missing or invalid' });
      return 401;
    }
    const input = JSON.parse((await body(req)).toString() || '{}') as Record<string, unknown>;
    // A job reads its own run's artifacts and writes its own: the run a request names must be the
    // token's, and so must the job of a write. The client's download names the job that
    // uploaded the artifact (download-artifact.ts takes it from ListArtifacts), not its own.
    const writes = rpc === 'CreateArtifact' || rpc === 'FinalizeArtifact';
    if (input.workflow_run_backend_id !== scope.run || (writes && input.workflow_job_run_backend_id !== scope.job)) {
      twirpError(res, { status: 403, code: 'permission_denied', msg: 'the request names another run or job than its token' });
      return 403;
    }
    const fault = service.fault?.(rpc, scope.job);
    if (fault) {
      twirpError(res, fault);
      return fault.status;
    }
    const inRun = artifacts.filter((a) => a.runBackendId === scope.run);
    switch (rpc) {
      case 'CreateArtifact': {
        const name = String(input.name ?? '');
        if (input.version !== 7) return (twirpError(res, { status: 400, code: 'invalid_argument', msg: `unsupported version ${String(input.version)}` }), 400);
        if (inRun.some((a) => a.name === name)) {
          twirpError(res, { status: 409, code: 'already_exists', msg: 'an artifact with this name already exists on the workflow run' });
          return 409;
        }
        const a: StoredArtifact = { id: nextId++, runBackendId: scope.run, jobBackendId: scope.job, name, blobKey: randomBytes(12).toString('hex'), finalized: false, createdAt: new Date().toISOString() };
        artifacts.push(a);
        blobs.set(a.blobKey, { blocks: new Map() });
        json(res, 200, { ok: true, signed_upload_url: signedUrl(a.blobKey, 'w') });
        return 200;
      }
      case 'FinalizeArtifact': {
        const a = inRun.find((x) => x.name === input.name && x.jobBackendId === scope.job && !x.finalized);
        const content = a && blobs.get(a.blobKey)?.content;
        if (!a || !content) return (twirpError(res, { status: 404, code: 'not_found', msg: `no upload of ${String(input.name)} to finalize` }), 404);
        const hash = (input.hash as string | undefined) ?? undefined;
        const actual = `sha256:${createHash('sha256').update(content).digest('hex')}`;
        if (hash !== undefined && hash !== actual) return (twirpError(res, { status: 400, code: 'invalid_argument', msg: `hash ${hash} does not match the uploaded ${actual}` }), 400);
        Object.assign(a, { finalized: true, size: content.length, hash: actual });
        json(res, 200, { ok: true, artifact_id: String(a.id) });
        return 200;
      }
      case 'ListArtifacts': {
        const name = input.name_filter as string | undefined;
        const id = input.id_filter as string | undefined;
        const found = inRun.filter((a) => a.finalized && (name === undefined || a.name === name) && (id === undefined || String(a.id) === id));
        json(res, 200, { artifacts: found.map(monolith) });
        return 200;
      }
      case 'GetSignedArtifactURL': {
        const a = inRun.find((x) => x.finalized && x.name === input.name && x.jobBackendId === input.workflow_job_run_backend_id);
        if (!a) return (twirpError(res, { status: 404, code: 'not_found', msg: `no artifact ${String(input.name)}` }), 404);
        json(res, 200, { signed_url: signedUrl(a.blobKey, 'r') });
        return 200;
      }
      default:
        twirpError(res, { status: 404, code: 'bad_route', msg: `no method ${rpc}` });
        return 404;
    }
  }

  /** Azure's blob protocol, the parts BlockBlobClient uses to upload and a plain GET to download. */
  async function blob(req: IncomingMessage, res: ServerResponse, url: URL): Promise<number> {
    const key = url.pathname.split('/')[3] ?? '';
    const perm = url.searchParams.get('sp');
    const stored = blobs.get(key);
    if (!stored || (perm !== 'w' && perm !== 'r') || url.searchParams.get('sig') !== sign(`${key}:${perm}`)) {
      res.writeHead(403, { 'x-ms-error-code': 'AuthenticationFailed' }).end();
      return 403;
    }
    const headers = { 'x-ms-request-id': randomBytes(8).toString('hex'), 'x-ms-version': '2025-01-05', Date: new Date().toUTCString() };
    if (req.method === 'GET' && perm === 'r' && stored.content) {
      const a = artifacts.find((x) => x.blobKey === key)!;
      res.writeHead(200, { ...headers, 'Content-Type': stored.contentType ?? 'application/octet-stream', 'Content-Length': stored.content.length, 'Content-Disposition': `attachment; filename="${a.name}"` });
      res.end(stored.content);
      return 200;
    }
    if (req.method !== 'PUT' || perm !== 'w') {
      res.writeHead(405, headers).end();
      return 405;
    }
    const fault = service.fault?.('blob', artifacts.find((x) => x.blobKey === key)?.jobBackendId);
    if (fault) {
      await body(req);
      res.writeHead(fault.status, { ...headers, 'x-ms-error-code': fault.code }).end();
      return fault.status;
    }
    const data = await body(req);
    const done = (extra: Record<string, string> = {}) => {
      res.writeHead(201, { ...headers, 'Content-Length': 0, ...extra });
      res.end();
      return 201;
    };
    const comp = url.searchParams.get('comp');
    if (comp === 'block') {
      stored.blocks.set(url.searchParams.get('blockid') ?? '', data);
      return done();
    }
    const etag = `"0x${randomBytes(8).toString('hex').toUpperCase()}"`;
    const contentType = req.headers['x-ms-blob-content-type'] as string | undefined;
    if (comp === 'blocklist') {
      const ids = [...data.toString().matchAll(/<(?:Latest|Uncommitted|Committed)>([^<]*)<\//g)].map((m) => m[1]);
      const missing = ids.filter((id) => !stored.blocks.has(id));
      if (missing.length) {
        res.writeHead(400, { ...headers, 'x-ms-error-code': 'InvalidBlockList' }).end();
        return 400;
      }
      stored.content = Buffer.concat(ids.map((id) => stored.blocks.get(id)!));
      stored.contentType = contentType;
      return done({ ETag: etag, 'Last-Modified': new Date().toUTCString() });
    }
    if (comp === null && req.headers['x-ms-blob-type'] === 'BlockBlob') {
      stored.content = data;
      stored.contentType = (req.headers['x-ms-blob-content-type'] as string | undefined) ?? req.headers['content-type'];
      return done({ ETag: etag, 'Last-Modified': new Date().toUTCString() });
    }
    res.writeHead(400, { ...headers, 'x-ms-error-code': 'UnsupportedQueryParameter' }).end();
    return 400;
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', base);
    const rpc = url.pathname.startsWith(SERVICE) && req.method === 'POST' ? url.pathname.slice(SERVICE.length) : undefined;
    const handled = rpc !== undefined ? api(req, res, rpc) : blob(req, res, url);
    handled.then(
      (status) => requests.push({ method: req.method ?? '', path: url.pathname, ...(rpc ? { rpc } : {}), status }),
      (err: Error) => {
        requests.push({ method: req.method ?? '', path: url.pathname, ...(rpc ? { rpc } : {}), status: 500 });
        if (!res.headersSent) json(res, 500, { code: 'internal', msg: err.message });
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const service: ArtifactService = {
    url: `${base}/`,
    tokenFor,
    envFor: (run, job) => ({ ACTIONS_RUNTIME_TOKEN: tokenFor(run, job), ACTIONS_RESULTS_URL: `${base}/` }),
    artifacts,
    contentOf: (a) => blobs.get(a.blobKey)?.content,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return service;
}
