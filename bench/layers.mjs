// Child process of the bench: writes the binary layer of each given binary with ko-annotate's own
// writeLayer (from a tsc build of src/oci/layer.ts), all at once as the builder does, and prints
// {ms, cpuMs, maxRssKiB, layers} as JSON. Process start-up and module loading are not timed.
//   node bench/layers.mjs LAYER_JS OUT_DIR BINARY...
import { stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [layerJs, outDir, ...binaries] = process.argv.slice(2);
const { writeLayer, GZIP_LEVEL, READ_CHUNK } = await import(pathToFileURL(layerJs).href);
// As src/gobuild/builder.ts opens the binary (READ_CHUNK: absent before it was introduced).
const readOpts = READ_CHUNK ? { highWaterMark: READ_CHUNK } : {};
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const layers = await Promise.all(
  binaries.map(async (bin, i) => {
    const size = (await stat(bin)).size;
    // The same entries as src/gobuild/assemble.ts binaryEntries('benchapp', …).
    const entries = [
      { type: 'directory', path: 'ko-app/', mode: 0o755 },
      { type: 'file', path: 'ko-app/benchapp', mode: 0o555, size, open: () => createReadStream(bin, readOpts) },
    ];
    const l = await writeLayer(entries, join(outDir, `${i}-${basename(bin)}.tar.gz`), 'application/vnd.oci.image.layer.v1.tar+gzip');
    return { binary: bin, digest: l.digest, diffId: l.diffId, size: l.size };
  }),
);
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
const cpu = process.cpuUsage(cpu0);
process.stdout.write(JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000, maxRssKiB: process.resourceUsage().maxRSS, gzipLevel: GZIP_LEVEL, layers }) + '\n');
