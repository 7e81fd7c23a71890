// Loaded with `node --import` into the ko-annotate process the bench times: at exit it writes
// that process's own peak RSS and CPU time (children such as `go list` not included) to
// $KO_BENCH_RSS_FILE.
import { writeFileSync } from 'node:fs';

const file = process.env.KO_BENCH_RSS_FILE;
if (file) {
  process.on('exit', () => {
    const u = process.resourceUsage();
    writeFileSync(file, JSON.stringify({ maxRssKiB: u.maxRSS, cpuMs: (u.userCPUTime + u.systemCPUTime) / 1000 }));
  });
}
