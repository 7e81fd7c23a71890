import { describe, expect, it } from '@jest/globals';
import { parseCommandLine, streamLogger, USAGE } from '../src/cli.js';
import { explainFailure } from '../src/explain.js';
import { RegistryError } from '../src/registry/errors.js';

describe('command line', () => {
  it('maps flags to the inputs the action reads, joining repeated ones by line', () => {
    const raw = parseCommandLine(
      ['build', './cmd/a', '--push=false', '--oci-layout-path', 'out', '--labels', 'a=1', '--labels=b=2,3', './cmd/b', '--platforms=linux/amd64'],
      { KO_ANNOTATE_TOKEN: 'tok' },
    );
    expect(raw).toEqual({
      packages: './cmd/a\n./cmd/b',
      push: 'false',
      'oci-layout-path': 'out',
      labels: 'a=1\nb=2,3',
      platforms: 'linux/amd64',
      token: 'tok',
    });
  });

  it('never takes the token as a flag', () => {
    expect(() => parseCommandLine(['build', '--token=secret'], {})).toThrow(/token/);
  });

  it('explains itself on --help and on an unknown command', () => {
    expect(parseCommandLine(['--help'], {})).toBe('help');
    expect(() => parseCommandLine(['publish'], {})).toThrow('unknown command "publish"');
    expect(() => parseCommandLine([], {})).toThrow(USAGE);
  });

  it('logs to its stream with file positions on annotations', () => {
    const lines: string[] = [];
    const log = streamLogger((s) => lines.push(s));
    log.error('undefined: x', { file: 'cmd/app/main.go', startLine: 3, startColumn: 9 });
    log.warning('cut');
    expect(lines).toEqual(['error: cmd/app/main.go:3:9: undefined: x\n', 'warning: cut\n']);
  });
});

describe('the builder key', () => {
  it('names this version of ko-annotate, the one in package.json', async () => {
    const { readFile } = await import('node:fs/promises');
    const { BUILDER, VERSION } = await import('../src/prepare.js');
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
    expect(BUILDER).toBe(`ko-annotate/${pkg.version}`);
  });
});

describe('failure messages', () => {
  const denied = (host: string, status: number) =>
    new RegistryError({
      operation: { action: 'push blob', preposition: 'to' },
      host,
      repository: 'octo-org/hello-world',
      status,
      errors: [{ code: 'DENIED', message: 'permission_denied: write_package' }],
    });

  it.each([401, 403])('explains a %i from ghcr.io in plain sentences, with the package settings link', (status) => {
    const text = explainFailure(denied('ghcr.io', status));
    expect(text).toContain(`push blob to ghcr.io/octo-org/hello-world: ${status}`);
    expect(text).toContain('permissions: packages: write');
    expect(text).toContain('pull request from a fork');
    expect(text).toContain('https://github.com/orgs/octo-org/packages/container/hello-world/settings');
  });

  it('leaves other registries and other errors as they are', () => {
    expect(explainFailure(denied('registry.example', 403))).not.toContain('packages: write');
    expect(explainFailure(new Error('plain'))).toBe('plain');
    expect(explainFailure('text')).toBe('text');
  });
});
