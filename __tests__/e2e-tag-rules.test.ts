// docs/tag-rules.md end to end: dist/index.js run as the Actions runner runs it (Node 24, INPUT_*,
// GITHUB_* and the event payload) with docker/metadata-action's rules.
// 1. Every applicable version_tags_labels case of metadata-action's vectors
//    (fixtures/metadata-action-cases.json), push off: the version and tags outputs, and the
//    version label, are metadata-action's.
// 2. Floating-tag safety against a real token-auth registry: v2.3.4, then v2.2.9.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { MemoryLogger } from '../src/log.js';
import { Registry } from '../src/registry/client.js';
import { targetCredentials } from '../src/registry/credentials.js';
import { exclusionOf, METADATA_ACTION_DEFAULT_RULES, tagsForOneImage, vectors, type Expected, type VectorCase } from './support/metadata-action-cases.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { createWorkspace, fakeSha, runAction, type ActionRun, type RunnerEvent, type Workspace } from './support/runner.js';

let workspace: Workspace;

beforeAll(async () => {
  // The vectors' harness fixes {{commit_date}} at its clock: the commit the events name has that time.
  workspace = await createWorkspace(vectors.harness.now.replace(/\.000Z$/, 'Z'));
}, 240_000);
afterAll(async () => {
  await workspace?.cleanup();
});

const describeRun = (r: ActionRun) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
function expectSuccess(r: ActionRun) {
  if (r.code !== 0) throw new Error(`the action failed: ${describeRun(r)}`);
}

/**
 * A rule line as a workflow would write it: metadata-action reads the whole input as CSV first
 * (docs/tag-rules.md#quoting), so a line with quotes is quoted once more to reach the rule parser as is.
 */
const asInputLine = (line: string) => (line.includes('"') ? `"${line.replace(/"/g, '""')}"` : line);

/**
 * {{date}} is the run's wall clock, which the vectors' harness fixes by mocking it: those cases'
 * date digits are matched as digits (the table test checks them exactly); {{commit_date}} is exact,
 * the workspace's commit having the harness's time.
 */
const usesDate = (c: VectorCase) => c.inputs!.tags.some((t) => t.includes('{{date'));
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
function expectLike(actual: string | undefined, expected: string, c: VectorCase) {
  if (!usesDate(c)) return expect(actual).toBe(expected);
  expect(actual).toMatch(new RegExp(`^${escape(expected).replace(/20200110/g, '\\d{8}').replace(/-(?:0930|0030)00/g, '-\\d{6}')}$`));
}

