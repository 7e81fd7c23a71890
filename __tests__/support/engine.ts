import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv, GoToolchain } from '../../src/gobuild/go.js';
import { kodataEntries } from '../../src/gobuild/kodata.js';
import type { EngineDeps, RunRequest } from '../../src/engine.js';
import { execRun } from '../../src/exec.js';
import { parseInputs, type RawInputs } from '../../src/inputs.js';
import { MemoryLogger } from '../../src/log.js';
import { LayoutSource } from '../../src/oci/layout.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const exampleDir = join(repoRoot, 'examples', 'hello');

/** Real Go and file system; bases only from OCI layouts; no registry (push must be off). */
export function layoutOnlyDeps(logger = new MemoryLogger()): EngineDeps & { logger: MemoryLogger } {
  return {
    go: new GoToolchain(execRun, childEnv(process.env, [])),
    logger,
    async openBase(reference) {
      const m = /^oci:(.+?)(?::([^:/]+))?$/.exec(reference);
      if (!m) throw new Error(`this test only reads oci: bases, not ${reference}`);
      return { source: new LayoutSource(m[1]), reference: m[2] ?? '' };
    },
    registryTarget() {
      throw new Error('this test does not push');
    },
    kodata: (packageDir, root) => kodataEntries({ packageDir, repoRoot: root }),
  };
}

export const PROVENANCE = {
  source: 'https://github.com/acme/hello',
  revision: '0123456789abcdef0123456789abcdef01234567',
  created: '2026-01-02T03:04:05Z',
  version: '1.2.3',
  description: 'An example of ko-annotate',
  licenses: 'Apache-2.0',
  builder: 'ko-annotate/test',
};

/**
 * A request that builds the example app, not pushing. The example lives in this repository's
 * work tree, whose commits Go would stamp into the binary (vcs.revision): -buildvcs=false keeps
 * two builds in one test comparable even while someone commits in between.
 */
export function exampleRequest(raw: RawInputs, over: Partial<RunRequest> = {}): RunRequest {
  return {
    inputs: parseInputs({ packages: './cmd/hello', repository: 'ghcr.io/acme/hello', push: 'false', flags: '-buildvcs=false', ...raw }),
    workspace: exampleDir,
    env: {},
    provenance: PROVENANCE,
    tagsFor: () => ['1.2.3'],
    // tagsFor above ignores the repository's tags, so they are not listed.
    tagsFollowExisting: false,
    push: false,
    ...over,
  };
}
