// The referrers publisher (one referrer: content, then names) against the in-process fake registry: which way the referrer is made findable
// for each answer a registry can give (OCI-Subject on PUT, a referrers API, neither), and that
// the referrers tag schema keeps other entries and is idempotent.
import { afterEach, describe, expect, it } from '@jest/globals';
import { MemoryLogger } from '../src/log.js';
import { encodeJson } from '../src/oci/json.js';
import { MediaType, type Index } from '../src/oci/spec.js';
import { Registry } from '../src/registry/client.js';
import { targetCredentials } from '../src/registry/credentials.js';
import { RetryPolicy } from '../src/registry/retry.js';
import { EMPTY_JSON, pushReferrer, referrersTag } from '../src/publish/referrers.js';
import { sbomReferrer } from '../src/sbom/referrer.js';
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

/** Wait, boundedly, until `cond` holds: a request sequence that never gets there fails the test. */
async function until(cond: () => boolean, what: string) {
  for (const end = Date.now() + 3000; !cond(); await new Promise((r) => setTimeout(r, 5))) {
    if (Date.now() > end) throw new Error(`still not: ${what}`);
  }
}

/** Where in `fake.requests` the blob was stored (the request naming `digest=`), or the manifest PUT. */
const blobCommitted = (fake: FakeRegistry, digest: string) =>
  fake.requests.findIndex((r) => r.path.includes('/blobs/uploads/') && new URL(r.path, fake.url).searchParams.get('digest') === digest);
