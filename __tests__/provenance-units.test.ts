// The provenance pieces that need no Sigstore: the `sigstore` input and the instance it picks,
// GitHub's attestations API (a refusal is one warning), and the referrers publisher's names
// (one fallback index per subject, written once with every referrer of the run).
import { afterEach, describe, expect, it, test } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseInputs } from '../src/inputs.js';
import { MemoryLogger } from '../src/log.js';
import { MediaType, type Index } from '../src/oci/spec.js';
import { attestationsApi } from '../src/provenance/attestations.js';
import { requestIdToken } from '../src/provenance/oidc.js';
import { githubInstance, PUBLIC_GOOD, sigstoreEndpoints } from '../src/provenance/sigstore.js';
import { bundleReferrer, referrersTag, ReferrersPublisher } from '../src/publish/referrers.js';
import { Registry } from '../src/registry/client.js';
import { targetCredentials } from '../src/registry/credentials.js';
import { RetryPolicy } from '../src/registry/retry.js';
import { sbomReferrer } from '../src/sbom/referrer.js';
import { FakeRegistry, sha256 } from './support/fake-registry.js';

describe('the sigstore input', () => {
  test.each([
    ['auto', 'auto'],
    ['public-good', 'public-good'],
    ['github', 'github'],
    ['fulcio=https://f.example/x/,rekor=https://r.example', { custom: { fulcio: 'https://f.example/x', rekor: 'https://r.example', tsa: undefined } }],
    ['fulcio=http://127.0.0.1:1/f, tsa=http://127.0.0.1:1/t', { custom: { fulcio: 'http://127.0.0.1:1/f', rekor: undefined, tsa: 'http://127.0.0.1:1/t' } }],
  ])('%s', (given, want) => {
    expect(parseInputs({ sigstore: given }).sigstore).toEqual(want);
  });

  test.each([
    ['private', /input "sigstore": "private" is not auto, public-good, github/],
    ['fulcio=https://f.example', /give rekor=, tsa= or both/],
    ['rekor=https://r.example', /fulcio= is missing/],
    ['fulcio=https://f.example,ctlog=https://c.example', /"ctlog=https:\/\/c.example" is none of/],
    ['fulcio=https://f.example,rekor=ftp://r.example', /rekor: "ftp:\/\/r.example" is not an http\(s\) URL/],
    ['fulcio=https://f.example,rekor=https://a,rekor=https://b', /names rekor twice/],
  ])('%s is bad input', (given, message) => {
    expect(() => parseInputs({ sigstore: given })).toThrow(message);
  });

  test('auto: public-good for a public repository, GitHub\'s instance otherwise (as GitHub\'s attest actions)', () => {
    expect(sigstoreEndpoints('auto', { repository: { visibility: 'public' } }, 'https://github.com')).toEqual(PUBLIC_GOOD);
    expect(sigstoreEndpoints('auto', { repository: { visibility: 'private' } }, 'https://github.com')).toEqual({ fulcio: 'https://fulcio.githubapp.com', tsa: 'https://timestamp.githubapp.com' });
    expect(sigstoreEndpoints('auto', { repository: { private: false } }, 'https://github.com')).toEqual(PUBLIC_GOOD);
    expect(sigstoreEndpoints('auto', {}, 'https://github.com')).toEqual(githubInstance('https://github.com'));
    expect(sigstoreEndpoints('github', {}, 'https://ghes.example.com')).toEqual({ fulcio: 'https://fulcio.ghes.example.com', tsa: 'https://timestamp.ghes.example.com' });
  });

  test('github-token: never quoted', () => {
    expect(() => parseInputs({ 'github-token': 'ghs_secret\nmore' })).toThrow(/^input "github-token": the value contains white space/);
  });
});

/** Stops a loopback stand-in, keep-alive connections included. */
function closeServer(server: Server | undefined): Promise<void> {
  return new Promise<void>((r) => {
    if (!server) return r();
    server.close(() => r());
    server.closeAllConnections();
  });
}

