// Child process of the bench: gzip size and cost of one file at several deflate settings, with
// Node's zlib (what writeLayer uses), streaming as writeLayer does. A setting is a level with
// optional window bits and memLevel: `1`, `1/w13`, `1/w13/m9`. Prints JSON rows
// {setting, level, windowBits, memLevel, bytes, ratio, ms, cpuMs}, medians of `reps` runs.
//   node bench/levels.mjs FILE REPS SETTING...
import { createReadStream, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { createGzip } from 'node:zlib';

const [file, repsArg, ...settings] = process.argv.slice(2);
const reps = Number(repsArg);
const input = statSync(file).size;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const setting of settings) {
  const [level, ...opts] = setting.split('/');
  const windowBits = Number(opts.find((o) => o.startsWith('w'))?.slice(1) ?? 15);
  const memLevel = Number(opts.find((o) => o.startsWith('m'))?.slice(1) ?? 8);
  const ms = [];
  const cpu = [];
  let bytes = 0;
  for (let r = 0; r < reps; r++) {
    bytes = 0;
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await pipeline(
      createReadStream(file, { highWaterMark: 1 << 20 }),
      createGzip({ level: Number(level), windowBits, memLevel, chunkSize: 1 << 20 }),
      new Writable({ write: (c, _e, cb) => ((bytes += c.length), cb()) }),
    );
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  rows.push({ setting, level: Number(level), windowBits, memLevel, input, bytes, ratio: bytes / input, ms: median(ms), cpuMs: median(cpu) });
}
process.stdout.write(JSON.stringify(rows) + '\n');
