import { afterEach, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, request as httpRequest } from 'node:http';
import { createServer as createHttpsServer, globalAgent as httpsGlobalAgent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { MemoryLogger } from '../src/log.js';
import { fromBuffer } from '../src/oci/layer.js';
import { MediaType } from '../src/oci/spec.js';
import { readAll } from '../src/oci/store.js';
import type { TokenRefusals } from '../src/registry/auth.js';
import { Registry, type RegistryOptions } from '../src/registry/client.js';
import { anonymous, targetCredentials, type CredentialProvider } from '../src/registry/credentials.js';
import { RegistryError } from '../src/registry/errors.js';
import { GaveUpError, RetryPolicy } from '../src/registry/retry.js';
import { SMALL_BLOB, type UploadFallbacks } from '../src/registry/upload.js';
import { FakeRegistry, FakeStorage, sha256, type FakeRegistryOptions } from './support/fake-registry.js';

const USER = 'alice';
const PASSWORD = 'pa55-w0rd-not-in-messages';

const servers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(opts: FakeRegistryOptions = {}) {
  const fake = await FakeRegistry.start({ users: { [USER]: PASSWORD }, ...opts });
  servers.push(fake);
  return fake;
}

/** A client for `fake` whose retries sleep on a fake clock (recorded in `sleeps`). */
function client(fake: FakeRegistry, opts: Partial<RegistryOptions> & { credentials?: CredentialProvider } = {}) {
  const sleeps: number[] = [];
  const logger = new MemoryLogger();
  const registry = new Registry(fake.host, {
    credentials: targetCredentials(fake.host, USER, PASSWORD),
    logger,
    retry: new RetryPolicy({ sleep: async (ms) => void sleeps.push(ms), random: () => 0.5 }),
    // The upload protocols are tested with blobs of a few KB; SMALL_BLOB's one PUT has its own tests.
    smallBlob: 0,
    ...opts,
  });
  return { registry, sleeps, logger };
}

const manifestBytes = (config: string) =>
  Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: config, size: 2 }, layers: [] }));

describe('manifests', () => {
  it('puts by digest and tag and reads back bytes, digest and served media type', async () => {
    const fake = await start();
    const repo = client(fake).registry.repository('app');
    const config = fake.addBlob('app', Buffer.from('{}'));
    const bytes = manifestBytes(config);
    const digest = await repo.putManifest(sha256(bytes), bytes, MediaType.OciManifest);
    expect(digest).toBe(sha256(bytes));
    await repo.putManifest('v1', bytes, MediaType.OciManifest);
    const got = await repo.getManifest('v1');
    expect(got).toEqual({ bytes, digest, mediaType: MediaType.OciManifest });
    expect(await repo.getManifest(digest)).toEqual(got);
    expect(await repo.headManifest('v1')).toEqual({ mediaType: MediaType.OciManifest, digest, size: bytes.length });
    expect(await repo.headManifest('v2')).toBeUndefined();
    expect(fake.seen('GET', /manifests/)[0].headers.accept).toContain(MediaType.OciIndex);
  });

  it('rejects bytes that do not match the digest asked for', async () => {
    const fake = await start();
    const repo = client(fake).registry.repository('app');
    const digest = sha256(Buffer.from('expected'));
    fake.inject({ method: 'GET', path: /manifests/, respond: { status: 200, headers: { 'Content-Type': MediaType.OciManifest }, body: '{"other":1}' } });
    await expect(repo.getManifest(digest)).rejects.toThrow(`pull manifest ${digest} from ${fake.host}/app: the registry served bytes that hash to ${sha256(Buffer.from('{"other":1}'))}`);
  });

  it('tolerates a registry that omits Docker-Content-Digest', async () => {
    const fake = await start({ omitDigestHeader: true });
    const repo = client(fake).registry.repository('app');
    const config = fake.addBlob('app', Buffer.from('{}'));
    const bytes = manifestBytes(config);
    expect(await repo.putManifest('v1', bytes, MediaType.OciManifest)).toBe(sha256(bytes));
    // HEAD without the digest header falls back to a GET.
    expect(await repo.headManifest('v1')).toEqual({ mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length });
    await repo.uploadBlob(sha256(Buffer.from('blob')), 4, async () => fromBuffer(Buffer.from('blob')));
    expect(fake.repoBlobs.get('app')?.has(sha256(Buffer.from('blob')))).toBe(true);
  });

  it('refuses a Docker-Content-Digest that disagrees with the bytes', async () => {
    const fake = await start();
    const repo = client(fake).registry.repository('app');
    const bytes = manifestBytes(fake.addBlob('app', Buffer.from('{}')));
    fake.inject({ method: 'PUT', respond: { status: 201, headers: { 'Docker-Content-Digest': sha256(Buffer.from('x')) } } });
    await expect(repo.putManifest('v1', bytes, MediaType.OciManifest)).rejects.toThrow(/the registry stored sha256:.*, expected/);
  });
});

