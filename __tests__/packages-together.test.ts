// Several packages in one run (`packages: ./cmd/one,./cmd/two`, naming `base`): their content
// goes up together, each package's log lines land in its own group, and no tag is written
// before every package's content is there (docs/publishing.md), nor at all when one package fails.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEngine } from '../src/engine.js';
import { MemoryLogger } from '../src/log.js';
import { LayoutSource, parseLayoutReference } from '../src/oci/layout.js';
import { Key, type Index } from '../src/oci/spec.js';
import { realDeps } from '../src/wiring.js';
import { exampleRequest, layoutOnlyDeps } from './support/engine.js';
import { FakeRegistry, type Recorded } from './support/fake-registry.js';

let tmp: string;
let ws: string;
let fake: FakeRegistry;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'packages-together-'));
  ws = join(tmp, 'ws');
  await writeFile(join(await mkdirp(ws), 'go.mod'), 'module example.com/two\n\ngo 1.21\n');
  for (const name of ['one', 'two']) {
    await writeFile(join(await mkdirp(join(ws, 'cmd', name)), 'main.go'), `package main\n\nfunc main() { println("${name}") }\n`);
  }
  fake = await FakeRegistry.start({ auth: 'none' });
});
afterAll(async () => {
  await fake?.close();
  await rm(tmp, { recursive: true, force: true });
});

const mkdirp = async (dir: string) => (await mkdir(dir, { recursive: true }), dir);

function pushBoth(prefix: string, logger: MemoryLogger) {
  const repository = `${fake.host}/${prefix}`;
  const request = exampleRequest(
    { packages: './cmd/one,./cmd/two', repository, push: 'true', 'base-image': 'scratch', platforms: 'linux/amd64', sbom: 'none' },
    { push: true, workspace: ws },
  );
  return runEngine(request, realDeps({ logger, env: { ...process.env, DOCKER_CONFIG: tmp }, targetRepository: repository }));
}

/** The lines of the group whose name starts with `name`, or undefined. */
function groupLines(lines: readonly string[], name: string): string[] | undefined {
  const start = lines.findIndex((l) => l.startsWith(`group: ${name}`));
  if (start < 0) return undefined;
  const end = lines.indexOf('endgroup', start);
  return lines.slice(start + 1, end);
}

const of = (requests: Recorded[], repo: string) => requests.map((r, i) => ({ ...r, i })).filter((r) => r.path.startsWith(`/v2/${repo}/`));

describe('several packages', () => {
  it('publish together, each logged in its own group, and are tagged only once all are up', async () => {
    const logger = new MemoryLogger();
    const before = fake.requests.length;
    const result = await pushBoth('acme', logger);
    expect(result.packages.map((p) => p.repository)).toEqual([`${fake.host}/acme/one`, `${fake.host}/acme/two`]);
    const requests = fake.requests.slice(before);
    const [one, two] = ['acme/one', 'acme/two'].map((repo) => of(requests, repo));
    // Publishing starts with the image's HEAD and ends with its PUT by digest; the two overlap.
    const span = (rs: typeof one, digest: string) => ({
      start: rs.find((r) => r.method === 'HEAD' && r.path.endsWith(`/manifests/${digest}`))!.i,
      end: rs.find((r) => r.method === 'PUT' && r.path.endsWith(`/manifests/${digest}`))!.i,
    });
    const [a, b] = [span(one, result.packages[0].digest), span(two, result.packages[1].digest)];
    expect(a.start).toBeLessThan(b.end);
    expect(b.start).toBeLessThan(a.end);
    // Tags only after both images are up.
    const tagPuts = requests.map((r, i) => ({ ...r, i })).filter((r) => r.method === 'PUT' && r.path.endsWith('/manifests/1.2.3'));
    expect(tagPuts).toHaveLength(2);
    for (const t of tagPuts) expect(t.i).toBeGreaterThan(Math.max(a.end, b.end));
    // Each package's lines are in its own group, whole.
    for (const [i, p] of result.packages.entries()) {
      const other = result.packages[1 - i];
      const lines = groupLines(logger.lines, `Publish ${p.repository}@`);
      expect(lines).toContain(`pushed ${p.repository}@${p.digest}`);
      expect(lines!.filter((l) => l.includes(other.repository))).toEqual([]);
      // The tags come later, through the same publisher, straight to the log.
      expect(logger.lines.indexOf(`tagged ${p.repository}:1.2.3 → ${p.digest}`)).toBeGreaterThan(logger.lines.lastIndexOf('endgroup'));
    }
  }, 240_000);

  it('tag nothing when one package fails, and fail with its error once the other is up', async () => {
    const logger = new MemoryLogger();
    const before = fake.requests.length;
    // The second package's image is refused (not retried); the first one's goes up.
    fake.inject({ method: 'PUT', path: /^\/v2\/fails\/two\/manifests\/sha256:/, respond: { status: 403, body: '{"errors":[{"code":"DENIED","message":"no"}]}' } });
    await expect(pushBoth('fails', logger)).rejects.toThrow(/push manifest sha256:[a-f0-9]{64} to .*fails\/two: 403/);
    const requests = fake.requests.slice(before);
    expect(requests.filter((r) => r.method === 'PUT' && r.path.endsWith('/manifests/1.2.3'))).toEqual([]);
    expect(of(requests, 'fails/one').some((r) => r.method === 'PUT' && /\/manifests\/sha256:/.test(r.path))).toBe(true);
    // Both groups were written all the same.
    expect(groupLines(logger.lines, `Publish ${fake.host}/fails/one@`)).toBeDefined();
    expect(groupLines(logger.lines, `Publish ${fake.host}/fails/two@`)).toBeDefined();
  }, 240_000);

  it('into an OCI layout: one index.json entry each, though they share their tags', async () => {
    const layout = join(tmp, 'layout');
    const request = exampleRequest(
      { packages: './cmd/one,./cmd/two', repository: 'registry.example/acme', 'base-image': 'scratch', platforms: 'linux/amd64', sbom: 'none', 'oci-layout-path': layout },
      { workspace: ws },
    );
    const result = await runEngine(request, layoutOnlyDeps());
    const [one, two] = result.packages;
    expect([one.tags, two.tags]).toEqual([['1.2.3'], ['1.2.3']]);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as Index;
    // Named by the tag alone, the second package's entry would replace the first's.
    expect(index.manifests.map((d) => [d.digest, d.annotations?.[Key.RefName]])).toEqual([
      [one.digest, 'registry.example/acme/one:1.2.3'],
      [two.digest, 'registry.example/acme/two:1.2.3'],
    ]);
    const source = new LayoutSource(layout);
    for (const p of [one, two]) expect((await source.getManifest(`${p.repository}:1.2.3`)).digest).toBe(p.digest);
    // And `oci:<dir>:<name>` finds them by those names, though the names hold colons.
    for (const p of [one, two]) {
      const { dir, reference } = parseLayoutReference(`${layout}:${p.repository}:1.2.3`);
      expect([dir, (await new LayoutSource(dir).getManifest(reference)).digest]).toEqual([layout, p.digest]);
    }
  }, 240_000);
});
