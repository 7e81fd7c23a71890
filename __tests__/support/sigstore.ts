// A Sigstore instance on loopback for tests: Fulcio, Rekor and a timestamp authority built from
// @sigstore/mock's handlers (real certificates, log entries and RFC 3161 timestamps, signed with
// throw-away keys), an OIDC token endpoint like the runner's (ACTIONS_ID_TOKEN_REQUEST_URL /
// _TOKEN) that hands out JWTs with GitHub's claims, and a stand-in of GitHub's attestations API.
// Every request is recorded (path and headers) so that tests can check where each token went.
// `verify` checks a bundle with @sigstore/verify against this instance's trusted root.
import { createHash, generateKeyPairSync, randomBytes, sign as signData } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fulcioHandler, initializeCA, initializeCTLog, initializeTLog, initializeTSA, rekorHandler, tsaHandler, type HandlerFn } from '@sigstore/mock';
import { bundleFromJSON } from '@sigstore/bundle';
import { HashAlgorithm, PublicKeyDetails, type TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';

/** The claims of a GitHub Actions OIDC token that the provenance predicate reads (and a few more). */
export interface GithubClaims {
  iss: string;
  sub: string;
  aud?: string;
  repository: string;
  repository_owner: string;
  repository_id: string;
  repository_owner_id: string;
  repository_visibility: string;
  job_workflow_ref: string;
  workflow_ref: string;
  workflow: string;
  ref: string;
  ref_type: string;
  sha: string;
  run_id: string;
  run_number: string;
  run_attempt: string;
  runner_environment: string;
  event_name: string;
  actor: string;
}

/** The claims a runner's OIDC token carries for a recorded event's environment: the token says what the environment says. */
export function claimsOfEnv(env: Record<string, string | undefined>, over: Partial<GithubClaims> = {}): Partial<GithubClaims> {
  return {
    repository: env.GITHUB_REPOSITORY,
    repository_owner: env.GITHUB_REPOSITORY_OWNER,
    repository_id: env.GITHUB_REPOSITORY_ID,
    repository_owner_id: env.GITHUB_REPOSITORY_OWNER_ID,
    job_workflow_ref: env.GITHUB_WORKFLOW_REF,
    workflow_ref: env.GITHUB_WORKFLOW_REF,
    ref: env.GITHUB_REF,
    sha: env.GITHUB_SHA,
    run_id: env.GITHUB_RUN_ID,
    run_attempt: env.GITHUB_RUN_ATTEMPT,
    event_name: env.GITHUB_EVENT_NAME,
    ...over,
  };
}

export const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';
export const SERVER_URL = 'https://github.com';

/** Claims as a push to main of `owner/repo` running .github/workflows/release.yml would carry. */
export function githubClaims(over: Partial<GithubClaims> = {}): GithubClaims {
  const repository = over.repository ?? 'octo-org/hello';
  const ref = over.ref ?? 'refs/heads/main';
  const workflow = `${repository}/.github/workflows/release.yml@${ref}`;
  return {
    iss: GITHUB_ISSUER,
    sub: `repo:${repository}:ref:${ref}`,
    repository,
    repository_owner: repository.split('/')[0],
    repository_id: '123456789',
    repository_owner_id: '987654',
    repository_visibility: 'public',
    job_workflow_ref: workflow,
    workflow_ref: workflow,
    workflow: 'release',
    ref,
    ref_type: 'branch',
    sha: '0123456789abcdef0123456789abcdef01234567',
    run_id: '4242',
    run_number: '7',
    run_attempt: '2',
    runner_environment: 'github-hosted',
    event_name: 'push',
    actor: 'octocat',
    ...over,
  };
}

/** One request any of the services received. */
export interface SigstoreRequest {
  service: 'fulcio' | 'rekor' | 'tsa' | 'oidc' | 'api';
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  status: number;
}

export interface SigstoreOptions {
  /** Which witnesses the instance runs: Rekor (public-good's shape), a TSA (GitHub's), or both. */
  rekor?: boolean;
  tsa?: boolean;
  claims?: Partial<GithubClaims>;
  /** What Fulcio answers every request with instead of a certificate (e.g. 503: down). */
  fulcioStatus?: number;
  /** Fulcio answers this many requests with 503 before it works. */
  fulcioFailures?: number;
  /** Rekor answers this many requests with 502 before it works. */
  rekorFailures?: number;
  /** What the attestations API answers (default 201 with an id). */
  apiStatus?: number;
}

export interface TestSigstore {
  /** Base URLs as sigstore-js takes them (`fulcioBaseURL`, …), each with a path of its own. */
  fulcioUrl: string;
  rekorUrl?: string;
  tsaUrl?: string;
  /** The `sigstore` input for this instance: `fulcio=…,rekor=…,tsa=…`. */
  input: string;
  /** The runner's variables for the token endpoint. */
  env: { ACTIONS_ID_TOKEN_REQUEST_URL: string; ACTIONS_ID_TOKEN_REQUEST_TOKEN: string };
  /** Stand-in of GITHUB_API_URL. */
  apiUrl: string;
  claims: GithubClaims;
  /** Every token the OIDC endpoint issued. */
  issued: string[];
  requests: SigstoreRequest[];
  /** POST /repos/{owner}/{repo}/attestations requests that the API accepted. */
  attestations: { owner: string; repo: string; authorization?: string; bundle: unknown }[];
  /** The certificate identity Fulcio puts in its certificates: `<server>/<job_workflow_ref>`. */
  identity: string;
  /** Verify a bundle (its JSON) against this instance's trusted root; returns the DSSE payload. */
  verify(bundle: unknown, policy?: { identity?: string | RegExp; issuer?: string }): Buffer;
  stop(): Promise<void>;
}

/** base64url without padding, as JWTs use. */
const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export async function startSigstore(o: SigstoreOptions = {}): Promise<TestSigstore> {
  const rekorOn = o.rekor ?? true;
  const tsaOn = o.tsa ?? false;
  const claims = githubClaims(o.claims);
  const requestToken = randomBytes(16).toString('hex');
  const jwtKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const issued: string[] = [];
  const requests: SigstoreRequest[] = [];
  const attestations: TestSigstore['attestations'] = [];
  let fulcioFailures = o.fulcioFailures ?? 0;
  let rekorFailures = o.rekorFailures ?? 0;
  let attestationId = 1000;

  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const fulcioUrl = `${base}/fulcio`;
  const rekorUrl = rekorOn ? `${base}/rekor` : undefined;
  const tsaUrl = tsaOn ? `${base}/tsa` : undefined;
  const identity = `${SERVER_URL}/${claims.job_workflow_ref}`;

  const caKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ctKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const tlogKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const tsaKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ctlog = await initializeCTLog(ctKeys);
  const ca = await initializeCA(caKeys, ctlog);
  const tlog = await initializeTLog(rekorUrl ?? `${base}/rekor`, tlogKeys);
  const tsa = await initializeTSA(tsaKeys, wholeSecondsClock());
  // Fulcio's certificate identity for a GitHub token is `<server>/<job_workflow_ref>`; the mock
  // takes the SAN from one claim, so that value travels as one more claim of the token it reads.
  const fulcio = fulcioHandler(ca, { subjectClaim: 'fulcio_san' });
  const rekor = rekorHandler(tlog);
  const timestamp = tsaHandler(tsa);

  const route = async (req: IncomingMessage, body: Buffer): Promise<{ service: SigstoreRequest['service']; status: number; type?: string; response: string | Buffer }> => {
    const url = new URL(req.url ?? '/', base);
    if (url.pathname === '/oidc/token' && req.method === 'GET') {
      if (req.headers.authorization !== `Bearer ${requestToken}`) return { service: 'oidc', status: 401, response: 'bad request token' };
      const audience = url.searchParams.get('audience') ?? undefined;
      const now = Math.floor(Date.now() / 1000);
      const payload = { ...claims, aud: audience ?? `${SERVER_URL}/${claims.repository_owner}`, iat: now, nbf: now - 5, exp: now + 300, jti: randomBytes(8).toString('hex') };
      const head = b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: 'test' }));
      const signed = `${head}.${b64url(JSON.stringify(payload))}`;
      const jwt = `${signed}.${b64url(signData('sha256', Buffer.from(signed), { key: jwtKey.privateKey, dsaEncoding: 'ieee-p1363' }))}`;
      issued.push(jwt);
      return { service: 'oidc', status: 200, type: 'application/json', response: JSON.stringify({ value: jwt, count: 1 }) };
    }
    if (req.method !== 'POST') return { service: 'api', status: 404, response: 'not found' };
    if (url.pathname === `/fulcio${fulcio.path}`) {
      if (o.fulcioStatus) return { service: 'fulcio', status: o.fulcioStatus, response: 'fulcio is down' };
      if (fulcioFailures > 0) {
        fulcioFailures--;
        return { service: 'fulcio', status: 503, response: 'try again' };
      }
      return { service: 'fulcio', ...(await answer(fulcio.fn, withSanClaim(body.toString('utf8'), identity))) };
    }
    if (rekorOn && url.pathname === `/rekor${rekor.path}` && rekorFailures > 0) {
      rekorFailures--;
      return { service: 'rekor', status: 502, response: 'bad gateway' };
    }
    if (rekorOn && url.pathname === `/rekor${rekor.path}`) return { service: 'rekor', ...(await answer(rekor.fn, canonicalRekorEntry(body.toString('utf8')))) };
    // sigstore-js posts to a TSA base URL that has a path as it is, and appends the API path to a bare host.
    if (tsaOn && (url.pathname === '/tsa' || url.pathname === `/tsa${timestamp.path}`)) return { service: 'tsa', ...(await answer(timestamp.fn, body.toString('utf8'))) };
    const api = /^\/api\/repos\/([^/]+)\/([^/]+)\/attestations$/.exec(url.pathname);
    if (api) {
      const status = o.apiStatus ?? 201;
      if (status !== 201) return { service: 'api', status, type: 'application/json', response: JSON.stringify({ message: 'Resource not accessible by integration' }) };
      const parsed = JSON.parse(body.toString('utf8')) as { bundle: unknown };
      attestations.push({ owner: api[1], repo: api[2], authorization: req.headers.authorization, bundle: parsed.bundle });
      return { service: 'api', status: 201, type: 'application/json', response: JSON.stringify({ id: attestationId++ }) };
    }
    return { service: 'api', status: 404, response: 'not found' };
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      route(req, body).then(
        (r) => {
          requests.push({ service: r.service, method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers }, body: body.toString('utf8'), status: r.status });
          res.writeHead(r.status, { 'content-type': r.type ?? 'text/plain' });
          res.end(r.response);
        },
        (err: Error) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(err.message);
        },
      );
    });
  });

  const now = new Date(Date.now() - 3600_000);
  const trustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    certificateAuthorities: [
      { subject: { commonName: 'sigstore', organization: 'sigstore.mock' }, uri: fulcioUrl, certChain: { certificates: [{ rawBytes: Buffer.from(ca.rootCertificate.buffer) }] }, validFor: { start: now } },
    ],
    tlogs: [logAuthority(rekorUrl ?? `${base}/rekor`, tlog.publicKey, now)],
    ctlogs: [{ ...logAuthority(`${base}/ct`, ctlog.publicKey, now), logId: { keyId: Buffer.from(ctlog.logID.buffer) } }],
    timestampAuthorities: [
      {
        subject: { commonName: 'sigstore-tsa', organization: 'sigstore.mock' },
        uri: tsaUrl ?? `${base}/tsa`,
        certChain: { certificates: [{ rawBytes: Buffer.from(tsa.intCertificate.buffer) }, { rawBytes: Buffer.from(tsa.rootCertificate.buffer) }] },
        validFor: { start: now },
      },
    ],
  } as unknown as TrustedRoot;
  const trust = toTrustMaterial(trustedRoot);

  return {
    fulcioUrl,
    rekorUrl,
    tsaUrl,
    input: [`fulcio=${fulcioUrl}`, rekorUrl && `rekor=${rekorUrl}`, tsaUrl && `tsa=${tsaUrl}`].filter(Boolean).join(','),
    env: { ACTIONS_ID_TOKEN_REQUEST_URL: `${base}/oidc/token?api-version=2.0`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken },
    apiUrl: `${base}/api`,
    claims,
    issued,
    requests,
    attestations,
    identity,
    verify(bundle, policy = {}) {
      const parsed = bundleFromJSON(bundle);
      const verifier = new Verifier(trust, { tlogThreshold: rekorOn ? 1 : 0, ctlogThreshold: 1, timestampThreshold: 1 });
      verifier.verify(toSignedEntity(parsed), { subjectAlternativeName: policy.identity ?? identity, extensions: { issuer: policy.issuer ?? GITHUB_ISSUER } });
      if (parsed.content.$case !== 'dsseEnvelope') throw new Error('not a DSSE bundle');
      return parsed.content.dsseEnvelope.payload;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections (the test's own fetch) would hold close() open.
        server.closeAllConnections();
      }),
  };
}

