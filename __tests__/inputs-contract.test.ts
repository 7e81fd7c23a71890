// README.md#inputs, README.md#outputs and docs/cli.md (the command line), checked end to end on a small Go
// module with a GitHub-style origin remote: real Go, scratch bases, no registry.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../src/cli.js';
import { realRun } from '../src/config/git.js';
import { runEngine, type RunResult } from '../src/engine.js';
import { parseInputs, type RawInputs } from '../src/inputs.js';
import { loadKoSettings } from '../src/kosettings.js';
import { MemoryLogger } from '../src/log.js';
import { prepareRun } from '../src/prepare.js';
import { gitIn } from './support/git.js';
import { layoutOnlyDeps } from './support/engine.js';

let tmp: string;
let ws: string;

const MAIN_GO = 'package main\n\nfunc main() {}\n';

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'inputs-contract-'));
  ws = join(tmp, 'repo');
  const files: Record<string, string> = {
    'go.mod': 'module example.com/app\n\ngo 1.23\n',
    'cmd/app/main.go': MAIN_GO,
    'cmd/MyTool/main.go': MAIN_GO,
    'cmd/a/server/main.go': MAIN_GO,
    'cmd/b/server/main.go': MAIN_GO,
    '.gitignore': 'out*/\n',
  };
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(ws, path, '..'), { recursive: true });
    await writeFile(join(ws, path), text);
  }
  execFileSync('git', ['init', '-q', '-b', 'main', ws]);
  const git = (args: string[]) => gitIn(ws, args, '2026-01-02T03:04:05Z');
  git(['add', '.']);
  git(['commit', '-q', '-m', 'init']);
  git(['remote', 'add', 'origin', 'https://github.com/Octo-Org/Hello-World.git']);
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Outside Actions: no GITHUB_* variables, Go on PATH. */
const localEnv = (): Record<string, string | undefined> => ({ PATH: process.env.PATH, HOME: process.env.HOME });

/** The action's path from raw inputs (prepare, .ko.yaml, engine), never pushing. */
async function build(raw: RawInputs, extraEnv: Record<string, string> = {}): Promise<RunResult> {
  const inputs = parseInputs({ repository: 'registry.example/acme', push: 'false', sbom: 'none', 'base-image': 'scratch', platforms: 'linux/amd64', ...raw });
  const logger = new MemoryLogger();
  const env = { ...localEnv(), ...extraEnv };
  const prepared = await prepareRun(inputs, env, {}, ws, { logger, run: realRun });
  const ko = await loadKoSettings(inputs, env, ws, prepared.render!);
  return runEngine({ ...prepared, ko }, layoutOnlyDeps(logger));
}

describe('docs/cli.md: the command line', () => {
  it('runs its own example (build ./cmd/app --push=false --oci-layout-path out) with no repository given', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await cli(
      ['build', './cmd/app', '--push=false', '--oci-layout-path', 'out-cli', '--base-image=scratch', '--platforms=linux/amd64', '--sbom=none'],
      localEnv(),
      { out: (s) => out.push(s), err: (s) => err.push(s), cwd: ws },
    );
    expect(err.join('')).not.toContain('ko-annotate: ');
    expect(code).toBe(0);
    // As in the action: ghcr.io/<owner>/<repo> lower-cased, here from the origin remote.
    expect(out.join('')).toMatch(/^ghcr\.io\/octo-org\/hello-world@sha256:[0-9a-f]{64}\n$/);
    expect(JSON.parse(await readFile(join(ws, 'out-cli', 'index.json'), 'utf8')).manifests).toHaveLength(1);
  });

  it('does not push to a repository it derived: a pushing run names one, as ko wants KO_DOCKER_REPO', async () => {
    const err: string[] = [];
    const code = await cli(
      ['build', './cmd/app', '--base-image=scratch', '--platforms=linux/amd64', '--sbom=none'],
      localEnv(),
      { out: () => undefined, err: (s) => err.push(s), cwd: ws },
    );
    expect(code).not.toBe(0);
    expect(err.join('')).toContain('input "repository" is empty and there is no GITHUB_REPOSITORY or KO_DOCKER_REPO');
  });
});

