// Child process of the bench: gzip size and cost of one file at several deflate levels, with
// Node's zlib (what writeLayer uses), streaming as writeLayer does. Prints JSON rows
// {level, bytes, ratio, ms, cpuMs}, medians of `reps` runs.
//   node bench/levels.mjs FILE REPS LEVEL...
import { createReadStream, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { createGzip } from 'node:zlib';

const [file, repsArg, ...levelArgs] = process.argv.slice(2);
const reps = Number(repsArg);
const input = statSync(file).size;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const level of levelArgs.map(Number)) {
  const ms = [];
  const cpu = [];
  let bytes = 0;
  for (let r = 0; r < reps; r++) {
    bytes = 0;
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await pipeline(
      createReadStream(file, { highWaterMark: 1 << 20 }),
      createGzip({ level, chunkSize: 1 << 16 }),
      new Writable({ write: (c, _e, cb) => ((bytes += c.length), cb()) }),
    );
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  rows.push({ level, input, bytes, ratio: bytes / input, ms: median(ms), cpuMs: median(cpu) });
}
process.stdout.write(JSON.stringify(rows) + '\n');