/**
 * The time now, rounded up to a whole second, as a Date. The mock TSA writes its genTime with
 * trailing zeros of the milliseconds cut (`.5` for 500 ms), which @sigstore/core's parser
 * refuses (it wants `.000`); without a fraction it reads it. Up, not down: the timestamp must
 * not come before the signing certificate's notBefore.
 */
function wholeSecondsClock(): Date {
  const now = () => new Date(Math.ceil(Date.now() / 1000) * 1000);
  return new Proxy(new Date(), {
    get(_target, prop) {
      const d = now();
      const v = Reflect.get(d, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(d) : v;
    },
  });
}

function logAuthority(baseUrl: string, publicKey: Buffer, start: Date) {
  return {
    baseUrl,
    hashAlgorithm: HashAlgorithm.SHA2_256,
    publicKey: { rawBytes: publicKey, keyDetails: PublicKeyDetails.PKIX_ECDSA_P256_SHA_256, validFor: { start } },
    logId: { keyId: createHash('sha256').update(publicKey).digest() },
  };
}

async function answer(fn: HandlerFn, body: string): Promise<{ status: number; type?: string; response: string | Buffer }> {
  const r = await fn(body);
  return { status: r.statusCode, type: r.contentType, response: r.response as string | Buffer };
}

/** The certificate request with the identity claim added to its token's payload (see fulcioHandler above). */
function withSanClaim(body: string, san: string): string {
  const req = JSON.parse(body) as { credentials: { oidcIdentityToken: string } };
  const [head, payload, sig] = req.credentials.oidcIdentityToken.split('.');
  const claims = { ...JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')), fulcio_san: san };
  req.credentials.oidcIdentityToken = [head, b64url(JSON.stringify(claims)), sig].join('.');
  return JSON.stringify(req);
}

/**
 * Rekor stores a dsse entry not as proposed (envelope + verifiers) but canonicalized: the
 * envelope's and the payload's sha256, and each signature with its verifier (rekor
 * pkg/types/dsse/v0.0.1). The verifier compares the logged body with the bundle, so the mock's
 * log must see the canonical form.
 */
function canonicalRekorEntry(body: string): string {
  const proposed = JSON.parse(body) as { kind: string; apiVersion: string; spec: { proposedContent?: { envelope: string; verifiers: string[] } } };
  if (proposed.kind !== 'dsse' || !proposed.spec.proposedContent) return body;
  const { envelope, verifiers } = proposed.spec.proposedContent;
  const env = JSON.parse(envelope) as { payload: string; signatures: { sig: string }[] };
  const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
  return JSON.stringify({
    apiVersion: proposed.apiVersion,
    kind: 'dsse',
    spec: {
      envelopeHash: { algorithm: 'sha256', value: sha(envelope) },
      payloadHash: { algorithm: 'sha256', value: sha(Buffer.from(env.payload, 'base64')) },
      signatures: env.signatures.map((s) => ({ signature: s.sig, verifier: verifiers[0] })),
    },
  });
}
