// Protocol rules of the distribution API and of real registries that the client must follow,
// each against the in-process fake (see support/fake-registry.ts).
import { afterEach, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { MemoryLogger } from '../src/log.js';
import { fromBuffer } from '../src/oci/layer.js';
import { parseWwwAuthenticate } from '../src/registry/auth.js';
import { Registry, type RegistryOptions } from '../src/registry/client.js';
import { anonymous } from '../src/registry/credentials.js';
import { RetryPolicy } from '../src/registry/retry.js';
import { FakeRegistry, sha256, type FakeRegistryOptions } from './support/fake-registry.js';

const servers: FakeRegistry[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(opts: FakeRegistryOptions = {}) {
  const fake = await FakeRegistry.start(opts);
  servers.push(fake);
  return fake;
}

function client(fake: FakeRegistry, opts: Partial<RegistryOptions> = {}) {
  const sleeps: number[] = [];
  const registry = new Registry(fake.host, {
    credentials: anonymous,
    logger: new MemoryLogger(),
    retry: new RetryPolicy({ sleep: async (ms) => void sleeps.push(ms), random: () => 0.5 }),
    smallBlob: 0,
    ...opts,
  });
  return { registry, sleeps };
}

const sessionUnknown = { status: 404, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ errors: [{ code: 'BLOB_UPLOAD_UNKNOWN', message: 'blob upload unknown to registry' }] }) };

describe('an upload session the registry no longer knows (404 BLOB_UPLOAD_UNKNOWN)', () => {
  // distribution's API spec: "If the upload uuid is unknown to the registry, a 404 Not Found
  // response will be returned and the client must restart the upload process."
  it.each([
    ['the streamed PATCH', 'PATCH', 'streamed'],
    ['the commit PUT', 'PUT', 'streamed'],
    ['a ranged PATCH', 'PATCH', 'ranged'],
    ['the monolithic PUT', 'PUT', 'monolithic'],
  ] as const)('restarts the upload in a new session when %s answers 404', async (_, method, protocol) => {
    const fake = await start();
    const { registry } = client(fake, {
      chunkSize: 1000,
      smallBlob: protocol === 'monolithic' ? 10_000 : 0,
      uploadFallbacks: new Map(protocol === 'ranged' ? [[fake.host, 'ranged']] : []),
    });
    const data = randomBytes(2500);
    const digest = sha256(data);
    fake.inject({ method, path: /blobs\/uploads\/./, respond: sessionUnknown });
    await registry.repository('app').uploadBlob(digest, data.length, async () => fromBuffer(data));
    expect(fake.blobs.get(digest)).toEqual(data);
    expect(fake.seen('POST', /blobs\/uploads/)).toHaveLength(2);
    // Ranged: the refused first range, then all three again; streamed: one whole PATCH per
    // session; monolithic: none.
    const patches = fake.seen('PATCH');
    expect(patches.map((r) => r.headers['content-range'] !== undefined)).toEqual(
      protocol === 'ranged' ? [true, true, true, true] : protocol === 'streamed' ? [false, false] : [],
    );
  });

  it('restarts a ranged upload in a new session when a later range answers 416 (out of order)', async () => {
    const fake = await start();
    const { registry } = client(fake, { chunkSize: 1000, uploadFallbacks: new Map([[fake.host, 'ranged']]) });
    const data = randomBytes(2500);
    const digest = sha256(data);
    let patches = 0;
    fake.inject({ method: 'PATCH', times: 10, respond: () => (++patches === 2 ? { status: 416, body: '' } : 'pass') });
    await registry.repository('app').uploadBlob(digest, data.length, async () => fromBuffer(data));
    expect(fake.blobs.get(digest)).toEqual(data);
    expect(fake.seen('POST', /blobs\/uploads/)).toHaveLength(2);
  });

  it('still fails on a 404 when the session was never opened (the repository is unknown)', async () => {
    const fake = await start();
    const { registry } = client(fake);
    fake.inject({ method: 'POST', respond: { status: 404, body: JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }] }) } });
    const data = randomBytes(2500);
    await expect(registry.repository('app').uploadBlob(sha256(data), data.length, async () => fromBuffer(data))).rejects.toThrow(/404 NAME_UNKNOWN/);
    expect(fake.seen('POST')).toHaveLength(1);
  });
});

describe('WWW-Authenticate (RFC 9110 §11.6.1)', () => {
  // A challenge is `auth-scheme [ 1*SP ( token68 / #auth-param ) ]` (§11.3): a token68 such as
  // Negotiate's base64 ends in `=` padding, and is not the start of a parameter.
  it.each([
    ['Negotiate YIIBnQYGKwYBBQUCoII==, Bearer realm="https://auth.example/token",service="registry.example"'],
    ['Negotiate abc=, Bearer realm="https://auth.example/token",service="registry.example"'],
    ['Bearer realm="https://auth.example/token",service="registry.example", Negotiate YIIBnQYGKwYBBQUCoII=='],
  ])('finds the Bearer challenge next to a token68 one: %s', (header) => {
    const challenges = parseWwwAuthenticate(header);
    expect(challenges.map((c) => c.scheme).sort()).toEqual(['bearer', 'negotiate']);
    expect(challenges.find((c) => c.scheme === 'bearer')?.params).toEqual({ realm: 'https://auth.example/token', service: 'registry.example' });
    expect(challenges.find((c) => c.scheme === 'negotiate')?.params).toEqual({});
  });

  it('still reads parameters, quoted commas and escapes included', () => {
    expect(parseWwwAuthenticate('Basic realm="r", Bearer realm = "https://t/to\\"ken" , service=svc,scope="repository:a:pull,push repository:b:pull",error="insufficient_scope"')).toEqual([
      { scheme: 'basic', params: { realm: 'r' } },
      { scheme: 'bearer', params: { realm: 'https://t/to"ken', service: 'svc', scope: 'repository:a:pull,push repository:b:pull', error: 'insufficient_scope' } },
    ]);
  });
});

describe('OCI-Chunk-Min-Length', () => {
  // Distribution spec, "Pushing a blob in chunks": "If the registry provides an
  // OCI-Chunk-Min-Length header in the POST response, the size of each chunk, except for the
  // final chunk, SHOULD be greater or equal to that value."
  it('sends ranged chunks of at least the size the POST announced', async () => {
    const fake = await start({ chunkMinLength: 2500 });
    const { registry } = client(fake, { chunkSize: 1000, uploadFallbacks: new Map([[fake.host, 'ranged']]) });
    const data = randomBytes(6000);
    await registry.repository('app').uploadBlob(sha256(data), data.length, async () => fromBuffer(data));
    expect(fake.seen('PATCH').map((r) => r.headers['content-range'])).toEqual(['0-2499', '2500-4999', '5000-5999']);
    expect(fake.blobs.get(sha256(data))).toEqual(data);
  });

  it('keeps to its own chunk size when that is larger, or the header is unreadable', async () => {
    for (const chunkMinLength of [500, Number.NaN]) {
      const fake = await start({ chunkMinLength });
      const { registry } = client(fake, { chunkSize: 2000, uploadFallbacks: new Map([[fake.host, 'ranged']]) });
      const data = randomBytes(5000);
      await registry.repository('app').uploadBlob(sha256(data), data.length, async () => fromBuffer(data));
      expect(fake.seen('PATCH').map((r) => r.headers['content-range'])).toEqual(['0-1999', '2000-3999', '4000-4999']);
    }
  });
});
