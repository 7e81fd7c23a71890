// action.yml as GitHub reads it: the Marketplace's release form, which checks the metadata only
// when a release is published, and the precedence its descriptions promise.
import { describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadKoConfig } from '../src/config/koyaml.js';
import type { PackageResult } from '../src/engine.js';
import { workflow } from '../src/github/runner.js';
import { INPUT_NAMES } from '../src/inputs.js';
import { readActionInputs } from '../src/main.js';
import { outputsOf } from '../src/outputs.js';

interface ActionYml {
  name: string;
  description: string;
  branding: { icon: string; color: string };
  inputs: Record<string, { description: string; default?: string }>;
  outputs: Record<string, { description: string }>;
}

const action = async (): Promise<ActionYml> => parse(await readFile(new URL('../action.yml', import.meta.url), 'utf8')) as ActionYml;

describe('GitHub Marketplace', () => {
  // The release form refuses the listing with "Description must be less than 125 characters";
  // nothing else checks it, and a release tag cannot be fixed afterwards.
  it('takes the description: fewer than 125 characters', async () => {
    const { description } = await action();
    expect(description.length).toBeLessThan(125);
  });

  it('takes the branding: one of its nine colours, a Feather icon it does not leave out', async () => {
    const { branding } = await action();
    expect(['white', 'black', 'yellow', 'blue', 'green', 'orange', 'red', 'purple', 'gray-dark']).toContain(branding.color);
    const omitted = ['coffee', 'columns', 'divide-circle', 'divide-square', 'divide', 'frown', 'hexagon', 'key', 'meh', 'mouse-pointer', 'smile', 'tool', 'x-octagon'];
    expect(omitted).not.toContain(branding.icon);
    expect(branding.icon).toMatch(/^[a-z0-9]+(?:-[a-z0-9]+)*$/);
  });
});

describe('the defaults an input description lists', () => {
  /** The README's Inputs row for `name`: its default cell. */
  const readmeDefault = async (name: string) => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${name}\` |`));
    return row?.split('|')[2] ?? '';
  };
  /** The sources `text` names, in the order it names them. */
  const named = (text: string, sources: readonly string[]) =>
    sources.filter((s) => text.includes(s)).sort((a, b) => text.indexOf(a) - text.indexOf(b));

  it('come in the order that wins: the variables before .ko.yaml defaultBaseImage and defaultPlatforms, as ko reads them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ko-annotate-metadata-'));
    try {
      await writeFile(join(dir, '.ko.yaml'), 'defaultBaseImage: registry.example/from-file:1\ndefaultPlatforms: [linux/arm64]\n');
      const ko = await loadKoConfig({
        workingDirectory: dir,
        env: { KO_DEFAULTBASEIMAGE: 'registry.example/from-env:1', KO_DEFAULTPLATFORMS: 'linux/amd64' },
      });
      expect(ko).toMatchObject({ defaultBaseImage: 'registry.example/from-env:1', defaultPlatforms: ['linux/amd64'] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const { inputs } = await action();
    // A package's baseImageOverrides entry comes first (the engine asks for it before the rest).
    const base = ['baseImageOverrides', 'KO_DEFAULTBASEIMAGE', 'defaultBaseImage', 'cgr.dev/chainguard/static:latest'];
    const platforms = ['KO_DEFAULTPLATFORMS', 'defaultPlatforms', 'linux/amd64,linux/arm64'];
    expect(named(inputs['base-image'].description, base)).toEqual(base);
    expect(named(await readmeDefault('base-image'), base)).toEqual(base);
    expect(named(inputs.platforms.description, platforms)).toEqual(platforms);
    expect(named(await readmeDefault('platforms'), platforms)).toEqual(platforms);
  });
});

describe('the outputs', () => {
  const sha = (c: string) => `sha256:${c.repeat(64)}`;
  // Only what outputsOf reads of a package; a run with SBOMs, which adds the most.
  const pkg = {
    package: 'example.com/hello/cmd/hello',
    repository: 'ghcr.io/octo-org/hello-world',
    digest: sha('a'),
    ref: `ghcr.io/octo-org/hello-world@${sha('a')}`,
    tags: ['1.2.3'],
    platforms: [{ platform: 'linux/amd64', digest: sha('b'), size: 1 }],
    labels: { 'org.opencontainers.image.version': '1.2.3' },
    annotations: { 'org.opencontainers.image.version': '1.2.3' },
    sboms: [{ platform: 'linux/amd64', digest: sha('c') }],
  } as unknown as PackageResult;
  const outputs = outputsOf({ version: '1.2.3', packages: [pkg], pushed: true });

  it('are the ones action.yml declares, every one of them', async () => {
    expect(Object.keys(outputs).sort()).toEqual(Object.keys((await action()).outputs).sort());
  });

  it('are described with every key they carry: images objects, and what metadata adds to the other outputs', async () => {
    const declared = (await action()).outputs;
    const imageKeys = Object.keys((JSON.parse(outputs.images) as object[])[0]);
    expect(imageKeys.filter((k) => !declared.images.description.includes(k))).toEqual([]);
    const added = Object.keys(JSON.parse(outputs.metadata) as object).filter((k) => !(k in declared));
    expect(added.filter((k) => !declared.metadata.description.includes(k))).toEqual([]);
  });
});

describe('the inputs', () => {
  it('are read as the runner passes them: INPUT_<NAME> upper-cased, spaces as _, hyphens kept, trimmed; both tokens masked', async () => {
    const names = Object.keys((await action()).inputs);
    expect([...INPUT_NAMES].sort()).toEqual([...names].sort());
    const env = Object.fromEntries(names.map((n) => [`INPUT_${n.replace(/ /g, '_').toUpperCase()}`, `  value of ${n}\n`]));
    const masked: string[] = [];
    // @actions/core reads process.env.
    const saved = process.env;
    process.env = env;
    try {
      const raw = readActionInputs({ ...workflow, mask: (s) => masked.push(s) });
      expect(raw).toEqual(Object.fromEntries(names.map((n) => [n, `value of ${n}`])));
    } finally {
      process.env = saved;
    }
    expect(masked.sort()).toEqual(['value of github-token', 'value of token']);
  });
});
