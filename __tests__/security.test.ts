import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryLogger } from '../src/log.js';
import { Registry } from '../src/registry/client.js';
import { dockerConfigCredentials, type HelperRunner } from '../src/registry/credentials.js';
import { RetryPolicy } from '../src/registry/retry.js';
import { FakeRegistry } from './support/fake-registry.js';

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
async function configDir(config: unknown): Promise<string> {
  const dir = join(root, `c${n++}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}

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