const manifestPut = (fake: FakeRegistry, ref: string) => fake.requests.findIndex((r) => r.method === 'PUT' && r.path === `/v2/${REPO}/manifests/${ref}`);

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

  it('checks and sends its two blobs at once, and PUTs the manifest only after both are stored', async () => {
    const { fake, repo } = await setup();
    const config = referrer.config.descriptor.digest;
    const layer = referrer.layer.descriptor.digest;
    // The empty config's HEAD gets its (true) answer only once the document is stored.
    let answer!: () => void;
    const held = new Promise<{ status: number }>((resolve) => (answer = () => resolve({ status: 404 })));
    fake.inject({ method: 'HEAD', path: new RegExp(`/blobs/${config}$`), respond: () => held });
    const pushing = pushReferrer(repo, referrer);
    await until(() => fake.blobs.has(layer) && fake.seen('HEAD', /\/manifests\//).length > 0, 'the document stored and the manifest checked');
    expect(fake.blobs.has(config)).toBe(false);
    expect(manifestPut(fake, referrer.digest)).toBe(-1);
    answer();
    await expect(pushing).resolves.toEqual({ kind: 'tag', tag: TAG, added: true });
    expect(manifestPut(fake, referrer.digest)).toBeGreaterThan(blobCommitted(fake, config));
    expect(blobCommitted(fake, config)).toBeGreaterThan(blobCommitted(fake, layer));
  });

  it('sends its blobs while the subject is still going up, and its manifest only once the subject is there', async () => {
    const { fake, repo } = await setup();
    let publish!: () => void;
    const subject = new Promise<void>((resolve) => (publish = resolve));
    const pushing = pushReferrer(repo, referrer, { subject });
    let done = false;
    void pushing.then(() => (done = true), () => (done = true));
    await until(() => fake.blobs.has(referrer.config.descriptor.digest) && fake.blobs.has(referrer.layer.descriptor.digest) && fake.seen('HEAD', /\/manifests\//).length > 0, 'both blobs stored and the manifest checked');
    // Long enough for the PUT and the referrers tag's requests to have come if they did not wait.
    await new Promise((r) => setTimeout(r, 100));
    expect(done).toBe(false);
    expect(fake.seen('PUT', /\/manifests\//)).toEqual([]);
    publish();
    await expect(pushing).resolves.toEqual({ kind: 'tag', tag: TAG, added: true });
    expect(fake.seen('PUT', /\/manifests\//).map((r) => r.path)).toEqual([`/v2/${REPO}/manifests/${referrer.digest}`, `/v2/${REPO}/manifests/${TAG}`]);
  });

  it('fails with the subject\'s failure, after its blobs are done, without PUTting its manifest', async () => {
    const { fake, repo } = await setup();
    const pushing = pushReferrer(repo, referrer, { subject: Promise.reject(new Error('the image did not go up')) });
    await expect(pushing).rejects.toThrow('the image did not go up');
    expect(fake.blobs.has(referrer.config.descriptor.digest) && fake.blobs.has(referrer.layer.descriptor.digest)).toBe(true);
    expect(fake.seen('PUT', /\/manifests\//)).toEqual([]);
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
    // The fallback tag is read alongside (it holds an HTML page here), but neither used nor written.
    fake.addManifest(REPO, Buffer.from('<html></html>'), 'text/html', TAG);
    await expect(pushReferrer(repo, referrer)).resolves.toEqual({ kind: 'api' });
    expect(fake.seen('GET', /\/referrers\//).map((r) => r.path)).toEqual([`/v2/${REPO}/referrers/${SUBJECT.digest}`]);
    expect(fake.seen(undefined, new RegExp(TAG)).map((r) => r.method)).toEqual(['GET']);
  });

  it('asks the referrers API and reads the fallback tag in the same round trip', async () => {
    const { fake, repo } = await setup();
    // The API's answer is held until the tag's read has arrived (or 2 s have passed).
    let tagReadFirst = false;
    fake.inject({
      method: 'GET',
      path: /\/referrers\//,
      respond: async () => {
        for (let waited = 0; waited < 2000 && !tagReadFirst; waited += 10) {
          tagReadFirst = fake.seen('GET', new RegExp(TAG)).length > 0;
          if (!tagReadFirst) await new Promise((r) => setTimeout(r, 10));
        }
        return { status: 404 };
      },
    });
    await expect(pushReferrer(repo, referrer)).resolves.toEqual({ kind: 'tag', tag: TAG, added: true });
    expect(tagReadFirst).toBe(true);
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

  it.each([
    ['an index', MediaType.OciIndex, '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:' + 'a'.repeat(64) + '","size":9}]}'],
    ['a manifest', MediaType.OciManifest, SUBJECT_BYTES.toString()],
  ])('pushes the referrer but leaves the tag alone where the fallback tag answers with the subject itself (GitLab), for %s', async (_what, mediaType, text) => {
    const { fake, repo } = await setup();
    // GitLab's registry reads sha256-<hex> as the digest sha256:<hex>.
    const subject = Buffer.from(text);
    const subjectDigest = fake.addManifest(REPO, subject, mediaType);
    const r = sbomReferrer({ subject: { mediaType, digest: subjectDigest, size: subject.length }, sbom: Buffer.from('{"spdxVersion":"SPDX-2.3"}'), created: '2026-01-02T03:04:05Z' });
    const tag = referrersTag(subjectDigest);
    fake.inject({ method: 'GET', path: new RegExp(`/manifests/${tag}$`), respond: { status: 200, headers: { 'Content-Type': mediaType }, body: text } });
    await expect(pushReferrer(repo, r)).resolves.toEqual({ kind: 'unlisted', tag });
    expect(fake.manifests.get(REPO)?.has(r.digest)).toBe(true);
    expect(fake.seen('PUT', new RegExp(tag))).toEqual([]);
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
    // Some other image, not the subject (that is the GitLab case above), holds the tag.
    fake.addManifest(REPO, Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[],"annotations":{"a":"b"}}'), MediaType.OciManifest, TAG);
    await expect(pushReferrer(repo, referrer)).rejects.toThrow(`${fake.host}/${REPO}:${TAG} should hold the referrers of ${SUBJECT.digest} but is not an image index`);
  });

  it('fails with the registry error when /referrers/ answers something other than 200 or 404', async () => {
    const { fake, repo } = await setup();
    fake.inject({ method: 'GET', path: /\/referrers\//, respond: { status: 403, body: '{"errors":[{"code":"DENIED","message":"no"}]}' } });
    await expect(pushReferrer(repo, referrer)).rejects.toThrow(/list referrers of sha256:[a-f0-9]{64} in .*: 403/);
  });
});
