// pushReferrer against the in-process fake registry: which way the referrer is made findable
// for each answer a registry can give (OCI-Subject on PUT, a referrers API, neither), and that
// the referrers tag schema keeps other entries and is idempotent.
import { afterEach, describe, expect, it } from '@jest/globals';
import { MemoryLogger } from '../src/log.js';
import { encodeJson } from '../src/oci/json.js';
import { MediaType, type Index } from '../src/oci/spec.js';
import { Registry } from '../src/registry/client.js';
import { targetCredentials } from '../src/registry/credentials.js';
import { RetryPolicy } from '../src/registry/retry.js';
import { EMPTY_JSON, pushReferrer, referrersTag, sbomReferrer } from '../src/sbom/referrer.js';
import { FakeRegistry, sha256 } from './support/fake-registry.js';

const servers: FakeRegistry[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const REPO = 'acme/app';
const SUBJECT_BYTES = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}');
const SUBJECT = { mediaType: MediaType.OciManifest, digest: sha256(SUBJECT_BYTES), size: SUBJECT_BYTES.length };
const TAG = referrersTag(SUBJECT.digest);
const referrer = sbomReferrer({ subject: SUBJECT, sbom: Buffer.from('{"spdxVersion":"SPDX-2.3"}'), created: '2026-01-02T03:04:05Z' });

async function setup() {
  const fake = await FakeRegistry.start({ auth: 'bearer', users: { u: 'p' } });
  servers.push(fake);
  const registry = new Registry(fake.host, {
    credentials: targetCredentials(fake.host, 'u', 'p'),
    logger: new MemoryLogger(),
    retry: new RetryPolicy({ maxAttempts: 2, sleep: async () => {}, random: () => 0 }),
  });
  return { fake, repo: registry.repository(REPO, { access: 'push' }) };
}

const storedIndex = (fake: FakeRegistry): Index | undefined => {
  const digest = fake.tags.get(REPO)?.get(TAG);
  const m = digest ? fake.manifests.get(REPO)?.get(digest) : undefined;
  return m ? (JSON.parse(m.bytes.toString('utf8')) as Index) : undefined;
};

describe('pushReferrer', () => {
  it('pushes the empty config and the document as blobs, then the manifest by digest', async () => {
    const { fake, repo } = await setup();
    await pushReferrer(repo, referrer);
    expect(fake.blobs.get(sha256(EMPTY_JSON))?.toString()).toBe('{}');
    expect(fake.blobs.get(referrer.layer.descriptor.digest)?.equals(referrer.layer.bytes)).toBe(true);
    expect(fake.manifests.get(REPO)?.get(referrer.digest)?.bytes.equals(referrer.bytes)).toBe(true);
    expect(fake.seen('PUT', /\/manifests\//).map((r) => r.path)).toEqual([`/v2/${REPO}/manifests/${referrer.digest}`, `/v2/${REPO}/manifests/${TAG}`]);
  });

  it('skips blobs the registry already has', async () => {
    const { fake, repo } = await setup();
    fake.addBlob(REPO, EMPTY_JSON);
    fake.addBlob(REPO, referrer.layer.bytes);
    await pushReferrer(repo, referrer);
    expect(fake.seen('POST', /blobs\/uploads/)).toEqual([]);
  });

  it('needs no fallback when the PUT answers OCI-Subject (the registry indexed the subject)', async () => {
    const { fake, repo } = await setup();
    fake.inject({ method: 'PUT', path: /\/manifests\/sha256:/, respond: { status: 201, headers: { 'OCI-Subject': SUBJECT.digest } } });
    await expect(pushReferrer(repo, referrer)).resolves.toEqual({ kind: 'api' });
    expect(fake.seen(undefined, /\/referrers\//)).toEqual([]);
    expect(fake.seen(undefined, new RegExp(TAG))).toEqual([]);
  });

  it('uses the referrers API when GET /referrers/<digest> answers 200 with an index', async () => {
    const { fake, repo } = await setup();
    const listed: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [referrer.entry] };
    fake.inject({ method: 'GET', path: /\/referrers\//, respond: { status: 200, headers: { 'Content-Type': MediaType.OciIndex }, body: JSON.stringify(listed) } });
    await expect(pushReferrer(repo, referrer)).resolves.toEqual({ kind: 'api' });
    expect(fake.seen('GET', /\/referrers\//).map((r) => r.path)).toEqual([`/v2/${REPO}/referrers/${SUBJECT.digest}`]);
    expect(fake.seen(undefined, new RegExp(TAG))).toEqual([]);
  });

  it('falls back to the tag schema when /referrers/ is 404, and a second push changes nothing', async () => {
    const { fake, repo } = await setup();
    await expect(pushReferrer(repo, referrer)).resolves.toEqual({ kind: 'tag', tag: TAG, added: true });
    expect(storedIndex(fake)).toEqual({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [referrer.entry] });
    expect(fake.manifests.get(REPO)?.get(fake.tags.get(REPO)!.get(TAG)!)?.mediaType).toBe(MediaType.OciIndex);

    const puts = fake.seen('PUT').length;
    await expect(pushReferrer(repo, referrer)).resolves.toEqual({ kind: 'tag', tag: TAG, added: false });
    expect(fake.seen('PUT').length).toBe(puts);
    expect(storedIndex(fake)?.manifests).toHaveLength(1);
  });

  it('treats a 200 from /referrers/ that is not an index as no support', async () => {
    const { fake, repo } = await setup();
    fake.inject({ method: 'GET', path: /\/referrers\//, respond: { status: 200, headers: { 'Content-Type': 'text/html' }, body: '<html>hi</html>' } });
    await expect(pushReferrer(repo, referrer)).resolves.toMatchObject({ kind: 'tag', added: true });
  });

  it("keeps other tools' referrers in the tag's index and appends ours", async () => {
    const { fake, repo } = await setup();
    const signature = Buffer.from('{"schemaVersion":2,"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"}');
    const other = { mediaType: MediaType.OciManifest, digest: fake.addManifest(REPO, signature, MediaType.OciManifest), size: signature.length, artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json' };
    fake.addManifest(REPO, encodeJson({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [other] }), MediaType.OciIndex, TAG);
    await pushReferrer(repo, referrer);
    expect(storedIndex(fake)?.manifests).toEqual([other, referrer.entry]);
  });

  it('refuses to overwrite a sha256-<hex> tag that is not an index', async () => {
    const { fake, repo } = await setup();
    fake.addManifest(REPO, SUBJECT_BYTES, MediaType.OciManifest, TAG);
    await expect(pushReferrer(repo, referrer)).rejects.toThrow(`${fake.host}/${REPO}:${TAG} should hold the referrers of ${SUBJECT.digest} but is not an image index`);
  });

  it('fails with the registry error when /referrers/ answers something other than 200 or 404', async () => {
    const { fake, repo } = await setup();
    fake.inject({ method: 'GET', path: /\/referrers\//, respond: { status: 403, body: '{"errors":[{"code":"DENIED","message":"no"}]}' } });
    await expect(pushReferrer(repo, referrer)).rejects.toThrow(/list referrers of sha256:[a-f0-9]{64} in .*: 403/);
  });
});