describe('blobs', () => {
  it('streams a blob and checks its digest at the end', async () => {
    const fake = await start();
    const repo = client(fake).registry.repository('app');
    const data = randomBytes(100_000);
    const digest = fake.addBlob('app', data);
    expect((await readAll(await repo.getBlob(digest))).equals(data)).toBe(true);
    expect(await repo.hasBlob(digest)).toBe(true);
    expect(await repo.hasBlob(sha256(Buffer.from('nope')))).toBe(false);

    fake.inject({ method: 'GET', path: /blobs/, respond: { status: 200, body: 'tampered' } });
    await expect(readAll(await repo.getBlob(digest))).rejects.toThrow(`pull blob ${digest} from ${fake.host}/app: the bytes received hash to ${sha256(Buffer.from('tampered'))}`);
  });

  it('never sends the Authorization header to a redirect target on another origin', async () => {
    const fake = await start({ auth: 'bearer' });
    const storage = await FakeStorage.start(fake.blobs);
    servers.push(storage);
    fake.opts.blobRedirect = (d) => `${storage.url}/blobs/${d}?X-Amz-Signature=abc`;
    const data = randomBytes(5000);
    const digest = fake.addBlob('app', data);
    const repo = client(fake).registry.repository('app');
    expect(await readAll(await repo.getBlob(digest))).toEqual(data);

    const toRegistry = fake.seen('GET', /blobs/);
    expect(toRegistry.at(-1)?.headers.authorization).toMatch(/^Bearer tok-/);
    expect(storage.requests).toHaveLength(1);
    const sent = JSON.stringify(storage.requests[0].headers);
    expect(storage.requests[0].headers.authorization).toBeUndefined();
    expect(sent).not.toContain('tok-');
    expect(sent).not.toContain(PASSWORD);
    expect(sent).not.toContain(Buffer.from(`${USER}:${PASSWORD}`).toString('base64'));
  });

  it('follows a relative redirect on the same registry', async () => {
    const fake = await start({ blobRedirect: (d) => `/_storage/${d}` });
    const data = randomBytes(1000);
    const digest = fake.addBlob('app', data);
    expect(await readAll(await client(fake).registry.repository('app').getBlob(digest))).toEqual(data);
    expect(fake.seen('GET', /_storage/)).toHaveLength(1);
  });

  it('treats a redirected HEAD as "the blob exists" without following it', async () => {
    const fake = await start();
    const digest = sha256(Buffer.from('elsewhere'));
    fake.inject({ method: 'HEAD', respond: { status: 307, headers: { Location: 'http://127.0.0.1:1/never' } } });
    expect(await client(fake).registry.repository('app').hasBlob(digest)).toBe(true);
  });
});