describe("GitHub's attestations API", () => {
  let server: Server | undefined;
  afterEach(async () => {
    await closeServer(server);
    server = undefined;
  });
  async function api(statuses: number[]) {
    const seen: { url: string; auth?: string; body: string }[] = [];
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', auth: req.headers.authorization, body });
        const status = statuses.shift() ?? 201;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(status === 201 ? { id: 77 } : { message: 'no' }));
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const logger = new MemoryLogger();
    const store = attestationsApi({
      apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v3`,
      repository: 'octo-org/app',
      token: 'ghs_tok',
      fetch,
      logger,
      retry: new RetryPolicy({ baseDelayMs: 1 }),
    });
    return { seen, logger, store };
  }

  it('POSTs {bundle} with the token and returns the id', async () => {
    const { seen, store } = await api([201]);
    await expect(store({ mediaType: 'b' })).resolves.toBe('77');
    expect(seen).toEqual([{ url: '/api/v3/repos/octo-org/app/attestations', auth: 'token ghs_tok', body: '{"bundle":{"mediaType":"b"}}' }]);
  });

  it.each([401, 403, 404])('a %i is one warning naming attestations: write; later bundles are not sent', async (status) => {
    const { seen, logger, store } = await api([status]);
    await expect(store({})).resolves.toBeUndefined();
    await expect(store({})).resolves.toBeUndefined();
    expect(seen).toHaveLength(1);
    const warnings = logger.lines.filter((l) => l.startsWith('warning: '));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('`permissions: attestations: write`');
  });

  it('a 502 is retried', async () => {
    const { seen, store } = await api([502, 201]);
    await expect(store({})).resolves.toBe('77');
    expect(seen).toHaveLength(2);
  });
});

describe('the referrers publisher', () => {
  const servers: FakeRegistry[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  it('writes nothing but content until putNames, then each subject\'s fallback index once, with all its referrers', async () => {
    const fake = await FakeRegistry.start({ auth: 'none' });
    servers.push(fake);
    const repo = new Registry(fake.host, { credentials: targetCredentials(fake.host, '', ''), logger: new MemoryLogger() }).repository('acme/app', { access: 'push' });
    const subjectBytes = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}');
    const subject = { mediaType: MediaType.OciManifest, digest: sha256(subjectBytes), size: subjectBytes.length };
    const created = '2026-01-02T03:04:05Z';
    const sbom = sbomReferrer({ subject, sbom: Buffer.from('{"spdxVersion":"SPDX-2.3"}'), created });
    const attestation = bundleReferrer({ subject, bundle: Buffer.from('{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}'), predicateType: 'https://spdx.dev/Document/v2.3', created });
    const publisher = new ReferrersPublisher(repo);
    const pushed = await Promise.all([publisher.putContent(sbom), publisher.putContent(attestation)]);
    const tag = referrersTag(subject.digest);
    expect(fake.tags.get('acme/app')?.has(tag) ?? false).toBe(false);
    expect(pushed.map((p) => p.kind)).toEqual(['tag', 'tag']);

    await expect(publisher.putNames(pushed)).resolves.toEqual([
      { kind: 'tag', tag, added: true },
      { kind: 'tag', tag, added: true },
    ]);
    expect(fake.seen('PUT', new RegExp(tag))).toHaveLength(1);
    const index = JSON.parse(fake.manifests.get('acme/app')!.get(fake.tags.get('acme/app')!.get(tag)!)!.bytes.toString('utf8')) as Index;
    expect(index.manifests).toEqual([sbom.entry, attestation.entry]);
    expect(attestation.entry).toMatchObject({
      artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': 'https://spdx.dev/Document/v2.3', 'org.opencontainers.image.created': created },
    });
    // Again: nothing to add, nothing written.
    const again = new ReferrersPublisher(repo);
    const second = await Promise.all([again.putContent(sbom), again.putContent(attestation)]);
    await expect(again.putNames(second)).resolves.toEqual([
      { kind: 'tag', tag, added: false },
      { kind: 'tag', tag, added: false },
    ]);
    expect(fake.seen('PUT', new RegExp(tag))).toHaveLength(1);
  });
});

describe("the runner's OIDC token, through @actions/core's getIDToken", () => {
  let server: Server | undefined;
  afterEach(async () => {
    await closeServer(server);
    server = undefined;
  });
  /** A token endpoint answering `status` (with a token when 200), or never when `status` is 0. */
  async function endpoint(status: number) {
    const seen: { url: string; auth?: string }[] = [];
    server = createServer((req, res) => {
      seen.push({ url: req.url ?? '', auth: req.headers.authorization });
      if (status === 0) return; // never answers
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(status === 200 ? { value: 'a.b.c' } : { message: 'no' }));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const env = { ACTIONS_ID_TOKEN_REQUEST_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token?api-version=2.0`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'request-tok' };
    return { seen, env };
  }

  it("reads the run's env, not process.env, and leaves process.env as it was", async () => {
    const { seen, env } = await endpoint(200);
    const before = process.env;
    const masked: string[] = [];
    await expect(requestIdToken('sigstore', { env, mask: (m) => masked.push(m) })).resolves.toBe('a.b.c');
    expect(process.env).toBe(before);
    expect(process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN).not.toBe('request-tok');
    expect(seen).toEqual([{ url: '/token?api-version=2.0&audience=sigstore', auth: 'Bearer request-tok' }]);
    expect(masked).toEqual(['a.b.c']);
  });

  it('a refusal fails naming the runner and the status, on one line', async () => {
    const { env } = await endpoint(403);
    await expect(requestIdToken('sigstore', { env })).rejects.toThrow(/^requesting the OIDC token from the runner: Failed to get ID Token\. Error Code : 403 Error Message: .*$/);
  });

  it('an endpoint that never answers fails within the time limit', async () => {
    const { env } = await endpoint(0);
    const started = Date.now();
    await expect(requestIdToken('sigstore', { env, timeoutMs: 500 })).rejects.toThrow('requesting the OIDC token from the runner: no answer within 0.5s');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('without the runner\'s variables it names the permission', async () => {
    await expect(requestIdToken('sigstore', { env: {} })).rejects.toThrow('`permissions: id-token: write`');
  });
});
