import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { workflow } from '../src/github/commands.js';
import { run } from '../src/main.js';
import { loadEvent } from './support/events.js';
import { createWorkspace, defaultInputs, goEnvironment, inputVariable, parseOutputFile, pinCommit, type Workspace } from './support/runner.js';

// main.ts's side of the runner protocol, in process: run() with the runner's environment and a
// Workflow that writes to a string, read back as the runner would (log, GITHUB_OUTPUT, summary).

let ws: Workspace;
let tmp: string;
beforeAll(async () => {
  ws = await createWorkspace();
  tmp = await mkdtemp(join(tmpdir(), 'ko-runner-protocol-'));
});
afterAll(async () => {
  await ws?.cleanup();
  await rm(tmp, { recursive: true, force: true });
});

interface InProcessRun {
  stdout: string;
  exitCode: number;
  outputs: Record<string, string>;
  summary: string;
}

/** Run the action in this process on a recorded event, without push, as the runner would start it. */
async function runInProcess(eventName: string, over: Record<string, string | undefined> = {}): Promise<InProcessRun> {
  const event = loadEvent(eventName);
  const dir = await mkdtemp(join(tmp, 'run-'));
  const output = join(dir, 'output');
  const summary = join(dir, 'summary');
  await writeFile(output, '');
  await writeFile(summary, '');
  const pr = (event.payload as { pull_request?: { head?: { sha?: string } } }).pull_request;
  for (const sha of [event.env.GITHUB_SHA, pr?.head?.sha]) if (sha) await pinCommit(ws.dir, sha);
  const go = await goEnvironment();
  const inputs = { ...(await defaultInputs({ actor: event.env.GITHUB_ACTOR ?? '', token: '' })), packages: './cmd/hello', push: 'false', sbom: 'none', 'base-image': 'scratch', platforms: 'linux/amd64' };
  const env: Record<string, string | undefined> = {
    PATH: [go.bin, process.env.PATH ?? ''].join(delimiter),
    HOME: dir,
    GOCACHE: go.cache,
    GOPATH: join(dir, 'gopath'),
    GOPROXY: 'off',
    GOTOOLCHAIN: 'local',
    GOFLAGS: '-modcacherw',
    DOCKER_CONFIG: dir,
    ...event.env,
    GITHUB_WORKSPACE: ws.dir,
    GITHUB_API_URL: 'http://127.0.0.1:9',
    GITHUB_OUTPUT: output,
    GITHUB_STEP_SUMMARY: summary,
  };
  for (const [name, value] of Object.entries(inputs)) env[inputVariable(name)] = value;
  for (const [name, value] of Object.entries(over)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  let stdout = '';
  const saved = process.exitCode;
  process.exitCode = 0;
  try {
    await run(env, workflow(env, (s) => (stdout += s)));
    return {
      stdout,
      exitCode: Number(process.exitCode ?? 0),
      outputs: parseOutputFile(await readFile(output, 'utf8')),
      summary: await readFile(summary, 'utf8').catch(() => ''),
    };
  } finally {
    process.exitCode = saved;
  }
}

describe('the event payload', () => {
  it('runs without it when GITHUB_EVENT_PATH names no file, as @actions/github does', async () => {
    const missing = join(tmp, 'no-such-event.json');
    const r = await runInProcess('push-branch-main', { GITHUB_EVENT_PATH: missing });
    expect(r.stdout).toContain(`GITHUB_EVENT_PATH ${missing} does not exist`);
    expect(r.exitCode).toBe(0);
    expect(r.outputs.version).toBe('main');
  });
});

describe('the step summary', () => {
  it('is best effort: a summary that cannot be written is a warning, and the run still ends with its references', async () => {
    const summary = join(tmp, 'no-such-dir', 'step_summary');
    const r = await runInProcess('push-branch-main', { GITHUB_STEP_SUMMARY: summary });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^::warning::.*step summary/m);
    expect(r.stdout).not.toContain('::error::');
    expect(r.outputs.version).toBe('main');
    expect(r.stdout.trimEnd().split('\n').slice(-3)).toEqual([
      `built ${r.outputs.image}`,
      '  ghcr.io/octo-org/hello-world:main',
      expect.stringMatching(/^ {2}ghcr\.io\/octo-org\/hello-world:sha-[0-9a-f]{7}$/),
    ]);
  });
});
