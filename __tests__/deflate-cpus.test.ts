// Reproducible layers (docs/image.md#determinism) rest on Node's zlib giving the same bytes on every
// CPU a runner may have: x86-64 with or without SSE4.2 and PCLMUL, and arm64. scripts/deflate-cpus.sh
// compresses a Go binary with the layer settings under Node 24 natively, under qemu-user's older
// x86-64 CPU models, and with Node 24's arm64 build on emulated arm64 CPUs, and compares.
import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './support/engine.js';

describe('deflate on other CPUs', () => {
  it('gives the same layer bytes on x86-64 with and without SSE4.2/PCLMUL and on arm64', async () => {
    const { stdout } = await promisify(execFile)('bash', [join(repoRoot, 'scripts/deflate-cpus.sh')], { timeout: 600_000, maxBuffer: 1 << 20 });
    const digests = stdout.split('\n').filter((l) => /^ {2}\S/.test(l)).map((l) => /\b([a-f0-9]{64})\b/.exec(l)?.[1]);
    expect(digests).toHaveLength(6);
    expect(new Set(digests).size).toBe(1);
    expect(stdout).toContain('deflate-cpus: the same bytes on every CPU');
  }, 600_000);
});