describe('docs/cli.md in a workflow step', () => {
  it('reads the event payload as the action does: a pull request builds and labels its head', async () => {
    const head = 'b'.repeat(40);
    const event = join(tmp, 'pr-event.json');
    await writeFile(event, JSON.stringify({ pull_request: { number: 7, head: { sha: head } } }));
    const out: string[] = [];
    const env = {
      ...localEnv(),
      GITHUB_REPOSITORY: 'octo-org/hello-world',
      GITHUB_EVENT_NAME: 'pull_request',
      GITHUB_EVENT_PATH: event,
      GITHUB_REF: 'refs/pull/7/merge',
      GITHUB_SHA: 'c'.repeat(40),
      SOURCE_DATE_EPOCH: '1767322800',
      KO_ANNOTATE_OUTPUTS_JSON: 'true',
    };
    const code = await cli(['build', './cmd/app', '--base-image=scratch', '--platforms=linux/amd64', '--sbom=none'], env, {
      out: (s) => out.push(s),
      err: () => undefined,
      cwd: ws,
    });
    expect(code).toBe(0);
    const metadata = JSON.parse(out.join(''));
    expect(metadata.labels['org.opencontainers.image.revision']).toBe(head);
    expect(metadata.tags).toEqual(['ghcr.io/octo-org/hello-world:pr-7']);
    expect(metadata.pushed).toBe(false);
  });
});

describe('docs/cli.md in a workflow step without its event file', () => {
  it('warns and runs without the payload, as the action does', async () => {
    const err: string[] = [];
    const env = {
      ...localEnv(),
      GITHUB_REPOSITORY: 'octo-org/hello-world',
      GITHUB_EVENT_NAME: 'push',
      GITHUB_EVENT_PATH: join(tmp, 'no-such-event.json'),
      GITHUB_REF: 'refs/heads/main',
      GITHUB_SHA: 'c'.repeat(40),
      SOURCE_DATE_EPOCH: '1767322800',
    };
    const code = await cli(['build', './cmd/app', '--push=false', '--base-image=scratch', '--platforms=linux/amd64', '--sbom=none'], env, {
      out: () => undefined,
      err: (s) => err.push(s),
      cwd: ws,
    });
    expect(code).toBe(0);
    expect(err.join('')).toContain(`GITHUB_EVENT_PATH ${join(tmp, 'no-such-event.json')} does not exist; running without the event payload`);
  });
});

describe('README.md#inputs naming', () => {
  it('base: a package whose last element has upper case still gets a valid (lower-case) repository, as ko names it', async () => {
    const result = await build({ packages: './cmd/app,./cmd/MyTool', 'oci-layout-path': join(tmp, 'out-base') });
    expect(result.packages.map((p) => p.repository)).toEqual(['registry.example/acme/app', 'registry.example/acme/mytool']);
    expect(result.packages[1].ref).toMatch(/^registry\.example\/acme\/mytool@sha256:/);
  });
});

describe('README.md#inputs repository: derived names are checked as the input is', () => {
  const actions = { GITHUB_REF: 'refs/heads/main', GITHUB_SHA: 'a'.repeat(40), GITHUB_EVENT_NAME: 'push', SOURCE_DATE_EPOCH: '1767322800' };

  it('refuses a default repository that is no image name (a GitHub repository called .github) before building', async () => {
    await expect(build({ repository: '', packages: './cmd/app' }, { ...actions, GITHUB_REPOSITORY: 'octo/.github' })).rejects.toThrow(
      'the default repository ghcr.io/<owner>/<repo> for example.com/app/cmd/app (naming "bare"); set "repository": "ghcr.io/octo/.github" is not a valid repository path',
    );
  });

  it('refuses a package name that makes no repository path under base', async () => {
    await mkdir(join(ws, 'cmd', 'tool_'), { recursive: true });
    await writeFile(join(ws, 'cmd', 'tool_', 'main.go'), MAIN_GO);
    await expect(build({ packages: './cmd/app,./cmd/tool_' })).rejects.toThrow(
      'the repository for example.com/app/cmd/tool_ (naming "base"): "registry.example/acme/tool_" is not a valid repository path',
    );
  });
});

