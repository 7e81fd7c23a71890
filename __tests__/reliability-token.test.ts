// Issue 6, "must show" 4 (docs/publishing.md#credentials): the token never shows up in logs, in errors (a 401
// included), in any request a redirect target receives, or in the Go build's environment.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { runEngine } from '../src/engine.js';
import { MemoryLogger } from '../src/log.js';
import { realDeps } from '../src/wiring.js';
import { pushBaseImage } from './support/base-images.js';
import { exampleRequest } from './support/engine.js';
import { FaultProxy } from './support/fault-proxy.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

let registry: TestRegistry;
let proxy: FaultProxy;
beforeAll(async () => {
  process.env.PATH = `/usr/lib/go-1.23/bin:${process.env.PATH}`;
  registry = await startRegistry({ auth: 'token' });
  await pushBaseImage(registry, 'oci-index');
  // Every blob GET through the proxy is sent by a 307 to the recording "storage" server.
  proxy = await FaultProxy.start({ upstream: registry.host, rate: 0, redirectBlobGets: true });
}, 120_000);
afterAll(async () => {
  await proxy?.close();
  await registry?.stop();
});

/** Every message in an error's cause chain. */
function messages(err: unknown): string[] {
  const out: string[] = [];
  for (let e = err, n = 0; e && n < 10; e = (e as { cause?: unknown }).cause, n++) out.push(String((e as { message?: unknown }).message ?? e));
  return out;
}

function run(token: string, tag: string) {
  const logger = new MemoryLogger();
  const repository = `${proxy.host}/acme/secret`;
  // The runner passes the token as INPUT_TOKEN too; other variables may happen to hold it.
  const env = { ...process.env, INPUT_TOKEN: token, GITHUB_TOKEN: token, SOME_COPY: `prefix-${token}-suffix` };
  const deps = realDeps({ logger, env, username: registry.username, token, targetRepository: repository, timeoutMs: 60_000 });
  const req = exampleRequest(
    { repository, 'base-image': `${proxy.host}/public/base-oci-index:latest`, platforms: 'linux/amd64', sbom: 'none', push: 'true', token },
    { push: true, env, tagsFor: () => [tag] },
  );
  return { logger, deps, env, result: runEngine(req, deps) };
}

describe('token hygiene (docs/publishing.md#credentials)', () => {
  it('a successful push: the token and the bearer tokens it buys appear in no log line, no redirect request and no Go environment', async () => {
    const token = registry.password;
    const { logger, deps, result: running } = run(token, 'clean');
    const result = await running;
    expect(result.packages[0].tags).toEqual(['clean']);

    // Secrets: the token itself, its Basic form, and every Authorization value the client sent.
    const basic = Buffer.from(`${registry.username}:${token}`).toString('base64');
    const sent = [...proxy.authorizations];
    expect(sent.some((a) => a.startsWith('Bearer '))).toBe(true);
    const secrets = [token, basic, ...sent.map((a) => a.replace(/^\S+ /, ''))];

    const log = logger.lines.join('\n');
    expect(logger.lines.length).toBeGreaterThan(5);
    for (const s of secrets) expect(log).not.toContain(s);

    // The base's blobs were read through the redirect, with no credentials sent there.
    expect(proxy.storageRecords.length).toBeGreaterThan(0);
    for (const r of proxy.storageRecords) {
      expect(r.headers.authorization).toBeUndefined();
      const all = JSON.stringify(r);
      for (const s of secrets) expect(all).not.toContain(s);
    }
    // …and the registry itself did get authorized requests, so the check above can fail.
    expect(proxy.records.some((r) => r.authorized && r.method === 'GET')).toBe(true);

    // The go build command (as data) carries neither the token nor a variable holding it.
    const cmd = deps.go.buildCommand({ target: './cmd/hello', output: '/tmp/x', cwd: '/tmp', flags: [], ldflags: [], env: {}, platformEnv: { GOOS: 'linux', GOARCH: 'amd64' } });
    expect(Object.keys(cmd.env)).not.toContain('INPUT_TOKEN');
    expect(Object.keys(cmd.env)).not.toContain('GITHUB_TOKEN');
    expect(Object.keys(cmd.env)).not.toContain('SOME_COPY');
    expect(Object.keys(cmd.env)).toContain('PATH');
    for (const v of Object.values(cmd.env)) expect(v).not.toContain(token);
    expect(cmd.args.join(' ')).not.toContain(token);
  }, 180_000);

  it('a refused token: the 401 error and the log say what failed without the token', async () => {
    const wrong = `wrong-${randomBytes(16).toString('hex')}`;
    const { logger, result } = run(wrong, 'refused');
    const err = await result.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    const chain = messages(err);
    expect(chain[0]).toMatch(/401/);
    expect(chain[0]).toContain(`${proxy.host}/public/base-oci-index`);
    const basic = Buffer.from(`${registry.username}:${wrong}`).toString('base64');
    for (const m of [...chain, ...logger.lines, JSON.stringify(err, Object.getOwnPropertyNames(err))]) {
      expect(m).not.toContain(wrong);
      expect(m).not.toContain(basic);
    }
    // The token service saw the wrong credentials and refused them: the token was really used.
    expect(registry.tokenRequests.some((r) => !r.authenticated && r.status === 401)).toBe(true);
  }, 180_000);
});
