import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getInput, workflow, type Workflow } from '../src/github/commands.js';
import type { Annotation } from '../src/log.js';

// The action writes the runner protocol itself (src/github/commands.ts); @actions/core, run in a
// child process, is the reference for every byte of it.

type Op =
  | ['info' | 'debug' | 'mask' | 'setFailed', string]
  | ['warning' | 'error', string, Annotation?]
  | ['group', string, string]
  | ['section', string, string[]]
  | ['setOutput', string, string];

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** What @actions/core writes for `ops`: standard output and the exit code it sets. */
function viaCore(ops: Op[], env: Record<string, string>): Promise<{ stdout: string; exitCode: number }> {
  const script = `
    import * as core from '@actions/core';
    for (const [op, a, b] of JSON.parse(process.argv[1])) {
      if (op === 'mask') core.setSecret(a);
      else if (op === 'group') await core.group(a, async () => core.info(b));
      else if (op === 'section') { core.startGroup(a); for (const l of b) core.info(l); core.endGroup(); }
      else core[op](a, b);
    }`;
  return new Promise((resolve, reject) =>
    execFile(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(ops)], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout) => {
      const code = (err as { code?: unknown } | null)?.code;
      if (err && typeof code !== 'number') reject(err);
      else resolve({ stdout, exitCode: typeof code === 'number' ? code : 0 });
    }),
  );
}

async function viaUs(ops: Op[], env: Record<string, string>): Promise<{ stdout: string; exitCode: number }> {
  let stdout = '';
  const w: Workflow = workflow(env, (s) => (stdout += s));
  const saved = process.exitCode;
  process.exitCode = 0;
  try {
    for (const [op, a, b] of ops) {
      if (op === 'group') await w.group(a, async () => w.info(b as string));
      else if (op === 'section') w.section(a, b as string[]);
      else if (op === 'warning' || op === 'error') w[op](a, b as Annotation | undefined);
      else if (op === 'setOutput') w.setOutput(a, b as string);
      else w[op](a);
    }
    return { stdout, exitCode: Number(process.exitCode ?? 0) };
  } finally {
    process.exitCode = saved;
  }
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'ko-commands-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('workflow commands, as @actions/core writes them', () => {
  const logging: Op[] = [
    ['info', 'ko-annotate/0.1.0: ./cmd/app in .'],
    ['info', 'two\nlines with % and ::'],
    ['debug', 'debug 100%\r\n'],
    ['mask', 'to%ken\nsecond'],
    ['warning', 'plain warning'],
    ['warning', 'at a place', { file: 'cmd/app/main.go', startLine: 3, startColumn: 9 }],
    ['warning', 'odd properties', { title: 'a: b, c', file: 'dir/a,b:c.go', startLine: 0 }],
    ['error', 'empty properties', {}],
    ['error', 'undefined: x\nmore', { file: 'main.go', startLine: 12, startColumn: 2, title: 'go build' }],
    ['group', 'Build ghcr.io/o/r', 'inside'],
    ['section', 'Publish ghcr.io/o/r@sha256:00', ['line one', '  line two']],
  ];

  it('logs, annotates, masks and groups byte for byte', async () => {
    expect(await viaUs(logging, {})).toEqual(await viaCore(logging, {}));
  });

  it('fails the step with an error annotation and exit code 1', async () => {
    const ops: Op[] = [['setFailed', 'push blob to ghcr.io/o/r: 403\nsee the settings']];
    const ours = await viaUs(ops, {});
    expect(ours).toEqual(await viaCore(ops, {}));
    expect(ours.exitCode).toBe(1);
  });

  it('sets outputs in the GITHUB_OUTPUT file, with a fresh delimiter each', async () => {
    const ops: Op[] = [
      ['setOutput', 'digest', 'sha256:0123'],
      ['setOutput', 'metadata', '{\n  "a": "b%c"\n}'],
    ];
    const written = async (how: typeof viaUs, name: string) => {
      const file = path.join(tmp, name);
      await writeFile(file, '');
      const r = await how(ops, { GITHUB_OUTPUT: file });
      return { ...r, file: (await readFile(file, 'utf8')).replace(/ghadelimiter_[0-9a-f-]{36}/g, 'ghadelimiter_UUID') };
    };
    const ours = await written(viaUs, 'ours');
    expect(ours).toEqual(await written(viaCore, 'core'));
    expect(ours.file).toContain('digest<<ghadelimiter_UUID\nsha256:0123\nghadelimiter_UUID\n');
  });

  it('sets outputs with a command where there is no GITHUB_OUTPUT', async () => {
    const ops: Op[] = [['setOutput', 'digest', 'sha256:0123']];
    expect(await viaUs(ops, {})).toEqual(await viaCore(ops, {}));
  });

  it('refuses an output file that does not exist, as @actions/core does', () => {
    expect(() => workflow({ GITHUB_OUTPUT: path.join(tmp, 'missing') }, () => {}).setOutput('a', 'b')).toThrow('Missing file at path');
  });
});

describe('getInput', () => {
  it('reads INPUT_<NAME> as the runner sets it, trimmed', () => {
    const env = { INPUT_PACKAGES: '  ./cmd/a\n./cmd/b \n', 'INPUT_OCI-LAYOUT-PATH': 'out', INPUT_MY_INPUT: 'x' };
    expect(getInput('packages', env)).toBe('./cmd/a\n./cmd/b');
    expect(getInput('oci-layout-path', env)).toBe('out');
    expect(getInput('my input', env)).toBe('x');
    expect(getInput('tags', env)).toBe('');
  });
});