describe('uploads', () => {
  /** `data` as a source that yields `piece`-byte Buffers, each after `delayMs`. */
  const pieces = (data: Buffer, piece: number, delayMs = 0) =>
    Readable.from(
      (async function* () {
        for (let i = 0; i < data.length; i += piece) {
          if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
          yield data.subarray(i, i + piece);
        }
      })(),
    );
  const sessionOf = (path: string) => /uploads\/([^?]*)/.exec(path)?.[1] ?? '';
  /** Upload sessions the fake served (a bearer registry first answers one unauthenticated POST with 401). */
  const sessionPosts = (fake: FakeRegistry) => fake.seen('POST').filter((p) => p.path.includes('/blobs/uploads/') && (fake.opts.auth !== 'bearer' || p.headers.authorization));

  it.each([
    ['relative Locations (GHCR)', false],
    ['absolute Locations (distribution)', true],
  ])('POST, one streamed PATCH without Content-Range, PUT ?digest= with %s', async (_name, absoluteLocations) => {
    const fake = await start({ absoluteLocations });
    const repo = client(fake).registry.repository('app');
    const data = randomBytes(2500);
    const digest = sha256(data);
    const progress: number[] = [];
    await repo.uploadBlob(digest, data.length, async () => pieces(data, 1000), (n) => progress.push(n));
    expect(fake.blobs.get(digest)).toEqual(data);
    const [patch, ...more] = fake.seen('PATCH');
    expect(more).toEqual([]);
    expect(patch.headers['content-range']).toBeUndefined();
    expect(patch.headers).toMatchObject({ 'content-type': 'application/octet-stream', 'content-length': '2500' });
    expect(patch.bodyLength).toBe(2500);
    // The PATCH goes to the POST's Location, the commit to the PATCH's.
    expect(new URL(patch.path, fake.url).searchParams.get('_state')).toBe('s1');
    const put = fake.seen('PUT')[0];
    expect(put.path).toMatch(/\?_state=s2&digest=sha256%3A[a-f0-9]{64}$/);
    expect(put.bodyLength).toBe(0);
    // Progress follows the bytes as they are read from the source.
    expect(progress).toEqual([1000, 2000, 2500]);
  });

  it('sends a 9 MiB blob in one PATCH to a registry that caps ranged PATCHes at 4 MiB, as GHCR does', async () => {
    const fake = await start({ maxRangedPatchBytes: 4 * 1024 * 1024 });
    const repo = client(fake).registry.repository('app');
    const data = randomBytes(9 * 1024 * 1024 + 17);
    await repo.uploadBlob(sha256(data), data.length, async () => fromBuffer(data));
    expect(fake.seen('PATCH').map((p) => [p.bodyLength, p.headers['content-range']])).toEqual([[data.length, undefined]]);
    // Buffer.equals: jest's toEqual walks 9 MiB byte by byte.
    expect(fake.blobs.get(sha256(data))?.equals(data)).toBe(true);
  });

  it.each([413, 416])('falls back to ranged PATCHes of at most 4 MiB in a new session when the streamed PATCH is refused with %i', async (status) => {
    const fake = await start({ maxPatchBytes: 4 * 1024 * 1024, tooLargeStatus: status });
    const { registry, sleeps } = client(fake);
    const data = randomBytes(9 * 1024 * 1024 + 17);
    const progress: number[] = [];
    await registry.repository('app').uploadBlob(sha256(data), data.length, async () => fromBuffer(data), (n) => progress.push(n));
    expect(fake.blobs.get(sha256(data))?.equals(data)).toBe(true);
    const patches = fake.seen('PATCH');
    expect(patches.map((p) => p.headers['content-range'])).toEqual([undefined, '0-4194303', '4194304-8388607', '8388608-9437200']);
    expect(patches.map((p) => p.bodyLength)).toEqual([data.length, 4 * 1024 * 1024, 4 * 1024 * 1024, 1024 * 1024 + 17]);
    // The refused session is cancelled; the chunks go to a second one. A refusal is not a retry.
    const [refused, ...chunked] = patches.map((p) => sessionOf(p.path));
    expect(fake.seen('DELETE').map((r) => sessionOf(r.path))).toEqual([refused]);
    expect(new Set(chunked).size).toBe(1);
    expect(chunked[0]).not.toBe(refused);
    expect(sessionPosts(fake)).toHaveLength(2);
    expect(sleeps).toEqual([]);
    expect(progress.slice(-3)).toEqual([4 * 1024 * 1024, 8 * 1024 * 1024, data.length]);
  });

  it.each([
    ['anonymously', 'none'],
    ['behind a bearer challenge', 'bearer'],
  ] as const)('falls back to one streamed PUT when PATCH is refused, %s', async (_name, auth) => {
    const fake = await start({ noChunkedUploads: true, auth });
    const repo = client(fake).registry.repository('app', { access: 'push' });
    const data = randomBytes(2500);
    let opened = 0;
    const progress: number[] = [];
    const open = async () => {
      opened++;
      return pieces(data, 1000);
    };
    await repo.uploadBlob(sha256(data), data.length, open, (n) => progress.push(n));
    expect(fake.blobs.get(sha256(data))?.equals(data)).toBe(true);
    // One refused PATCH, then a fresh session whose PUT carries the whole blob.
    expect(fake.seen('PATCH')).toHaveLength(1);
    const puts = fake.seen('PUT');
    expect(puts.at(-1)!.bodyLength).toBe(2500);
    expect(puts.at(-1)!.headers['content-length']).toBe('2500');
    expect(sessionPosts(fake)).toHaveLength(2);
    // Opened once for the refused PATCH and once for the PUT: a stream is never reused.
    expect(opened).toBe(2);
    expect(progress.slice(-3)).toEqual([1000, 2000, 2500]);
  });

  it('falls back to ranged PATCHes when the registry answers 413 before reading the body, and closes', async () => {
    const fake = await start();
    fake.inject({ method: 'PATCH', times: 1, early: true, respond: { status: 413, body: 'Request Entity Too Large' } });
    // Far more than socket buffers hold: the answer comes while the body is still going up.
    const data = randomBytes(8 * 1024 * 1024 + 1);
    let opened = 0;
    const open = async () => {
      opened++;
      return fromBuffer(data);
    };
    await client(fake).registry.repository('app').uploadBlob(sha256(data), data.length, open);
    expect(fake.blobs.get(sha256(data))?.equals(data)).toBe(true);
    expect(fake.seen('PATCH').map((p) => [p.headers['content-range'], p.bodyLength])).toEqual([
      [undefined, -1],
      ['0-4194303', 4194304],
      ['4194304-8388607', 4194304],
      ['8388608-8388608', 1],
    ]);
    expect(opened).toBe(2);
    expect(sessionPosts(fake)).toHaveLength(2);
  });

  it('keeps to the protocol fallen back to for the registry\'s later uploads', async () => {
    const fake = await start();
    // The first streamed PATCH is refused as too large; one more would not be.
    fake.inject({ method: 'PATCH', times: 1, respond: { status: 413 } });
    const { registry } = client(fake, { chunkSize: 1000 });
    for (const n of [2500, 1500]) {
      const data = randomBytes(n);
      await registry.repository('app').uploadBlob(sha256(data), data.length, async () => fromBuffer(data));
      expect(fake.blobs.get(sha256(data))?.equals(data)).toBe(true);
    }
    // The first upload is refused once and then goes in ranges; the second starts with ranges.
    expect(fake.seen('PATCH').map((p) => p.headers['content-range'] ?? 'whole')).toEqual(['whole', '0-999', '1000-1999', '2000-2499', '0-999', '1000-1499']);
  });

  it('falls back from ranged PATCHes to the monolithic PUT when the first range is refused too', async () => {
    const fake = await start();
    // A streamed PATCH is too large; a ranged one is not allowed at all.
    fake.inject({ method: 'PATCH', times: 2, respond: (r) => (r.headers['content-range'] === undefined ? { status: 413 } : { status: 405 }) });
    const data = randomBytes(2500);
    await client(fake, { chunkSize: 1000 }).registry.repository('app').uploadBlob(sha256(data), data.length, async () => fromBuffer(data));
    expect(fake.blobs.get(sha256(data))).toEqual(data);
    expect(fake.seen('PATCH').map((p) => p.headers['content-range'])).toEqual([undefined, '0-999']);
    expect(fake.seen('PUT').map((p) => p.bodyLength)).toEqual([2500]);
    expect(sessionPosts(fake)).toHaveLength(3);
    expect(fake.seen('DELETE')).toHaveLength(2);
    expect(fake.sessions.size).toBe(0);
  });

  it('uploads a blob of at most SMALL_BLOB bytes with its commit: POST, then one PUT with the bytes', async () => {
    const fake = await start();
    const data = randomBytes(SMALL_BLOB);
    // The Registry's default, not the test client's.
    await client(fake, { smallBlob: undefined }).registry.repository('app').uploadBlob(sha256(data), data.length, async () => fromBuffer(data));
    expect(fake.blobs.get(sha256(data))?.equals(data)).toBe(true);
    expect(fake.requests.map((r) => r.method)).toEqual(['POST', 'PUT']);
    expect(fake.seen('PUT')[0].bodyLength).toBe(SMALL_BLOB);
    // One byte more goes up in a PATCH.
    const more = randomBytes(SMALL_BLOB + 1);
    await client(fake, { smallBlob: undefined }).registry.repository('app').uploadBlob(sha256(more), more.length, async () => fromBuffer(more));
    expect(fake.requests.slice(2).map((r) => [r.method, r.bodyLength])).toEqual([
      ['POST', 0],
      ['PATCH', SMALL_BLOB + 1],
      ['PUT', 0],
    ]);
  });

  it('uploads an empty blob with no PATCH', async () => {
    const fake = await start();
    const empty = Buffer.alloc(0);
    await client(fake).registry.repository('app').uploadBlob(sha256(empty), 0, async () => fromBuffer(empty));
    expect(fake.seen('PATCH')).toHaveLength(0);
    expect(fake.repoBlobs.get('app')?.has(sha256(empty))).toBe(true);
  });

  it.each([
    ['a 500', { status: 500, body: '{"errors":[{"code":"UNKNOWN","message":"storage hiccup"}]}' } as const],
    ['a connection reset', 'reset' as const],
  ])('restarts with a new session after %s on the streamed PATCH, never re-PATCHing the old one', async (_name, failure) => {
    const fake = await start();
    const { registry, sleeps } = client(fake);
    const data = randomBytes(3000);
    let opens = 0;
    fake.inject({ method: 'PATCH', respond: failure });
    await registry.repository('app').uploadBlob(sha256(data), data.length, async () => (opens++, fromBuffer(data)));
    expect(fake.blobs.get(sha256(data))).toEqual(data);
    expect(opens).toBe(2);
    expect(sleeps).toHaveLength(1);
    expect(fake.seen('POST')).toHaveLength(2);
    const patches = fake.seen('PATCH');
    expect(patches.map((p) => [p.bodyLength, p.headers['content-range']])).toEqual([
      [3000, undefined],
      [3000, undefined],
    ]);
    const [first, second] = patches.map((p) => sessionOf(p.path));
    expect(second).not.toBe(first);
    // The failed session is cancelled (best effort) before the new one starts.
    expect(fake.seen('DELETE').map((r) => sessionOf(r.path))).toEqual([first]);
  });

  it('keeps to ranged PATCHes once chosen: a retry after a failed chunk starts a new ranged session', async () => {
    const fake = await start({ maxPatchBytes: 1000 });
    const { registry, sleeps } = client(fake, { chunkSize: 1000 });
    const data = randomBytes(3000);
    // Sessions: s1 refused (too large); chunks go to s2, s3, … and the second chunk fails.
    fake.inject({ method: 'PATCH', path: /_state=s3$/, respond: { status: 503 } });
    await registry.repository('app').uploadBlob(sha256(data), data.length, async () => fromBuffer(data));
    expect(fake.blobs.get(sha256(data))).toEqual(data);
    expect(sleeps).toHaveLength(1);
    const patches = fake.seen('PATCH');
    // The streamed PATCH is tried once only; the retry goes straight to ranges, from byte 0.
    expect(patches.map((p) => p.headers['content-range'] ?? 'streamed')).toEqual(['streamed', '0-999', '1000-1999', '0-999', '1000-1999', '2000-2999']);
    const sessions = patches.map((p) => sessionOf(p.path));
    expect(new Set(sessions).size).toBe(3);
    expect(fake.seen('DELETE').map((r) => sessionOf(r.path))).toEqual([sessions[0], sessions[1]]);
  });

  describe('while the blob is written (uploadWhileWritten)', () => {
    /** A live source and the digest it will have, resolved only once the source has ended. */
    const live = (data: Buffer, digest = sha256(data)) => {
      const source = pieces(data, 1000, 2);
      const made = new Promise<string>((resolve) => source.on('end', () => resolve(digest)));
      return { source, made };
    };

    it('remembers a refused streamed PATCH for every client sharing the fallbacks: later uploads start in ranges, and none is tried live', async () => {
      const fake = await start();
      const uploadFallbacks: UploadFallbacks = new Map();
      const building = client(fake, { uploadFallbacks, chunkSize: 1000 }).registry.repository('app', { access: 'push' });
      const publishing = client(fake, { uploadFallbacks, chunkSize: 1000 }).registry.repository('app', { access: 'push' });
      fake.inject({ method: 'PATCH', times: 1, respond: { status: 413 } });
      const first = live(randomBytes(3000));
      await expect(building.uploadWhileWritten(first.source, first.made)).rejects.toThrow(/413/);
      expect(uploadFallbacks.get(fake.host)).toBe('ranged');
      // Another live upload is not even started.
      const before = fake.requests.length;
      const second = live(randomBytes(3000));
      await expect(building.uploadWhileWritten(second.source, second.made)).rejects.toThrow('refused a streamed upload earlier in this run');
      expect(fake.requests.length).toBe(before);
      // The other client's upload goes in ranges from the start.
      const data = randomBytes(2500);
      await publishing.uploadBlob(sha256(data), data.length, async () => fromBuffer(data));
      expect(fake.requests.slice(before).filter((r) => r.method === 'PATCH').map((r) => r.headers['content-range'])).toEqual(['0-999', '1000-1999', '2000-2499']);
      expect(fake.blobs.get(sha256(data))?.equals(data)).toBe(true);
    });

    it('POSTs, streams one PATCH of unknown length, and commits with the digest known at the end', async () => {
      const fake = await start({ auth: 'bearer' });
      const repo = client(fake).registry.repository('app', { access: 'push' });
      const data = randomBytes(5000);
      const { source, made } = live(data);
      await repo.uploadWhileWritten(source, made);
      expect(fake.blobs.get(sha256(data))).toEqual(data);
      const [patch, ...more] = fake.seen('PATCH');
      expect(more).toEqual([]);
      expect(patch.headers['content-length']).toBeUndefined();
      expect(patch.headers['content-range']).toBeUndefined();
      expect(patch.bodyLength).toBe(5000);
      expect(fake.seen('PUT')[0].path).toContain(`digest=${encodeURIComponent(sha256(data))}`);
    });

    it('fails once, cancelling its session, when the registry refuses the digest; nothing is stored', async () => {
      const fake = await start();
      const { registry, sleeps } = client(fake);
      const data = randomBytes(3000);
      const wrong = sha256(Buffer.from('something else'));
      const { source, made } = live(data, wrong);
      await expect(registry.repository('app').uploadWhileWritten(source, made)).rejects.toThrow();
      expect(fake.blobs.has(wrong)).toBe(false);
      expect(fake.blobs.has(sha256(data))).toBe(false);
      expect(fake.seen('DELETE')).toHaveLength(1);
      expect(sleeps).toEqual([]);
    });

    it('does not re-send a live body when the registry asks for authorization again, and does not retry', async () => {
      const fake = await start({ auth: 'bearer' });
      const { registry, sleeps } = client(fake);
      const repo = registry.repository('app', { access: 'push' });
      const data = randomBytes(3000);
      const { source, made } = live(data);
      // The POST gets its token; the PATCH is then refused as if the token had expired.
      fake.inject({ method: 'PATCH', times: 1, respond: { status: 401, headers: { 'WWW-Authenticate': `Bearer realm="${fake.url}/token",service="fake",scope="repository:app:pull,push"` } } });
      await expect(repo.uploadWhileWritten(source, made)).rejects.toThrow(/cannot be re-sent/);
      expect(fake.seen('PATCH')).toHaveLength(1);
      expect(sleeps).toEqual([]);
    });

    it('gives up on a registry that stops answering, after the request timeout of silence', async () => {
      const fake = await start();
      const repo = client(fake, { requestTimeoutMs: 200 }).registry.repository('app');
      const { source, made } = live(randomBytes(3000));
      fake.inject({ method: 'PATCH', times: 1, respond: 'hang' });
      const started = Date.now();
      await expect(repo.uploadWhileWritten(source, made)).rejects.toThrow(/no response within 200 ms/);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(fake.seen('PUT')).toHaveLength(0);
    });

    it('fails when the source fails, and cancels the session', async () => {
      const fake = await start();
      const repo = client(fake).registry.repository('app');
      const source = new Readable({ read() {} });
      const made = new Promise<string>(() => undefined);
      const uploading = repo.uploadWhileWritten(source, made);
      source.push(randomBytes(100));
      setTimeout(() => source.destroy(new Error('the layer could not be written')), 20);
      await expect(uploading).rejects.toThrow();
      expect(fake.seen('PUT')).toHaveLength(0);
      expect(fake.seen('DELETE')).toHaveLength(1);
    });
  });

  it('cuts a connection that goes silent, before the answer or in the middle of a body, and retries it (no request timeout set)', async () => {
    const blob = randomBytes(64 * 1024);
    const digest = sha256(blob);
    const seen: string[] = [];
    // The first GET is never answered; the second sends half the blob and goes silent; the third is whole.
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (seen.length === 1) return;
      res.writeHead(200, { 'Content-Length': String(blob.length) });
      if (seen.length === 2) return void res.write(blob.subarray(0, blob.length / 2));
      res.end(blob);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push({ close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))) });
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const sleeps: number[] = [];
    const registry = new Registry(host, {
      credentials: anonymous,
      logger: new MemoryLogger(),
      idleTimeoutMs: 300,
      retry: new RetryPolicy({ sleep: async (ms) => void sleeps.push(ms), random: () => 0.5 }),
    });
    const started = Date.now();
    // Headers never come: cut and retried by send(). The body stalls: readAll fails, and a second read gets the whole blob.
    const first = await registry
      .repository('app')
      .getBlob(digest)
      .then(readAll)
      .catch((e: Error) => e);
    expect((first as Error).message).toBe(`GET ${host}/v2/app/blobs/${digest}: the connection was idle for 0.3 s`);
    expect(await readAll(await registry.repository('app').getBlob(digest))).toEqual(blob);
    expect(seen).toEqual([`GET /v2/app/blobs/${digest}`, `GET /v2/app/blobs/${digest}`, `GET /v2/app/blobs/${digest}`]);
    expect(sleeps).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('refuses to commit bytes that do not match the digest, and does not retry', async () => {
    const fake = await start();
    const { registry, sleeps } = client(fake);
    const err = (await registry
      .repository('app')
      .uploadBlob(sha256(Buffer.from('promised')), 8, async () => fromBuffer(Buffer.from('imposter')))
      .catch((e) => e)) as Error;
    expect(err.message).toMatch(/the source gave 8 bytes hashing to sha256:[a-f0-9]{64}, expected 8 bytes/);
    expect(fake.seen('PUT')).toHaveLength(0);
    expect(fake.seen('DELETE')).toHaveLength(1);
    expect(sleeps).toHaveLength(0);
  });

  it.each([
    ['shorter', 'short', 8, 'the request body ended after 5 of the 8 bytes its Content-Length declares'],
    ['longer', 'too long', 5, 'the request body is longer than its Content-Length of 5 bytes'],
  ])('fails without retrying when the source is %s than the declared size', async (_how, text, size, reason) => {
    const fake = await start();
    const { registry, sleeps } = client(fake);
    const data = Buffer.from(text);
    const err = (await registry
      .repository('app')
      .uploadBlob(sha256(data.subarray(0, size)), size, async () => fromBuffer(data))
      .catch((e) => e)) as Error;
    expect(err.message).toMatch(new RegExp(`^upload blob sha256:[a-f0-9]{64} to 127\\.0\\.0\\.1:\\d+/app: ${reason}$`));
    expect(fake.seen('PUT')).toHaveLength(0);
    expect(sleeps).toHaveLength(0);
  });

  it('times out a stalled request but not a slow body that keeps moving', async () => {
    const fake = await start();
    const { registry } = client(fake, { requestTimeoutMs: 300 });
    const data = randomBytes(5000);
    // 1.0 s in all, never 300 ms without a byte.
    await registry.repository('app').uploadBlob(sha256(data), data.length, async () => pieces(data, 1000, 200));
    expect(fake.blobs.get(sha256(data))).toEqual(data);
    expect(fake.seen('PATCH')).toHaveLength(1);

    const stalled = Readable.from(
      (async function* () {
        yield data.subarray(0, 1000);
        await new Promise((r) => setTimeout(r, 1000));
        yield data.subarray(1000);
      })(),
    );
    const { registry: once } = client(fake, { requestTimeoutMs: 300, retry: new RetryPolicy({ maxAttempts: 1 }) });
    const err = (await once
      .repository('app')
      .uploadBlob(sha256(data), data.length, async () => stalled)
      .catch((e) => e)) as Error;
    expect(err.message).toMatch(/no response within 300 ms/);
  });
});

