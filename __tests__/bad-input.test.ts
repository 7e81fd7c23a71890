// docs/reliability.md: bad input fails before any build or push, naming the input (or file, or
// variable) and the bad value. Each case of fixtures/bad-inputs.ts runs the action's own
// job (parseInputs → runJob: prepareRun → loadKoSettings → realDeps → runEngine) against a real
// registry; the Go toolchain counts builds, and the registry's catalog, tags and digests are
// compared before and after.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childEnv, GoToolchain, type BuildOptions } from '../src/gobuild/go.js';
import type { EngineDeps } from '../src/engine.js';
import { runJob } from '../src/job.js';
import { execRun } from '../src/exec.js';
import { INPUT_NAMES, parseInputs, type InputName, type RawInputs } from '../src/inputs.js';
import { MemoryLogger } from '../src/log.js';
import { Key } from '../src/oci/spec.js';
import { prepareRun } from '../src/prepare.js';
import { realRun } from '../src/config/git.js';
import { Registry } from '../src/registry/client.js';
import { targetCredentials } from '../src/registry/credentials.js';
import { BAD_INPUTS, type BadInputCase } from './fixtures/bad-inputs.js';
import { pushBaseImage } from './support/base-images.js';
import { exampleDir } from './support/engine.js';
import { loadEvent } from './support/events.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

const EVENT = loadEvent('push-branch-main');
let registry: TestRegistry;
let baseRef: string;
let tmp: string;
const tally = { cases: BAD_INPUTS.length, passed: 0 };

