// The client and publisher against a real distribution registry with ghcr-like token auth:
// pull a base anonymously with resolveBase, push a multi-platform artifact on top of it
// (base layers cross-repository mounted), read it back with validateStored.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MemoryLogger } from '../src/log.js';
import { resolveBase } from '../src/oci/base.js';
import { makeIndex, mutate } from '../src/oci/image.js';
import { writeLayer } from '../src/oci/layer.js';
import { mediaTypesOf } from '../src/oci/spec.js';
import { validateStored } from '../src/oci/validate.js';
import { RegistryPublisher } from '../src/publish/registry.js';
import { Registry } from '../src/registry/client.js';
import { anonymous, targetCredentials, type CredentialProvider } from '../src/registry/credentials.js';
import { RegistryError } from '../src/registry/errors.js';
import { RetryPolicy } from '../src/registry/retry.js';
import { BASE_PLATFORMS, pushBaseImage, type BaseVariant } from './support/base-images.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

let reg: TestRegistry;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ko-annotate-real-'));
  reg = await startRegistry({ auth: 'token' });
});
afterAll(async () => {
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

const registry = (credentials: CredentialProvider) =>
  new Registry(reg.host, { credentials, logger: new MemoryLogger(), retry: new RetryPolicy({ maxAttempts: 2, sleep: async () => {} }) });

describe('against a real distribution registry with token auth', () => {
  it.each<[BaseVariant]>([['oci-index'], ['docker-list']])('pushes a multi-platform image on a %s base and reads it back', async (variant) => {
    const pushed = await pushBaseImage(reg, variant);

    const base = await resolveBase(registry(anonymous).repository(pushed.repository), pushed.reference, pushed.tag, BASE_PLATFORMS);
    expect(base.digest).toBe(pushed.digest);
    expect(base.images.map((i) => i.platform)).toEqual(BASE_PLATFORMS);

    const images = await Promise.all(
      base.images.map(async (img, i) => {
        const bytes = randomBytes(20_000);
        const file = join(dir, `${variant}-${i}.tar.gz`);
        const layer = await writeLayer([{ type: 'file', path: 'ko-app/app', mode: 0o555, size: bytes.length, open: () => Readable.from([bytes]) }], file, mediaTypesOf(base.family).layer);
        // One history entry per added layer, as a build writes it (validateStored checks).
        return mutate(img, { layers: [layer], config: (c) => ({ ...c, history: [...(c.history ?? []), { created_by: 'registry-real.test' }] }) });
      }),
    );
    const index = makeIndex(base.family, images);
    const target = `ko/app-${variant}`;
    const writer = registry(targetCredentials(reg.host, reg.username, reg.password));
    const publisher = new RegistryPublisher(writer.repository(target), { logger: new MemoryLogger() });
    const tokensBefore = reg.tokenRequests.length;
    await publisher.putContent(index);
    await publisher.putTags(index, ['v1', 'latest']);

    const baseLayers = new Set(base.images.flatMap((i) => i.layers.map((l) => l.digest)));
    expect(publisher.counters).toMatchObject({ blobsMounted: baseLayers.size, blobsUploaded: images.length * 2, manifestsPushed: images.length + 1 });
    const scopes = reg.tokenRequests.slice(tokensBefore).map((t) => [...t.scopes].sort().join(' '));
    expect(scopes).toContain(`repository:${target}:pull,push repository:${pushed.repository}:pull`);

    const reader = registry(targetCredentials(reg.host, reg.username, reg.password)).repository(target);
    const report = await validateStored(reader, 'v1');
    expect(report).toEqual({ digest: index.digest, manifests: images.length, layers: images.reduce((n, i) => n + i.layers.length, 0) });
    expect((await reader.listTags()).sort()).toEqual(['latest', 'v1']);
    expect((await reader.getManifest('latest')).mediaType).toBe(index.mediaType);

    const again = new RegistryPublisher(writer.repository(target), { logger: new MemoryLogger() });
    await again.putContent(index);
    expect(again.counters).toMatchObject({ blobsUploaded: 0, blobsMounted: 0, manifestsPushed: 0 });
  });

  it('refuses a wrong password once, naming the repository', async () => {
    const before = reg.tokenRequests.length;
    const repo = registry(targetCredentials(reg.host, reg.username, 'wrong')).repository('ko/denied');
    const err = (await repo.listTags().catch((e) => e)) as RegistryError;
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.message).toMatch(new RegExp(`^list tags of ${reg.host}/ko/denied: token request to ${reg.host.split(':')[0]}:\\d+: 401`));
    expect(err.message).not.toContain('wrong');
    expect(reg.tokenRequests.length - before).toBe(1);
  });

  it('lists no tags for a repository nobody pushed to', async () => {
    expect(await registry(targetCredentials(reg.host, reg.username, reg.password)).repository('ko/never').listTags()).toEqual([]);
  });
});
