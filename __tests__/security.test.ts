import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { parseInputs } from '../src/inputs.js';
import { runJob } from '../src/job.js';
import { MemoryLogger } from '../src/log.js';
import { resolveBase } from '../src/oci/base.js';
import { MediaType } from '../src/oci/spec.js';
import { Registry } from '../src/registry/client.js';
import { dockerConfigCredentials, targetCredentials, type HelperRunner } from '../src/registry/credentials.js';
import { RetryPolicy } from '../src/registry/retry.js';
import { realDeps } from '../src/wiring.js';
import { FakeRegistry, sha256 } from './support/fake-registry.js';
import { dockerConfigDir } from './support/docker-config.js';

const SECRET = 'ghp_s3cretValueThatMustNotLeak';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ko-annotate-security-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
const servers: FakeRegistry[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

let n = 0;
const configDir = (config: unknown) => dockerConfigDir(root, config);

/** What a run would show of a failure: its message, and the messages of its causes. */
function shown(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: unknown; cause?: unknown } | undefined; e; e = e.cause as typeof e) parts.push(String(e.message));
  return parts.join('\n');
}

describe('credential helper and Docker config output never reach a message', () => {
  it.each([
    ['a bare secret', SECRET],
    ['JSON followed by more output', `{"Username":"u","Secret":"${SECRET}"}\nwarning: keychain is slow`],
  ])('a helper that prints %s', async (_name, stdout) => {
    const fake = await FakeRegistry.start({ auth: 'bearer', users: { u: SECRET } });
    servers.push(fake);
    const dir = await configDir({ credHelpers: { [fake.host]: 'leaky' } });
    const runHelper: HelperRunner = async () => ({ code: 0, stdout, stderr: '' });
    const logger = new MemoryLogger();
    const registry = new Registry(fake.host, { credentials: dockerConfigCredentials({ configDir: dir, env: {}, runHelper }), logger, retry: new RetryPolicy({ maxAttempts: 1 }) });
    const err = await registry.repository('app').getManifest('latest').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/credential helper docker-credential-leaky printed something other than JSON/);
    // Not even the first characters, which the JSON parser's own message quotes.
    expect(shown(err)).not.toContain(SECRET.slice(0, 6));
    expect(logger.lines.join('\n')).not.toContain(SECRET.slice(0, 6));
  });

  it.each([
    ['an unquoted password', `{"auths":{"ghcr.io":{"username":"u","password":${SECRET}}}}`],
    ['a short bare password', `hunter2`],
  ])('a Docker config with %s', async (_name, text) => {
    const dir = await configDir(text);
    const err = await dockerConfigCredentials({ configDir: dir, env: {}, runHelper: async () => ({ code: 1, stdout: '', stderr: '' }) })('ghcr.io').catch((e: unknown) => e);
    expect((err as Error).message).toBe(`Docker config ${join(dir, 'config.json')} is not valid JSON`);
    expect(shown(err)).not.toContain(SECRET.slice(0, 6));
    expect(shown(err)).not.toContain('hunter');
  });
});

/**
 * In the action, the process's environment holds the token as INPUT_TOKEN (the runner passes
 * inputs so), and a child spawned without an environment of its own inherits it. A test's
 * jest sandbox cannot put a variable into the worker's real environment, so these runs give
 * the job its environment explicitly, as main.ts does with process.env, and check that each
 * child gets that environment (a marker) less the token, as `go build` does (childEnv).
 */
