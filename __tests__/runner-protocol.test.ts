import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWorkspace, runAction, type ActionRun, type Workspace } from './support/runner.js';

// main.ts's side of the runner protocol: dist/index.js started as the runner starts it, read back
// as the runner would (log, GITHUB_OUTPUT, summary).

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

/** Run the action on a recorded event, without push. */
const runOn = (eventName: string, extraEnv: Record<string, string | undefined>): Promise<ActionRun> =>
  runAction({
    event: eventName,
    workspace: ws.dir,
    inputs: { packages: './cmd/hello', push: 'false', sbom: 'none', 'base-image': 'scratch', platforms: 'linux/amd64' },
    extraEnv,
  });

describe('the event payload', () => {
  it('runs without it when GITHUB_EVENT_PATH names no file, as @actions/github does', async () => {
    const missing = join(tmp, 'no-such-event.json');
    const r = await runOn('push-branch-main', { GITHUB_EVENT_PATH: missing });
    expect(r.stdout).toContain(`GITHUB_EVENT_PATH ${missing} does not exist`);
    expect(r.code).toBe(0);
    expect(r.outputs.version).toBe('main');
  });
});

describe('the step summary', () => {
  it('is best effort: a summary that cannot be written is a warning, and the run still ends with its references', async () => {
    const summary = join(tmp, 'no-such-dir', 'step_summary');
    const r = await runOn('push-branch-main', { GITHUB_STEP_SUMMARY: summary });
    expect(r.code).toBe(0);
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