describe('mounts', () => {
  it.each([
    ['201 Created: mounted', 'normal' as const, true],
    ['202 Accepted: an upload started instead, cancelled', 'always-202' as const, false],
  ])('%s', async (_name, mount, mounted) => {
    const fake = await start({ auth: 'bearer', mount });
    const data = randomBytes(100);
    const digest = fake.addBlob('base/image', data);
    const repo = client(fake).registry.repository('app');
    expect(await repo.mountBlob(digest, 'base/image')).toBe(mounted);
    const post = fake.seen('POST').at(-1)!;
    expect(post.path).toBe(`/v2/app/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=base%2Fimage`);
    expect(fake.repoBlobs.get('app')?.has(digest) ?? false).toBe(mounted);
    expect(fake.seen('DELETE')).toHaveLength(mounted ? 0 : 1);
    expect(fake.sessions.size).toBe(0);
    // The token asked for push on the target and pull on the source.
    expect(fake.tokenRequests.at(-1)?.scopes.sort()).toEqual(['repository:app:pull,push', 'repository:base/image:pull']);
  });

  it('uploads instead when the mount is refused with a 4xx', async () => {
    const fake = await start();
    fake.inject({ method: 'POST', respond: { status: 403, body: '{"errors":[{"code":"DENIED","message":"no"}]}' } });
    const { registry, logger } = client(fake);
    expect(await registry.repository('app').mountBlob(sha256(Buffer.from('x')), 'other')).toBe(false);
    expect(logger.lines.join('\n')).toMatch(/debug: mount blob .* 403 DENIED: no; uploading instead/);
  });
});

