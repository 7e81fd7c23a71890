// docs/image.md#determinism across machines: what differs between two runners (their environment, paths) must
// not reach the image unless an input asks for it.
import { describe, expect, it } from '@jest/globals';
import { childEnv, GoToolchain } from '../src/gobuild/go.js';
import { runEngine, type RunResult } from '../src/engine.js';
import { execRun } from '../src/exec.js';
import { imagesOf } from '../src/oci/image.js';
import { exampleRequest, layoutOnlyDeps } from './support/engine.js';

/** The example on scratch, with `runner` as the process environment (wired as realDeps does). */
async function buildOn(runner: Record<string, string>, raw: Record<string, string> = {}): Promise<RunResult['packages'][number]> {
  const deps = { ...layoutOnlyDeps(), go: new GoToolchain(execRun, childEnv({ ...process.env, ...runner }, [])) };
  const result = await runEngine(exampleRequest({ 'base-image': 'scratch', platforms: 'linux/amd64,linux/arm', ...raw }), deps);
  return result.packages[0];
}

describe('a platform without a variant (docs/image.md#layout, §3.2)', () => {
  it("is built for the architecture's baseline, whatever GOAMD64/GOARM the runner's environment holds", async () => {
    const clean = await buildOn({});
    const tuned = await buildOn({ GOAMD64: 'v3', GOARM: '5' });
    // The index says linux/amd64 (any amd64 CPU): a v3 binary there would refuse to start on older ones.
    expect(imagesOf(tuned.artifact).map((i) => i.platform)).toEqual([{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm' }]);
    expect(tuned.built.platforms.map((p) => p.buildInfo.settings.GOAMD64 ?? p.buildInfo.settings.GOARM)).toEqual(
      clean.built.platforms.map((p) => p.buildInfo.settings.GOAMD64 ?? p.buildInfo.settings.GOARM),
    );
    expect(tuned.digest).toBe(clean.digest);
  });

  it('still takes GOAMD64 from the env input, which is part of the inputs', async () => {
    const tuned = await buildOn({}, { platforms: 'linux/amd64', env: 'GOAMD64=v3' });
    expect(tuned.built.platforms[0].buildInfo.settings.GOAMD64).toBe('v3');
  });
});