describe('child processes other than go never get the token in their environment', () => {
  const runEnv = (bin: string, extra: Record<string, string> = {}) => ({
    PATH: `${bin}:/usr/bin:/bin`,
    HOME: root,
    KO_SECURITY_MARKER: 'the run environment',
    INPUT_TOKEN: SECRET,
    GITHUB_TOKEN: SECRET,
    MY_COPY: `prefix-${SECRET}`,
    ...extra,
  });

  /** A program `name` in a fresh directory that writes its environment to `<dir>/<name>.env` (and reads stdin and prints `stdout`, when given). */
  async function envDumper(name: string, stdout?: string) {
    const bin = join(root, `bin${n++}`);
    await mkdir(bin, { recursive: true });
    const dump = join(bin, `${name}.env`);
    // A helper reads the server from stdin; git's stdin is never closed, so it must not read.
    const answer = stdout === undefined ? '' : `cat > /dev/null\nprintf '%s' '${stdout}'\n`;
    await writeFile(join(bin, name), `#!/bin/sh\n/usr/bin/env > '${dump}'\n${answer}`);
    await chmod(join(bin, name), 0o755);
    return { bin, dump };
  }

  function expectScrubbed(dumped: string) {
    expect(dumped).toContain('KO_SECURITY_MARKER=the run environment');
    expect(dumped).not.toContain(SECRET);
    expect(dumped).not.toMatch(/^INPUT_/m);
  }

  it('a Docker credential helper', async () => {
    const fake = await FakeRegistry.start({ auth: 'bearer', users: { u: 'p' } });
    servers.push(fake);
    const { bin, dump } = await envDumper('docker-credential-dump', '{"Username":"u","Secret":"p"}');
    const dir = await configDir({ credHelpers: { [fake.host]: 'dump' } });
    const deps = realDeps({ logger: new MemoryLogger(), env: runEnv(bin, { DOCKER_CONFIG: dir }), username: 'octocat', token: SECRET, targetRepository: 'ghcr.io/octo/app' });
    const { source, reference } = await deps.openBase(`${fake.host}/base:latest`);
    // The base is not there; what matters is the credential lookup its 401 caused.
    await expect(source.getManifest(reference)).rejects.toThrow(/404|MANIFEST_UNKNOWN|unknown/i);
    expectScrubbed(await readFile(dump, 'utf8'));
  });

  it('git', async () => {
    const { bin, dump } = await envDumper('git');
    const workspace = join(root, `ws${n++}`);
    await mkdir(workspace, { recursive: true });
    const inputs = parseInputs({ repository: 'registry.example/acme', push: 'false', sbom: 'none', 'base-image': 'scratch', platforms: 'linux/amd64', token: SECRET });
    // No Go on this PATH: the run fails after the git queries, which is all this needs.
    await runJob(inputs, runEnv(bin, { KO_ANNOTATE_GO: join(bin, 'no-go') }), {}, workspace, new MemoryLogger()).catch(() => undefined);
    expectScrubbed(await readFile(dump, 'utf8'));
  });
});

/** docs/publishing.md#credentials: the token goes to the registry's own origin (and its HTTPS token realm), nowhere else. */
describe('the token is not sent to another host', () => {
  it('an upload Location on another origin gets the blob but no Authorization', async () => {
    const fake = await FakeRegistry.start({ auth: 'bearer', users: { u: SECRET } });
    servers.push(fake);
    const seen: { method: string; headers: IncomingHttpHeaders }[] = [];
    const other = createServer((req, res) => {
      seen.push({ method: req.method ?? '', headers: req.headers });
      req.resume().on('end', () => res.writeHead(201).end());
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    try {
      const elsewhere = `http://127.0.0.1:${(other.address() as AddressInfo).port}/upload/1`;
      fake.inject({ method: 'POST', path: /blobs\/uploads/, respond: { status: 202, headers: { Location: elsewhere } } });
      const registry = new Registry(fake.host, { credentials: targetCredentials(fake.host, 'u', SECRET), logger: new MemoryLogger() });
      const data = Buffer.from('config');
      await registry.repository('app', { access: 'push' }).uploadBlob(sha256(data), data.length, async () => Readable.from([data]));
      expect(seen.map((r) => r.method)).toEqual(['PUT']);
      expect(seen[0].headers.authorization).toBeUndefined();
      expect(JSON.stringify(seen[0].headers)).not.toContain(Buffer.from(`u:${SECRET}`).toString('base64'));
    } finally {
      other.closeAllConnections();
      await new Promise<void>((resolve) => other.close(() => resolve()));
    }
  });

  it('a token realm over plain HTTP off loopback is refused before any request', async () => {
    const fake = await FakeRegistry.start({ auth: 'bearer', users: { u: SECRET }, realm: 'http://auth.example.invalid/token' });
    servers.push(fake);
    const registry = new Registry(fake.host, { credentials: targetCredentials(fake.host, 'u', SECRET), logger: new MemoryLogger(), retry: new RetryPolicy({ maxAttempts: 1 }) });
    await expect(registry.repository('app').getManifest('latest')).rejects.toThrow('refusing to send credentials to a non-HTTPS token realm http://auth.example.invalid');
  });
});

/** A base registry decides what it sends; a config read whole must not hold the run's memory hostage. */
describe('a base image config larger than its descriptor', () => {
  it('is refused once it passes the descriptor size, without reading the rest', async () => {
    const fake = await FakeRegistry.start();
    servers.push(fake);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    const configDigest = fake.addBlob('base', config);
    // The registry answers the config's digest with 64 MiB.
    fake.blobs.set(configDigest, Buffer.alloc(64 * 1024 * 1024, 0x20));
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: configDigest, size: config.length }, layers: [] }));
    fake.addManifest('base', manifest, MediaType.OciManifest, 'latest');
    const source = new Registry(fake.host, { credentials: async () => undefined, logger: new MemoryLogger() }).repository('base');
    await expect(resolveBase(source, `${fake.host}/base:latest`, 'latest', [{ os: 'linux', architecture: 'amd64' }])).rejects.toThrow(
      `${fake.host}/base: config blob ${configDigest} is larger than the ${config.length} bytes its descriptor says`,
    );
  });
});