beforeAll(async () => {
  process.env.PATH = `/usr/lib/go-1.23/bin:${process.env.PATH}`;
  registry = await startRegistry({ auth: 'basic' });
  baseRef = (await pushBaseImage(registry, 'oci-index')).reference;
  tmp = await mkdtemp(join(tmpdir(), 'ko-annotate-bad-input-'));
}, 120_000);
afterAll(async () => {
  const known = BAD_INPUTS.filter((c) => c.knownBug).length;
  console.log(`bad input: ${tally.cases} cases, ${tally.passed} passed (failed before any build or push, naming the input and value); ${known} known bugs`);
  await registry?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

class CountingGo extends GoToolchain {
  builds = 0;
  override async build(opts: BuildOptions): Promise<void> {
    this.builds++;
    return super.build(opts);
  }
}

/** A valid run: each case spoils one thing. */
const valid = (): RawInputs => ({
  packages: './cmd/hello',
  repository: `${registry.host}/acme/hello`,
  'base-image': baseRef,
  platforms: 'linux/amd64',
  push: 'true',
  sbom: 'none',
  username: registry.username,
  token: registry.password,
  timeout: '60s',
});

/** The registry's whole state as we can see it: every repository, tag and digest. */
async function snapshot(): Promise<Record<string, Record<string, string>>> {
  const auth = `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString('base64')}`;
  const res = await fetch(`http://${registry.host}/v2/_catalog?n=1000`, { headers: { Authorization: auth } });
  expect(res.status).toBe(200);
  const { repositories } = (await res.json()) as { repositories: string[] };
  const client = new Registry(registry.host, { credentials: targetCredentials(registry.host, registry.username, registry.password), logger: new MemoryLogger() });
  const out: Record<string, Record<string, string>> = {};
  for (const name of repositories.sort()) {
    const repo = client.repository(name);
    out[name] = {};
    for (const tag of (await repo.listTags()).sort()) out[name][tag] = (await repo.headManifest(tag))!.digest;
  }
  return out;
}

async function workspaceFor(c: BadInputCase): Promise<string> {
  if (!c.koYaml && !c.twoPackages) return exampleDir;
  const dir = await mkdtemp(join(tmp, 'ws-'));
  await cp(exampleDir, dir, { recursive: true });
  if (c.koYaml !== undefined) await writeFile(join(dir, '.ko.yaml'), c.koYaml);
  if (c.twoPackages) {
    await mkdir(join(dir, 'cmd', 'other'), { recursive: true });
    await writeFile(join(dir, 'cmd', 'other', 'main.go'), 'package main\n\nfunc main() {}\n');
  }
  return dir;
}

/** The action's job with recording dependencies; returns the error, builds and publish targets. */
async function attempt(raw: RawInputs, c: Partial<BadInputCase> = {}) {
  const workspace = await workspaceFor(c as BadInputCase);
  const env: Record<string, string | undefined> = { ...process.env, ...EVENT.env, GITHUB_WORKSPACE: workspace, ...c.env };
  const logger = new MemoryLogger();
  let go: CountingGo | undefined;
  let targets = 0;
  try {
    const inputs = parseInputs(raw);
    const result = await runJob(inputs, env, EVENT.payload, workspace, logger, {
      wrap: (real: EngineDeps): EngineDeps => {
        go = new CountingGo(execRun, childEnv(env, [inputs.token ?? '']));
        return {
          ...real,
          go,
          registryTarget(repository: string) {
            targets++;
            return real.registryTarget(repository);
          },
        };
      },
    });
    return { result, builds: go?.builds ?? 0, targets, logger };
  } catch (err) {
    return { error: err as Error, builds: go?.builds ?? 0, targets, logger };
  } finally {
    if (workspace !== exampleDir) await rm(workspace, { recursive: true, force: true });
  }
}

describe('the harness can see builds and pushes', () => {
  it('a valid run builds, pushes and changes the registry', async () => {
    const before = await snapshot();
    const r = await attempt({ ...valid(), tags: 'control' });
    expect(r.error).toBeUndefined();
    expect(r.builds).toBe(1);
    expect(r.targets).toBe(1);
    const after = await snapshot();
    expect(after).not.toEqual(before);
    expect(Object.keys(after['acme/hello'])).toEqual(['control']);
  }, 120_000);
});

describe('bad input fails before any build or push (docs/reliability.md)', () => {
  it('has at least 40 cases over every input of action.yml', () => {
    expect(BAD_INPUTS.length).toBeGreaterThanOrEqual(40);
    const covered = new Set(BAD_INPUTS.flatMap((c) => Object.keys(c.raw ?? {})));
    // Every input action.yml declares (INPUT_NAMES is checked against action.yml in action-metadata.test.ts).
    for (const name of INPUT_NAMES) expect(covered).toContain(name);
  });

  const check = async (c: BadInputCase) => {
    const before = await snapshot();
    const raw = { ...valid(), ...c.raw };
    const r = await attempt(raw, c);
    expect(r.error).toBeInstanceOf(Error);
    const message = r.error!.message;
    expect(message).toContain(c.where);
    if (c.message) expect(message).toMatch(c.message);
    if (c.secret) expect(message).not.toContain(c.secret);
    // The bad value is quoted (a short one whole, as one of its list items).
    const m = /^input "([^"]+)"$/.exec(c.where);
    const value = m ? raw[m[1] as InputName] : undefined;
    if (value && !c.secret && value.length <= 100) {
      const items = value.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
        // …or the offending word of it (`-toolexec=/bin/sh` of `GOFLAGS=-toolexec=/bin/sh`).
      const words = items.flatMap((i) => [i, ...i.split(/[\s=]+/).filter((w) => w.length >= 3)]);
      expect(words.some((w) => message.includes(w) || message.includes(JSON.stringify(w).slice(1, -1)))).toBe(true);
    }
    // Nothing was built, nothing was published, and the registry is as it was.
    expect(r.builds).toBe(0);
    expect(r.targets).toBe(0);
    expect(await snapshot()).toEqual(before);
    tally.passed++;
  };
  const working = BAD_INPUTS.filter((c) => !c.knownBug);
  const known = BAD_INPUTS.filter((c) => c.knownBug);
  it.each(working.map((c) => [c.name, c] as const))('%s', (_name, c) => check(c), 60_000);
  // Reported bugs: these pass once the message names the variable; then drop `knownBug`.
  if (known.length) it.failing.each(known.map((c) => [`${c.name} (known bug: ${c.knownBug})`, c] as const))('%s', (_name, c) => check(c), 60_000);
});

describe('a 10 000-character repository description (docs/image.md#metadata)', () => {
  it('is cut to 512 characters with a warning, not an error', async () => {
    const payload = structuredClone(EVENT.payload) as { repository: { description?: string } };
    payload.repository.description = 'd'.repeat(10_000);
    const logger = new MemoryLogger();
    const inputs = parseInputs({ ...valid() });
    const prepared = await prepareRun(inputs, { ...EVENT.env, GITHUB_ACTIONS: 'true' }, payload, exampleDir, {
      logger,
      run: realRun,
    });
    expect(prepared.provenance.description).toBe('d'.repeat(512));
    expect(logger.lines).toContain(`warning: the repository description has 10000 characters; ${Key.Description} keeps the first 512`);
  });
});
