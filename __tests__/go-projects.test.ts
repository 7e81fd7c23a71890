// Go projects of several shapes, against the real Go toolchain (no network: std and local
// replace directives only): how `go list` and `go build` failures reach the user (README.md#inputs, docs/reliability.md).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { childEnv, GoBuildError, GoToolchain } from '../src/gobuild/go.js';
import { listPackages } from '../src/engine.js';
import { execRun } from '../src/exec.js';
import { parseInputs } from '../src/inputs.js';

let tmp: string;
let go: GoToolchain;

/** Go's environment here: no network, no toolchain switch, no go.work from above the temp dir. */
const offline = () => ({ ...childEnv(process.env, []), GOFLAGS: '-mod=mod', GOPROXY: 'off', GOTOOLCHAIN: 'local', GOWORK: 'off' });

beforeAll(async () => {
  process.env.PATH = `/usr/lib/go-1.23/bin:${process.env.PATH}`;
  tmp = await mkdtemp(join(tmpdir(), 'ko-annotate-go-projects-'));
  go = new GoToolchain(execRun, offline());
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** Write `files` (path → content) below a new directory of tmp; returns it. */
async function tree(name: string, files: Record<string, string>): Promise<string> {
  const root = join(tmp, name);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return root;
}

/** The GoBuildError of building `target` in `cwd`, annotated against `workspace`. */
async function buildError(target: string, cwd: string, workspace: string): Promise<GoBuildError> {
  const opts = { target, output: join(tmp, 'bin', 'app'), cwd, flags: [], ldflags: [], env: {}, platformEnv: { GOOS: 'linux', GOARCH: 'amd64' }, workspace };
  const err = await go.build(opts).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(GoBuildError);
  return err as GoBuildError;
}

const mod = (path: string, extra = '') => `module ${path}\n\ngo 1.23\n${extra}`;

describe('compile errors as annotations', () => {
  it("keep a type error's indented have/want lines in its annotation", async () => {
    const ws = await tree('multiline', {
      'go.mod': mod('example.com/multi'),
      'main.go': 'package main\n\nfunc f(int, string) {}\n\nfunc main() {\n\tf("a", 1, 2)\n}\n',
    });
    const err = await buildError('.', ws, ws);
    expect(err.output).toContain('\thave (string, number, number)');
    expect(err.diagnostics).toEqual([
      {
        message: 'too many arguments in call to f\n\thave (string, number, number)\n\twant (int, string)',
        where: { file: 'main.go', startLine: 6, startColumn: 12, title: 'go build' },
      },
    ]);
  }, 60_000);
});

describe('compile errors outside the workspace', () => {
  it('are annotated without a file (GitHub needs a path in the repository), their path in the message', async () => {
    // A replaced module beside the checkout, as a dependency in the module cache would be.
    const root = await tree('outside', {
      'ws/go.mod': mod('example.com/app', 'require example.com/dep v0.0.0\n\nreplace example.com/dep => ../dep\n'),
      'ws/main.go': 'package main\n\nimport "example.com/dep"\n\nfunc main() { dep.F() }\n',
      'dep/go.mod': mod('example.com/dep'),
      'dep/dep.go': 'package dep\n\nfunc F() { nope() }\n',
    });
    const err = await buildError('.', join(root, 'ws'), join(root, 'ws'));
    expect(err.diagnostics).toEqual([{ message: `${join(root, 'dep', 'dep.go')}:3:12: undefined: nope`, where: { title: 'go build' } }]);
  }, 60_000);
});

describe('go list sees what go build will build: CGO_ENABLED=0, GOOS=linux (docs/image.md#layout)', () => {
  it('fails a package that needs cgo before any build, naming the input and why', async () => {
    const ws = await tree('cgo', {
      'go.mod': mod('example.com/cgo'),
      'cmd/app/main.go': 'package main\n\n// int two() { return 2; }\nimport "C"\n\nfunc main() { println(C.two()) }\n',
    });
    await expect(go.list(['./cmd/app'], ws)).rejects.toThrow(/^input "packages": "\.\/cmd\/app": build constraints exclude all Go files .*CGO_ENABLED=0.*import "C"/s);
  }, 60_000);

  it('lists a linux-only package on another system (a macOS runner, the CLI on a Mac)', async () => {
    const ws = await tree('linux-only', {
      'go.mod': mod('example.com/lx'),
      'main_linux.go': '//go:build linux\n\npackage main\n\nfunc main() {}\n',
    });
    const onMac = new GoToolchain(execRun, { ...offline(), GOOS: 'darwin' });
    await expect(onMac.list(['.'], ws)).resolves.toMatchObject([{ importPath: 'example.com/lx', name: 'main' }]);
  }, 60_000);
});

describe('working-directory (README.md#inputs)', () => {
  it.each([
    ['does not exist', './nope', /^input "working-directory": "\.\/nope" does not exist/],
    ['is a file', './go.mod', /^input "working-directory": "\.\/go\.mod" is not a directory/],
  ])('that %s fails naming the input and the value', async (_what, dir, message) => {
    const ws = await tree(`wd-${_what.replaceAll(' ', '-')}`, { 'go.mod': mod('example.com/wd'), 'main.go': 'package main\n\nfunc main() {}\n' });
    await expect(listPackages(parseInputs({ 'working-directory': dir }), ws, undefined, go)).rejects.toThrow(message);
  }, 60_000);

  it('is where a module in a subdirectory is listed and built, its errors annotated on repository paths', async () => {
    const ws = await tree('subdir', {
      'service/go.mod': mod('example.com/svc'),
      'service/cmd/app/main.go': 'package main\n\nimport "example.com/svc/internal/lib"\n\nfunc main() { lib.F() }\n',
      'service/internal/lib/lib.go': 'package lib\n\nfunc F() { nope() }\n',
    });
    const [pkg] = await listPackages(parseInputs({ 'working-directory': './service', packages: './cmd/app' }), ws, undefined, go);
    expect(pkg).toMatchObject({ spec: './cmd/app', importPath: 'example.com/svc/cmd/app', moduleDir: join(ws, 'service') });
    const err = await buildError(pkg.importPath, join(ws, 'service'), ws);
    expect(err.diagnostics.map((d) => d.where.file)).toEqual(['service/internal/lib/lib.go']);
  }, 60_000);
});

describe('errors go list finds in the source', () => {
  it('say where: a broken import block names its file:line:col', async () => {
    const ws = await tree('broken-imports', {
      'go.mod': mod('example.com/broken'),
      'cmd/app/main.go': 'package main\n\nimport (\n\t"fmt"\n\tfunc main() { fmt.Println() }\n',
    });
    await expect(go.list(['./cmd/app'], ws)).rejects.toThrow('input "packages": "./cmd/app": cmd/app/main.go:5:2: missing import path');
  }, 60_000);
});

describe('go list with the build\'s -tags (flags input)', () => {
  it('lists a main package whose files all need a tag given in flags', async () => {
    const ws = await tree('tagged', {
      'go.mod': 'module example.com/tagged\n\ngo 1.23\n',
      'cmd/app/main.go': '//go:build prod\n\npackage main\n\nfunc main() {}\n',
    });
    for (const flags of ['-tags=prod', '-v -tags prod']) {
      const [pkg] = await listPackages(parseInputs({ packages: './cmd/app', flags }), ws, undefined, go);
      expect(pkg.importPath).toBe('example.com/tagged/cmd/app');
    }
    await expect(listPackages(parseInputs({ packages: './cmd/app' }), ws, undefined, go)).rejects.toThrow('build constraints exclude all Go files');
  });
});