describe('README.md#inputs naming: one image per package', () => {
  it('base: two packages with the same last element are refused before building, like bare for several', async () => {
    const same = 'example.com/app/cmd/a/server and example.com/app/cmd/b/server the same repository registry.example/acme/server; use preserve';
    await expect(build({ packages: './cmd/a/server,./cmd/b/server', naming: 'base' })).rejects.toThrow(`input "naming": "base" gives ${same}`);
    await expect(build({ packages: './cmd/a/server,./cmd/b/server' })).rejects.toThrow(`input "naming": "auto" (base for several packages) gives ${same}`);
    // preserve tells them apart.
    const result = await build({ packages: './cmd/a/server,./cmd/b/server', naming: 'preserve', 'oci-layout-path': join(tmp, 'out-preserve') });
    expect(result.packages.map((p) => p.repository)).toEqual(['registry.example/acme/example.com/app/cmd/a/server', 'registry.example/acme/example.com/app/cmd/b/server']);
  });

  it('a package named twice is refused, naming the input', async () => {
    expect(() => parseInputs({ packages: './cmd/app\n./cmd/app' })).toThrow('input "packages": "./cmd/app" is listed twice');
    await expect(build({ packages: './cmd/app,./cmd/app/' })).rejects.toThrow('input "packages": "./cmd/app" and "./cmd/app/" are the same package example.com/app/cmd/app');
  });
});

describe('README.md#inputs env: templates as in .ko.yaml', () => {
  it('renders a template in an env value before Go sees it, go list included', async () => {
    // go list refuses an unrendered -mod ("-mod={{.Env.MODE}} not supported").
    const env = 'GOFLAGS=-mod={{.Env.MODE}} -tags={{.Env.TAGS}}';
    const result = await build({ packages: './cmd/app', env, 'oci-layout-path': join(tmp, 'out-env') }, { MODE: 'mod', TAGS: 'audit' });
    expect(result.packages[0].built.platforms[0].buildInfo.settings['-tags']).toBe('audit');
  });

  it('does so on the job’s path too (the action and the command line)', async () => {
    const err: string[] = [];
    const code = await cli(
      ['build', './cmd/app', '--env=GOFLAGS=-mod={{.Env.MODE}}', '--push=false', '--base-image=scratch', '--platforms=linux/amd64', '--sbom=none', '--repository=registry.example/acme'],
      { ...localEnv(), MODE: 'mod' },
      { out: () => undefined, err: (s) => err.push(s), cwd: ws },
    );
    expect(err.join('')).not.toContain('ko-annotate: ');
    expect(code).toBe(0);
  });
});

describe('templates never see the token (docs/publishing.md#credentials)', () => {
  it.each([['INPUT_TOKEN'], ['GITHUB_TOKEN'], ['MY_SECRET']])('{{.Env.%s}} is not set for a template, as it is not for go build', async (name) => {
    const secret = 'ghs_templatesecret1234567890';
    const err = await build({ packages: './cmd/app', ldflags: `-X main.t={{.Env.${name}}}`, token: secret }, { [name]: secret }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(`"${name}" is not set`);
    expect((err as Error).message).not.toContain(secret);
  });
});

describe('README.md#inputs flags: templates as in .ko.yaml', () => {
  it('keeps a template with spaces inside its braces ({{ .Env.TAGS }}) as one flag', async () => {
    expect(parseInputs({ flags: '-v -tags={{ .Env.TAGS }}\n-trimpath' }).flags).toEqual(['-v', '-tags={{ .Env.TAGS }}', '-trimpath']);
    const result = await build({ packages: './cmd/app', flags: '-tags={{ .Env.TAGS }}', 'oci-layout-path': join(tmp, 'out-flags') }, { TAGS: 'audit' });
    expect(result.packages[0].built.platforms[0].buildInfo.settings['-tags']).toBe('audit');
  });
});

describe('-toolexec is refused (README: flags), also when a template produces it', () => {
  const F = { F: '-toolexec=/bin/echo' };
  it.each([
    ['input "flags"', { flags: '{{.Env.F}}' }],
    ['input "env"', { env: 'GOFLAGS={{.Env.F}}' }],
  ])('%s', async (where, raw) => {
    await expect(build({ packages: './cmd/app', ...raw }, F)).rejects.toThrow(new RegExp(`^${where}.*toolexec.*not allowed`));
  });

  it('in .ko.yaml flags', async () => {
    await writeFile(join(ws, '.ko.yaml'), 'defaultFlags:\n  - "{{.Env.F}}"\n');
    try {
      await expect(build({ packages: './cmd/app' }, F)).rejects.toThrow(/defaultFlags.*toolexec.*not allowed/);
    } finally {
      await rm(join(ws, '.ko.yaml'));
    }
  });
});