describe('metadata-action vectors through dist/index.js (push off)', () => {
  const cases = vectors.cases.filter((c) => c.kind === 'version_tags_labels');
  const counts = { ran: 0, refused: [] as string[], dated: [] as string[] };
  afterAll(() => {
    console.log(
      `metadata-action vectors end to end: ${counts.ran} run through dist/index.js and matched, ${counts.dated.length} of them with {{date}} matched by shape (${counts.dated.join(', ')}); ` +
        `${counts.refused.length} excluded, refused as bad input:\n${counts.refused.map((e) => `  ${e}`).join('\n')}`,
    );
  });

  test.each(cases.map((c) => [c.id, c] as const))(
    '%s',
    async (_id, c) => {
      const why = exclusionOf(c);
      const fixture = vectors.fixtures[c.fixture!]!;
      const { GITHUB_EVENT_PATH: _, ...env } = fixture.env;
      // The harness's clock is every commit's time as well.
      const payload = JSON.parse(JSON.stringify(fixture.payload).replace(/"timestamp":"[^"]*"/g, `"timestamp":"${vectors.harness.now}"`));
      const event: RunnerEvent = { env, payload };
      const tags = c.inputs!.tags.length > 0 ? c.inputs!.tags : METADATA_ACTION_DEFAULT_RULES;
      const api = vectors.harness.repo_api_response;
      const r = await runAction({
        event,
        workspace: workspace.dir,
        inputs: {
          tags: tags.map(asInputLine).join('\n'),
          flavor: c.inputs!.flavor.map(asInputLine).join('\n'),
          packages: './cmd/hello',
          push: 'false',
          'base-image': 'scratch',
          platforms: 'linux/amd64',
          sbom: 'none',
        },
        extraEnv: c.extra_env,
        // The repository API as the harness answers it (type=edge's default branch).
        api: (path) => (path.startsWith('/repos/') ? { status: 200, body: { description: api.description ?? '', default_branch: api.default_branch } } : undefined),
      });
      if (why) {
        // Refused before any build, naming the rule.
        expect(r.code).toBe(1);
        expect(r.stdout).toMatch(/::error::input "tags" line \d+ "type=pep440[^"]*": type "pep440" \(PEP 440 versions\) is not supported/);
        expect(r.stdout).not.toMatch(/go build|Publish /);
        counts.refused.push(`${c.id}: ${why}`);
        return;
      }
      expectSuccess(r);
      const e = c.expected as Expected;
      const repo = `ghcr.io/${env.GITHUB_REPOSITORY!.toLowerCase()}`;
      const version = e.version.main ?? '';
      expectLike(r.outputs.version, version, c);
      const want = tagsForOneImage(c)!;
      const got = r.outputs.tags === '' ? [] : r.outputs.tags.split('\n');
      expect(got).toHaveLength(want.length);
      want.forEach((t, i) => expectLike(got[i], `${repo}:${t}`, c));
      expect(r.outputs.labels.split('\n')).toContain(`org.opencontainers.image.version=${r.outputs.version}`);
      if (usesDate(c)) counts.dated.push(c.id);
      counts.ran++;
    },
    120_000,
  );
});

describe('floating tags made by rules only move forward, against a token-auth registry', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: 'token' });
  }, 120_000);
  afterAll(async () => {
    await registry?.stop();
  });

  const RULES = ['type=semver,pattern={{major}}', 'type=semver,pattern={{major}}.{{minor}}', 'type=semver,pattern={{version}}'].join('\n');

  /** A push of `tag`, on a commit of its own. */
  const tagPush = (tag: string): RunnerEvent => ({
    env: {
      GITHUB_EVENT_NAME: 'push',
      GITHUB_REF: `refs/tags/${tag}`,
      GITHUB_REF_NAME: tag,
      GITHUB_REF_TYPE: 'tag',
      GITHUB_REPOSITORY: 'octo-org/hello-world',
      GITHUB_REPOSITORY_OWNER: 'octo-org',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_SHA: fakeSha(tag),
      GITHUB_ACTOR: 'monalisa',
    },
    payload: { ref: `refs/tags/${tag}`, repository: { full_name: 'octo-org/hello-world', default_branch: 'main', description: 'hello' } },
  });

  async function tagsInRegistry(repository: string): Promise<Record<string, string>> {
    const client = new Registry(registry.host, { credentials: targetCredentials(registry.host, registry.username, registry.password), logger: new MemoryLogger() });
    const repo = client.repository(repository);
    const out: Record<string, string> = {};
    for (const tag of (await repo.listTags()).sort()) out[tag] = (await repo.headManifest(tag))!.digest;
    return out;
  }

  test('v2.3.4 publishes 2, 2.3, 2.3.4 and latest; v2.2.9 after it publishes 2.2.9 and 2.2 and leaves 2 and latest', async () => {
    const repository = `${registry.host}/octo-org/hello-world`;
    const run = (tag: string) =>
      runAction({
        event: tagPush(tag),
        registry,
        workspace: workspace.dir,
        inputs: { packages: './cmd/hello', tags: RULES, repository, username: registry.username, 'base-image': 'scratch', platforms: 'linux/amd64', sbom: 'none' },
      });

    const first = await run('v2.3.4');
    expectSuccess(first);
    // metadata-action's version is the first rule's tag: all three have priority 900, in the order given.
    expect(first.outputs.version).toBe('2');
    expect(first.outputs.tags.split('\n')).toEqual(['2', '2.3', '2.3.4', 'latest'].map((t) => `${repository}:${t}`));
    const a = first.outputs.digest;
    expect(await tagsInRegistry('octo-org/hello-world')).toEqual({ '2': a, '2.3': a, '2.3.4': a, latest: a });

    const second = await run('v2.2.9');
    expectSuccess(second);
    const b = second.outputs.digest;
    expect(b).not.toBe(a);
    expect(second.outputs.version).toBe('2');
    expect(second.outputs.tags.split('\n')).toEqual(['2.2', '2.2.9'].map((t) => `${repository}:${t}`));
    expect(await tagsInRegistry('octo-org/hello-world')).toEqual({ '2': a, '2.3': a, '2.3.4': a, latest: a, '2.2': b, '2.2.9': b });
  }, 300_000);
});