describe('authentication', () => {
  it('exchanges a 401 for a bearer token with the right scopes, and caches it per scope set', async () => {
    const fake = await start({ auth: 'bearer' });
    const repo = client(fake).registry.repository('owner/app');
    const bytes = manifestBytes(fake.addBlob('owner/app', Buffer.from('{}')));
    await repo.putManifest('v1', bytes, MediaType.OciManifest);
    await repo.putManifest('v2', bytes, MediaType.OciManifest);
    expect(fake.tokenRequests).toEqual([
      { method: 'GET', service: 'fake-registry', scopes: ['repository:owner/app:pull,push'], username: USER, grantType: undefined, status: 200 },
    ]);
    // A push token covers pulls of the same repository; another repository needs its own.
    await repo.getManifest('v1');
    await client(fake).registry.repository('owner/app').getManifest('v1');
    expect(fake.tokenRequests.map((t) => t.scopes)).toEqual([['repository:owner/app:pull,push'], ['repository:owner/app:pull']]);
    // First contact is anonymous; afterwards the token goes with the first request.
    expect(fake.seen('PUT').map((r) => r.headers.authorization?.split(' ')[0])).toEqual([undefined, 'Bearer', 'Bearer']);
  });

  it('gets its token from an HTTPS realm (as ghcr.io/token is), verifying the certificate', async () => {
    // A TLS front for the fake's token endpoint, with a certificate for 127.0.0.1 that only this test trusts.
    const dir = await mkdtemp(join(tmpdir(), 'ko-annotate-tls-'));
    const run = promisify(execFile);
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
    const cert = await readFile(join(dir, 'cert.pem'));
    const seen: string[] = [];
    let fake: FakeRegistry | undefined;
    const front = createHttpsServer({ key: await readFile(join(dir, 'key.pem')), cert }, (req, res) => {
      seen.push(`${req.method} ${req.url?.split('?')[0]} over TLS, ${req.headers.authorization ? 'with' : 'without'} credentials`);
      const upstream = httpRequest(`${fake!.url}${req.url}`, { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    servers.push({ close: () => new Promise<void>((resolve) => (front.closeAllConnections(), front.close(() => resolve()))) });
    fake = await start({ auth: 'bearer', realm: `https://127.0.0.1:${(front.address() as AddressInfo).port}/token` });
    const manifest = Buffer.from('{"schemaVersion":2}');
    fake.addManifest('app', manifest, MediaType.OciManifest, 'v1');

    // Not trusted: the certificate is refused, and nothing is retried.
    const untrusted = client(fake);
    const refused = (await untrusted.registry.repository('app').getManifest('v1').catch((e: Error) => e)) as Error;
    expect(refused.message).toMatch(/self[- ]signed certificate/);
    expect(untrusted.sleeps).toEqual([]);
    expect(seen).toEqual([]);

    // Trusted (as NODE_EXTRA_CA_CERTS would make it on a self-hosted runner).
    const agent = httpsGlobalAgent as unknown as { options: { ca?: Buffer } };
    agent.options.ca = cert;
    try {
      const got = await client(fake).registry.repository('app').getManifest('v1');
      expect(got.bytes).toEqual(manifest);
    } finally {
      delete agent.options.ca;
      await rm(dir, { recursive: true, force: true });
    }
    expect(seen).toEqual(['GET /token over TLS, with credentials']);
  });

  it('asks for push-scoped tokens for reads of a repository opened for push', async () => {
    const fake = await start({ auth: 'bearer' });
    const repo = client(fake).registry.repository('app').forPush();
    expect(await repo.hasBlob(sha256(Buffer.from('x')))).toBe(false);
    expect(await repo.listTags()).toEqual([]);
    expect(fake.tokenRequests.map((t) => t.scopes)).toEqual([['repository:app:pull,push']]);
  });

  it('pulls anonymously when there are no credentials', async () => {
    const fake = await start({ auth: 'bearer', anonymousPull: true });
    const data = Buffer.from('public');
    const digest = fake.addBlob('public/app', data);
    const repo = client(fake, { credentials: anonymous }).registry.repository('public/app');
    expect(await readAll(await repo.getBlob(digest))).toEqual(data);
    expect(fake.tokenRequests).toMatchObject([{ scopes: ['repository:public/app:pull'], username: undefined, status: 200 }]);
  });

  it('renews a token when it expires', async () => {
    const fake = await start({ auth: 'bearer', tokenExpiresIn: 300 });
    let now = 1_000_000;
    const repo = client(fake, { now: () => now }).registry.repository('app');
    await repo.listTags();
    now += 200_000;
    await repo.listTags();
    expect(fake.tokenRequests).toHaveLength(1);
    now += 100_000;
    await repo.listTags();
    expect(fake.tokenRequests).toHaveLength(2);
  });

  it('uses an identity token as an OAuth2 refresh token (POST form)', async () => {
    const fake = await start({ auth: 'bearer', refreshTokens: ['refresh-123'] });
    const repo = client(fake, { credentials: async () => ({ identityToken: 'refresh-123' }) }).registry.repository('app');
    expect(await repo.listTags()).toEqual([]);
    expect(fake.tokenRequests).toEqual([
      { method: 'POST', grantType: 'refresh_token', service: 'fake-registry', scopes: ['repository:app:pull'], username: 'refresh', status: 200 },
    ]);
  });

  it('sends basic credentials where the registry asks for Basic', async () => {
    const fake = await start({ auth: 'basic' });
    const repo = client(fake).registry.repository('app');
    expect(await repo.listTags()).toEqual([]);
    expect(await repo.listTags()).toEqual([]);
    expect(fake.requests.map((r) => r.headers.authorization?.split(' ')[0])).toEqual([undefined, 'Basic', 'Basic']);
  });

  it.each([
    ['bearer', 1, 1],
    ['basic', 2, 0],
  ] as const)('wrong credentials (%s) fail once, naming registry and repository, without retries', async (auth, registryRequests, tokenRequests) => {
    const fake = await start({ auth });
    const wrong = client(fake, { credentials: targetCredentials(fake.host, USER, 'wrong-password') });
    const err = (await wrong.registry.repository('owner/app').putManifest('v1', Buffer.from('{}'), MediaType.OciManifest).catch((e) => e)) as RegistryError;
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.status).toBe(401);
    expect(err.host).toBe(fake.host);
    expect(err.repository).toBe('owner/app');
    expect(err.message).toContain(`push manifest v1 to ${fake.host}/owner/app: `);
    expect(err.message).not.toContain('wrong-password');
    expect(fake.requests).toHaveLength(registryRequests);
    expect(fake.tokenRequests).toHaveLength(tokenRequests);
    expect(wrong.sleeps).toEqual([]);
  });

  it('explains a token refusal and an authorization failure in the message', async () => {
    const fake = await start({ auth: 'bearer' });
    const bad = client(fake, { credentials: targetCredentials(fake.host, USER, 'nope') }).registry.repository('app');
    await expect(bad.putManifest('v1', Buffer.from('{}'), MediaType.OciManifest)).rejects.toThrow(
      `push manifest v1 to ${fake.host}/app: token request to ${fake.host}: 401 incorrect username or password`,
    );
    // Anonymous: the token is issued but grants nothing, so the registry says no.
    const anon = client(fake, { credentials: anonymous }).registry.repository('app');
    await expect(anon.putManifest('v1', Buffer.from('{}'), MediaType.OciManifest)).rejects.toThrow(
      `push manifest v1 to ${fake.host}/app: 401 UNAUTHORIZED: authentication required`,
    );
  });

  it('does not offer refused credentials again for the same scopes, from any client sharing the refusals', async () => {
    const fake = await start({ auth: 'bearer' });
    const refusals: TokenRefusals = new Map();
    const wrong = { credentials: targetCredentials(fake.host, USER, 'nope'), refusals };
    const first = client(fake, wrong).registry.repository('app', { access: 'push' });
    await expect(first.listTags()).rejects.toThrow('401 incorrect username or password');
    expect(fake.tokenRequests.map((t) => t.status)).toEqual([401]);
    // Another client (another retry policy, as the publish phase has) sharing the refusals.
    const second = client(fake, wrong).registry.repository('app', { access: 'push' });
    await expect(second.putManifest('v1', Buffer.from('{}'), MediaType.OciManifest)).rejects.toThrow(
      `push manifest v1 to ${fake.host}/app: token request to ${fake.host}: 401 incorrect username or password (refused earlier in this run; not asked again)`,
    );
    expect(fake.tokenRequests).toHaveLength(1);
    // Other scopes are still asked for.
    await expect(client(fake, wrong).registry.repository('other').listTags()).rejects.toThrow('401');
    expect(fake.tokenRequests).toHaveLength(2);
  });

  it('does not retry a 403', async () => {
    const fake = await start();
    fake.inject({ method: 'PUT', respond: { status: 403, body: '{"errors":[{"code":"DENIED","message":"permission_denied: write_package"}]}' } });
    const { registry, sleeps } = client(fake);
    const err = (await registry.repository('o/app').putManifest('v1', Buffer.from('{}'), MediaType.OciManifest).catch((e) => e)) as RegistryError;
    expect(err.message).toBe(`push manifest v1 to ${fake.host}/o/app: 403 DENIED: permission_denied: write_package`);
    expect(err.hasCode('DENIED')).toBe(true);
    expect(fake.requests).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });
});

describe('retries', () => {
  it.each([
    ['an errors[] body', '{"errors":[{"code":"DENIED","message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}]}'],
    ['a plain-text body', 'You have exceeded a secondary rate limit and have been temporarily blocked from content creation.'],
  ])('retries the 403 of GitHub\'s secondary rate limit (%s), honouring Retry-After', async (_name, body) => {
    const fake = await start();
    fake.inject({ method: 'PUT', respond: { status: 403, headers: { 'Retry-After': '2' }, body } });
    const { registry, sleeps } = client(fake);
    await registry.repository('o/app').putManifest('v1', Buffer.from('{}'), MediaType.OciManifest);
    expect(fake.requests.filter((r) => r.method === 'PUT')).toHaveLength(2);
    expect(sleeps).toEqual([2000]);
  });

  it('retries a 503 and then succeeds', async () => {
    const fake = await start();
    const digest = fake.addManifest('app', Buffer.from('{"schemaVersion":2}'), MediaType.OciManifest, 'v1');
    fake.inject({ method: 'GET', path: /manifests/, respond: { status: 503 } });
    const { registry, sleeps, logger } = client(fake);
    expect((await registry.repository('app').getManifest('v1')).digest).toBe(digest);
    expect(fake.seen('GET')).toHaveLength(2);
    expect(sleeps).toEqual([500]);
    expect(logger.lines.join('\n')).toMatch(/pull manifest v1 from .*\/app: 503 Service Unavailable; retrying in 0\.5s \(attempt 2 of 5\)/);
  });

  it('honours Retry-After on a 429', async () => {
    const fake = await start();
    fake.inject({ method: 'GET', respond: { status: 429, headers: { 'Retry-After': '7' }, body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}' } });
    const { registry, sleeps } = client(fake);
    expect(await registry.repository('app').listTags()).toEqual([]);
    expect(sleeps).toEqual([7000]);
  });

  it('gives up after the policy\'s attempts with a clear message', async () => {
    const fake = await start();
    fake.inject({ method: 'GET', times: 10, respond: { status: 502 } });
    const { registry, sleeps } = client(fake, { retry: new RetryPolicy({ maxAttempts: 3, sleep: async () => {}, random: () => 0 }) });
    const err = (await registry.repository('app').listTags().catch((e) => e)) as GaveUpError;
    expect(err).toBeInstanceOf(GaveUpError);
    expect(err.message).toBe(`list tags of ${fake.host}/app: 502 Bad Gateway (gave up after 3 attempts)`);
    expect(fake.requests).toHaveLength(3);
    expect(sleeps).toEqual([]);
  });

  it('says where a refused connection went, and does not retry it', async () => {
    const fake = await start();
    const host = fake.host;
    await fake.close();
    servers.splice(servers.indexOf(fake), 1);
    const { registry, sleeps } = client(fake);
    const err = (await registry.repository('app').getManifest('v1').catch((e) => e)) as Error;
    expect(err.message).toBe(`pull manifest v1 from ${host}/app: connect ECONNREFUSED ${host}`);
    expect(sleeps).toEqual([]);
  });

  it('retries a connection reset and names it when giving up', async () => {
    const fake = await start();
    fake.inject({ method: 'GET', times: 3, respond: 'reset' });
    const { registry, sleeps } = client(fake, { retry: new RetryPolicy({ maxAttempts: 3, sleep: async () => {}, random: () => 0 }) });
    const err = (await registry.repository('app').listTags().catch((e) => e)) as GaveUpError;
    expect(err.message).toMatch(new RegExp(`^list tags of ${fake.host}/app: (socket hang up|read ECONNRESET) \\(gave up after 3 attempts\\)$`));
    expect(fake.requests).toHaveLength(3);
    expect(sleeps).toEqual([]);
  });

  it('stops at the deadline', async () => {
    const fake = await start();
    fake.inject({ method: 'GET', times: 100, respond: { status: 503, headers: { 'Retry-After': '30' } } });
    let now = 0;
    const retry = new RetryPolicy({ deadline: 45_000, now: () => now, sleep: async (ms) => void (now += ms) });
    const { registry } = client(fake, { retry });
    await expect(registry.repository('app').listTags()).rejects.toThrow(/the time budget ran out after 2 attempts/);
    expect(fake.requests).toHaveLength(2);
  });
});

describe('tags', () => {
  it('follows Link pagination', async () => {
    const fake = await start({ tagPageSize: 2, auth: 'bearer' });
    const bytes = manifestBytes(fake.addBlob('app', Buffer.from('{}')));
    for (const t of ['a', 'b', 'c', 'd', 'e']) fake.addManifest('app', bytes, MediaType.OciManifest, t);
    expect(await client(fake).registry.repository('app').listTags()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(fake.seen('GET', /tags\/list/).filter((r) => r.headers.authorization).map((r) => r.path)).toEqual([
      '/v2/app/tags/list',
      '/v2/app/tags/list?n=2&last=b',
      '/v2/app/tags/list?n=2&last=d',
    ]);
  });

  it('refuses a next page on another origin rather than follow it or stop short', async () => {
    const fake = await start();
    fake.inject({
      method: 'GET',
      path: /tags\/list/,
      respond: { status: 200, headers: { 'Content-Type': 'application/json', Link: '<https://elsewhere.example/v2/app/tags/list?last=a>; rel="next"' }, body: '{"name":"app","tags":["a"]}' },
    });
    await expect(client(fake).registry.repository('app').listTags()).rejects.toThrow(
      /^list tags of 127\.0\.0\.1:\d+\/app: the next page is on another origin \(https:\/\/elsewhere\.example\); not following it$/,
    );
  });

  it('says which list an answer that is not JSON came from', async () => {
    const fake = await start();
    fake.inject({ method: 'GET', path: /tags\/list/, respond: { status: 200, headers: { 'Content-Type': 'text/html' }, body: '<html>login</html>' } });
    await expect(client(fake).registry.repository('app').listTags()).rejects.toThrow(/^list tags of 127\.0\.0\.1:\d+\/app: the answer is not JSON \("<html>login<\/html>"\)$/);
  });

  it('is empty for a repository that does not exist (404 NAME_UNKNOWN)', async () => {
    const fake = await start();
    expect(await client(fake).registry.repository('new/repo').listTags()).toEqual([]);
  });
});
