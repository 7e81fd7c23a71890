// `npm run bench`: ko-annotate against crane, skopeo and a shell floor, on this machine, against
// one local registry (docker-registry on 127.0.0.1, no auth), in paired runs of alternating order.
//
// What is timed (wall clock from spawn to exit; CPU = user + system of the process and its
// children, from GNU time):
//   ours push      the bundled CLI (dist/cli/index.js) building the generated program for
//                  linux/amd64 + linux/arm64 on scratch and pushing the index and both tags to a
//                  new repository. `go build` is NOT in it: KO_ANNOTATE_GO points at
//                  bench/go-shim.sh, whose `build` copies a binary built beforehand (timed on its
//                  own, below); `go list` and `go version -m` are real and are in it.
//   crane push     the same logical image with crane: per platform (both platforms at once)
//                  `crane append` of the binary's tar (uncompressed, made beforehand, not timed)
//                  onto a per-platform empty base (pushed beforehand, so that the index gets
//                  platforms), `crane mutate` with the same entrypoint, env, labels and manifest
//                  annotations; then `crane index append` and `crane tag` for the second tag.
//   skopeo copy    `skopeo copy --all` of ko-annotate's OCI layout of the same image (to a fresh
//                  registry each time, so that its blob-info cache cannot turn uploads into mounts).
//   floor          `tar | gzip -N | sha256sum` of both binaries at once, N = our GZIP_LEVEL.
//   layers         ko-annotate's writeLayer on both binaries at once, in-process (bench/layers.mjs).
//   ours assemble  the CLI with --push=false: everything but the push (and but go build).
//   ours + SBOMs   ours push with the action's default `sbom: spdx` (an SPDX document per
//                  platform, pushed as its image's referrer), to a new repository: the SBOMs' cost.
//   no-op          ours and crane's push again to the repository they pushed to in this round.
//   start-up       `node dist/cli/index.js --help`; `node dist/index.js` (the action) with a
//                  minimal env until its first line of output. Reported, not a target: a step's
//                  start-up is tens of milliseconds in a job that spends its time in `go build`.
//   fan-out        docs/fan-out.md: the same image as `ours push`, by two CLI legs run in parallel
//                  (--fan-out=build, one platform each) and then the merge (--fan-out=merge), with
//                  the toolkit's artifact client talking to the test suite's stand-in of the
//                  artifact service (bench/artifact-service.mjs); `go build` is not in it either,
//                  and both legs share this machine, where on GitHub each has a runner of its own.
//   peak RSS       of the ko-annotate process itself during `ours push` (process.resourceUsage,
//                  via bench/rss-hook.mjs), and of its process tree (GNU time, includes `go list`).
//
// Node: ko-annotate runs under Node 24, the runtime action.yml declares (`runs.using: node24`),
// from BENCH_NODE or `npx -y node@24`; start-up is also timed under the Node running the bench.
//
// Environment: BENCH_LINK_MBIT / BENCH_LINK_RTT_MS (put the registry behind a link of that many
// Mbit/s each way and that round trip, default 20 ms, paid by every request and once more by a new connection: bench/link.mjs), BENCH_RUNS (paired runs, default 5), BENCH_LEVEL_REPS (gzip level study reps,
// default 3; 0 skips it), BENCH_DIST (the bundles to measure, default dist), BENCH_BASELINE_DIST
// (another ncc output, e.g. of an older commit: `git archive <commit> dist | tar -x -C /tmp/base`
// gives /tmp/base/dist; its push, no-op re-publish and start-up are timed in the same rounds,
// paired, and printed beside this bundle's). Writes .tmp/bench.json. Every process it starts is stopped before it
// exits; every loop is bounded.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateProgram, PACKAGE } from './genprog.mjs';
import { startLink } from './link.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tmp = join(root, '.tmp/bench');
const RUNS = bounded(process.env.BENCH_RUNS, 5, 1, 50);
const LEVEL_REPS = bounded(process.env.BENCH_LEVEL_REPS, 3, 0, 20);
const ARCHES = ['amd64', 'arm64'];
// The bundles measured: the committed dist/ unless BENCH_DIST names another ncc output (e.g. one
// built into .tmp from a work tree, to measure a change before dist/ is rebuilt).
const DIST = resolve(root, process.env.BENCH_DIST ?? 'dist');
// Optionally a second bundle (e.g. built from an older commit) timed in the same rounds, paired.
const BASELINE = process.env.BENCH_BASELINE_DIST ? resolve(root, process.env.BENCH_BASELINE_DIST) : undefined;
const CHILD_TIMEOUT_MS = 10 * 60_000;
// Optionally a slower link to the registry (bench/link.mjs): megabits per second each way, and
// a round trip (every request pays it). Unset: the registry is reached directly on loopback.
const LINK_MBIT = process.env.BENCH_LINK_MBIT ? bounded(process.env.BENCH_LINK_MBIT, 0, 1, 100_000) : undefined;
const LINK_RTT_MS = bounded(process.env.BENCH_LINK_RTT_MS, 20, 0, 1000);

function bounded(v, dflt, min, max) {
  const n = v === undefined || v === '' ? dflt : Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`expected an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
  return n;
}

const say = (s) => process.stderr.write(`bench: ${s}\n`);
const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return undefined;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// ---------------------------------------------------------------------------------------
// Child processes: every one is tracked and killed if the bench ends early.

const live = new Set();
function killAll() {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      // gone
    }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

/** Run a command to completion; resolves {code, stdout, stderr, ms}. Rejects on non-zero unless `allowFail`. */
function run(cmd, args, { env = process.env, cwd = root, allowFail = false, input } = {}) {
  return new Promise((resolvePromise, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      live.delete(child);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const r = { code: code ?? -1, signal, stdout, stderr, ms };
      if (r.code !== 0 && !allowFail) {
        reject(new Error(`${cmd} ${args.join(' ')} exited ${code ?? signal}:\n${stderr.slice(-4000)}${stdout.slice(-2000)}`));
      } else resolvePromise(r);
    });
  });
}

/** Run under GNU time: adds cpuMs (user + sys, including waited-for children) and treeRssKiB. */
async function timed(cmd, args, opts = {}) {
  const tf = join(tmp, `time-${randomBytes(4).toString('hex')}`);
  const r = await run('/usr/bin/time', ['-f', '%e %U %S %M', '-o', tf, cmd, ...args], opts);
  const [, user, sys, rss] = (await readFile(tf, 'utf8')).trim().split('\n').at(-1).split(' ').map(Number);
  await rm(tf, { force: true });
  return { ...r, cpuMs: (user + sys) * 1000, treeRssKiB: rss };
}

// ---------------------------------------------------------------------------------------
// The registry: docker-registry on 127.0.0.1, under a watchdog that holds our stdin pipe, so
// that it dies with us even if this process is killed (as __tests__/support/registry.ts does).

async function freePort() {
  const server = createServer();
  await new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(0, '127.0.0.1', res);
  });
  const { port } = server.address();
  await new Promise((res) => server.close(res));
  return port;
}

async function startRegistry(dir) {
  const host = `127.0.0.1:${await freePort()}`;
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    JSON.stringify({
      version: 0.1,
      log: { level: 'warn', accesslog: { disabled: true }, formatter: 'text' },
      storage: { filesystem: { rootdirectory: join(dir, 'storage') }, maintenance: { uploadpurging: { enabled: false } } },
      http: { addr: host, secret: randomBytes(16).toString('hex') },
    }),
  );
  const bin = existsSync('/usr/bin/docker-registry') ? '/usr/bin/docker-registry' : 'docker-registry';
  const script = '"$0" serve "$1" >"$2" 2>&1 </dev/null & pid=$!\nread -r _ || true\nkill "$pid" 2>/dev/null\nwait "$pid"';
  const child = spawn('bash', ['-c', script, bin, config, join(dir, 'registry.log')], { stdio: ['pipe', 'ignore', 'ignore'] });
  const stop = supervise(child);
  for (let i = 0; i < 200; i++) {
    try {
      const res = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) return { host, stop };
    } catch {
      // not yet listening
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`docker-registry did not come up on ${host}: ${await readFile(join(dir, 'registry.log'), 'utf8').catch(() => '')}`);
}

/**
 * Tracks a service child that exits when its stdin closes; returns its stop(): close stdin,
 * wait for the exit (SIGKILL after 5 s).
 */
function supervise(child) {
  live.add(child);
  child.stdin.on('error', () => {});
  const exited = new Promise((res) => child.once('exit', res));
  return async () => {
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    live.delete(child);
  };
}

/** Push an image with no layers whose config names a platform: crane's base, so its index gets platforms. */
async function pushPlatformBase(host, repo, tag, arch) {
  const config = Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: {} }));
  const digest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
  const post = await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (post.status !== 202) throw new Error(`POST upload: ${post.status}`);
  const loc = new URL(post.headers.get('location'), `http://${host}`);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, { method: 'PUT', body: config, headers: { 'Content-Type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`PUT blob: ${put.status} ${await put.text()}`);
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size: config.length }, layers: [] });
  const m = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
  if (m.status !== 201) throw new Error(`PUT manifest: ${m.status} ${await m.text()}`);
}

// ---------------------------------------------------------------------------------------
// Setup

async function setup() {
  await mkdir(tmp, { recursive: true });
  const crane = join(tmp, 'crane');
  say('installing what is missing (bench/install.sh)');
  await run('bash', [join(root, 'bench/install.sh'), crane], { env: process.env }).then((r) => r.stderr.trim() && process.stderr.write(r.stderr));
  const goBin = (await run('bash', ['-c', `. "${root}/scripts/go-path.sh"; command -v go`])).stdout.trim();
  const node = await actionNode();
  if (!goBin) throw new Error('no Go >= 1.23 found');
  for (const f of ['cli/index.js', 'index.js']) {
    if (!existsSync(join(DIST, f))) throw new Error(`${join(DIST, f)} is missing: run npm run build first`);
    if (BASELINE && !existsSync(join(BASELINE, f))) throw new Error(`BENCH_BASELINE_DIST: ${join(BASELINE, f)} is missing`);
  }

  // The program, as a git repository (ko-annotate reads the commit for its labels and tags).
  const prog = join(tmp, 'prog');
  await rm(prog, { recursive: true, force: true });
  await generateProgram(prog);
  const gitEnv = { ...process.env, GIT_AUTHOR_DATE: '2026-01-02T03:04:05Z', GIT_COMMITTER_DATE: '2026-01-02T03:04:05Z', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' };
  await run('git', ['init', '-q', '-b', 'main', '.'], { cwd: prog, env: gitEnv });
  await run('git', ['add', '-A'], { cwd: prog, env: gitEnv });
  await run('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@localhost', 'commit', '-qm', 'generated'], { cwd: prog, env: gitEnv });

  // go build, per platform, timed on its own (with whatever the Go build cache holds).
  const bin = join(tmp, 'bin');
  await mkdir(bin, { recursive: true });
  const goBuild = {};
  for (const arch of ARCHES) {
    say(`go build linux/${arch}`);
    const r = await timed(goBin, ['build', '-trimpath', '-o', join(bin, `app-${arch}`), PACKAGE], {
      cwd: prog,
      env: { ...process.env, CGO_ENABLED: '0', GOOS: 'linux', GOARCH: arch, GOTOOLCHAIN: 'local', GOFLAGS: '' },
    });
    goBuild[arch] = { ms: r.ms, cpuMs: r.cpuMs, bytes: (await stat(join(bin, `app-${arch}`))).size };
  }

  // The same bytes for crane and the floor: /ko-app/benchapp, mode 0555, owner 0, mtime 0.
  const tars = {};
  const stages = {};
  for (const arch of ARCHES) {
    const stage = join(tmp, `stage-${arch}`);
    await rm(stage, { recursive: true, force: true });
    await mkdir(join(stage, 'ko-app'), { recursive: true });
    await cp(join(bin, `app-${arch}`), join(stage, 'ko-app/benchapp'));
    await chmod(join(stage, 'ko-app/benchapp'), 0o555);
    stages[arch] = stage;
    tars[arch] = join(tmp, `app-${arch}.tar`);
    await run('tar', ['-C', stage, '-c', '-f', tars[arch], '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', 'ko-app']);
  }

  // writeLayer, compiled on its own from src/oci/layer.ts (the bundle does not export it).
  const tsc = join(tmp, 'tsc');
  await rm(tsc, { recursive: true, force: true });
  await run(join(root, 'node_modules/.bin/tsc'), ['--outDir', tsc, '--rootDir', join(root, 'src'), '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--types', 'node', '--skipLibCheck', '--strict', join(root, 'src/oci/layer.ts')]);
  const layerJs = join(tsc, 'oci/layer.js');
  const gzipLevel = (await import(`file://${layerJs}`)).GZIP_LEVEL;

  const dockerConfig = join(tmp, 'docker-config'); // empty: no credentials for anyone
  await mkdir(dockerConfig, { recursive: true });
  const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(GITHUB_|INPUT_|RUNNER_|KO_|ACTIONS_)/.test(k)));
  Object.assign(baseEnv, { DOCKER_CONFIG: dockerConfig, GOTOOLCHAIN: 'local', GOFLAGS: '' });
  const oursEnv = { ...baseEnv, KO_ANNOTATE_GO: join(root, 'bench/go-shim.sh'), KO_BENCH_PREBUILT: bin, KO_BENCH_REAL_GO: goBin, KO_ANNOTATE_OUTPUTS_JSON: 'true' };

  // The reference build: its layout is what skopeo copies; its config is what crane reproduces.
  const layout = join(tmp, 'layout');
  await rm(layout, { recursive: true, force: true });
  const ref = await run(node, [join(DIST, 'cli/index.js'), ...oursArgs('127.0.0.1:1/ref/benchapp', false), `--oci-layout-path=${layout}`], { cwd: prog, env: oursEnv });
  const meta = JSON.parse(ref.stdout);
  const blob = async (d) => JSON.parse(await readFile(join(layout, 'blobs/sha256', d.slice(7)), 'utf8'));
  const index = await blob(meta.digest);
  const image = await blob(index.manifests[0].digest);
  const config = await blob(image.config.digest);
  return { node, crane, goBin, goBuild, prog, bin, tars, stages, layerJs, gzipLevel, baseEnv, oursEnv, layout, meta, manifestAnnotations: image.annotations ?? {}, config };
}

const oursArgs = (repository, push, sbom = 'none') => ['build', PACKAGE, `--repository=${repository}`, '--base-image=scratch', '--platforms=linux/amd64,linux/arm64', `--push=${push}`, `--sbom=${sbom}`];

// ---------------------------------------------------------------------------------------
// Trials: each returns { ms, cpuMs, ... }.

function trials(s, host, artifacts) {
  const rssFile = join(tmp, 'rss.json');
  const cli = join(DIST, 'cli/index.js');
  const hook = `file://${join(root, 'bench/rss-hook.mjs')}`;
  const ours = async (repository, push, bundle = cli, sbom = 'none') => {
    await rm(rssFile, { force: true });
    const r = await timed(s.node, ['--import', hook, bundle, ...oursArgs(repository, push, sbom)], { cwd: s.prog, env: { ...s.oursEnv, KO_BENCH_RSS_FILE: rssFile } });
    const self = JSON.parse(await readFile(rssFile, 'utf8'));
    return { ms: r.ms, cpuMs: r.cpuMs, treeRssKiB: r.treeRssKiB, selfRssKiB: self.maxRssKiB, selfCpuMs: self.cpuMs, digest: JSON.parse(r.stdout).digest };
  };

  const c = s.config.config ?? {};
  const flags = (f, rec) => Object.entries(rec).flatMap(([k, v]) => [f, `${k}=${v}`]);
  const envFlags = (c.Env ?? []).flatMap((e) => ['-e', e]);
  const mutateFlags = [
    '--entrypoint', (c.Entrypoint ?? []).join(','),
    ...envFlags,
    ...flags('-l', c.Labels ?? {}),
    ...flags('-a', s.manifestAnnotations),
  ];
  const tags = s.meta.images[0].tags;
  const crane = async (repo) => {
    const t0 = process.hrtime.bigint();
    const steps = await Promise.all(
      ARCHES.map(async (arch) => {
        const a = await timed(s.crane, ['append', '--insecure', '-b', `${host}/base:${arch}`, '-f', s.tars[arch], '-t', `${host}/${repo}:${arch}-layer`], { env: s.baseEnv });
        const m = await timed(s.crane, ['mutate', '--insecure', `${host}/${repo}:${arch}-layer`, ...mutateFlags, '-t', `${host}/${repo}:${arch}`], { env: s.baseEnv });
        return [a, m];
      }),
    );
    const i = await timed(s.crane, ['index', 'append', '--insecure', ...ARCHES.flatMap((a) => ['-m', `${host}/${repo}:${a}`]), '-t', `${host}/${repo}:${tags[0]}`], { env: s.baseEnv });
    const rest = [];
    for (const t of tags.slice(1)) rest.push(await timed(s.crane, ['tag', '--insecure', `${host}/${repo}:${tags[0]}`, t], { env: s.baseEnv }));
    const all = [...steps.flat(), i, ...rest];
    return {
      ms: Number(process.hrtime.bigint() - t0) / 1e6,
      cpuMs: all.reduce((n, x) => n + x.cpuMs, 0),
      appendMs: median(steps.map(([a]) => a.ms)),
      mutateMs: median(steps.map(([, m]) => m.ms)),
      indexMs: i.ms,
    };
  };

  // docs/fan-out.md: two legs at once, then the merge; each a job of workflow run bench-<n>.
  const fanOut = async (n) => {
    const repository = `${host}/fanout-${n}/benchapp`;
    const job = (name, args) => {
      const env = { ...s.oursEnv, GITHUB_RUN_ID: `bench-${n}`, GITHUB_RUN_ATTEMPT: '1', GITHUB_JOB: name, ACTIONS_RESULTS_URL: artifacts.url, ACTIONS_RUNTIME_TOKEN: artifacts.tokens[`bench-${n}:${name}`] };
      return timed(s.node, [cli, 'build', PACKAGE, `--repository=${repository}`, '--base-image=scratch', '--push=true', '--sbom=none', ...args], { cwd: s.prog, env });
    };
    const t0 = process.hrtime.bigint();
    const legs = await Promise.all(ARCHES.map((a) => job(`build-${a}`, [`--platforms=linux/${a}`, '--fan-out=build'])));
    const legsMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const merge = await job('merge', [`--platforms=${ARCHES.map((a) => `linux/${a}`).join(',')}`, '--fan-out=merge']);
    // The artifact client logs to stdout too; the outputs are the last line.
    const outputs = JSON.parse(merge.stdout.trim().split('\n').at(-1));
    return { ms: Number(process.hrtime.bigint() - t0) / 1e6, cpuMs: [...legs, merge].reduce((x, r) => x + r.cpuMs, 0), legsMs, mergeMs: merge.ms, digest: outputs.digest };
  };

  return {
    fanOut,
    oursPush: (n) => ours(`${host}/ours-${n}/benchapp`, true),
    oursNoop: (n) => ours(`${host}/ours-${n}/benchapp`, true),
    // The action's default: an SPDX SBOM per platform image, pushed as its referrer.
    oursSbom: (n) => ours(`${host}/ours-sbom-${n}/benchapp`, true, cli, 'spdx'),
    basePush: (n) => ours(`${host}/baseline-${n}/benchapp`, true, join(BASELINE, 'cli/index.js')),
    baseNoop: (n) => ours(`${host}/baseline-${n}/benchapp`, true, join(BASELINE, 'cli/index.js')),
    oursAssemble: async () => {
      const r = await ours('127.0.0.1:1/unpushed/benchapp', false);
      return r;
    },
    cranePush: (n) => crane(`crane-${n}/benchapp`),
    craneNoop: (n) => crane(`crane-${n}/benchapp`),
    skopeo: async (n) => {
      // A registry of its own each time: skopeo's blob-info cache remembers where it pushed a
      // blob before and would mount it from there instead of uploading (85 ms instead of ~1 s).
      const dir = await mkdtemp(join(tmp, 'skopeo-registry-'));
      const own = await startRegistry(dir);
      try {
        const r = await timed('skopeo', ['copy', '--quiet', '--all', '--dest-tls-verify=false', `oci:${s.layout}:${tags[0]}`, `docker://${own.host}/skopeo-${n}/benchapp:${tags[0]}`], { env: s.baseEnv });
        return { ms: r.ms, cpuMs: r.cpuMs };
      } finally {
        await own.stop();
        await rm(dir, { recursive: true, force: true });
      }
    },
    floor: async () => {
      const pipe = ARCHES.map((a) => `(tar -C '${s.stages[a]}' -c --owner=0 --group=0 --numeric-owner --mtime=@0 ko-app | gzip -${s.gzipLevel} -n | sha256sum >/dev/null) &`).join('\n');
      const r = await timed('bash', ['-c', `set -o pipefail\n${pipe}\nwait`], { env: s.baseEnv });
      return { ms: r.ms, cpuMs: r.cpuMs };
    },
    layers: async () => {
      const out = await mkdtemp(join(tmp, 'layers-'));
      try {
        const r = await run(s.node, [join(root, 'bench/layers.mjs'), s.layerJs, out, ...ARCHES.map((a) => join(s.bin, `app-${a}`))]);
        const j = JSON.parse(r.stdout);
        return { ms: j.ms, cpuMs: j.cpuMs, selfRssKiB: j.maxRssKiB, sizes: j.layers.map((l) => l.size) };
      } finally {
        await rm(out, { recursive: true, force: true });
      }
    },
  };
}

async function startup(s, n) {
  // This bundle, then the baseline's (if any), timed in the same loop and in alternating order.
  const bundles = [DIST, ...(BASELINE ? [BASELINE] : [])];
  const one = async (node) => {
    const nodeBare = [];
    const per = bundles.map(() => ({ help: [], action: [], line: '' }));
    for (let i = 0; i < n; i++) {
      nodeBare.push((await run(node, ['-e', '0'])).ms);
      const order = i % 2 ? [...per.keys()].reverse() : [...per.keys()];
      for (const b of order) {
        per[b].help.push((await run(node, [join(bundles[b], 'cli/index.js'), '--help'])).ms);
        const r = await firstOutput(node, [join(bundles[b], 'index.js')], { PATH: process.env.PATH, HOME: tmp });
        per[b].action.push(r.ms);
        per[b].line = r.line;
      }
    }
    const summary = (p) => ({ helpMs: median(p.help), actionFirstLineMs: median(p.action), actionFirstLine: p.line.slice(0, 160) });
    return { node: (await run(node, ['--version'])).stdout.trim(), nodeBareMs: median(nodeBare), ...summary(per[0]), baseline: per[1] && summary(per[1]) };
  };
  const main = await one(s.node);
  return { ...main, host: s.node === process.execPath ? undefined : await one(process.execPath) };
}

/**
 * The artifact service's stand-in (bench/artifact-service.mjs) under `node`, with a runtime token
 * for each job of each round's fan-out: `{ url, tokens, stop }`.
 */
async function startArtifactService(node) {
  const pairs = Array.from({ length: RUNS }, (_, i) => [...ARCHES.map((a) => `build-${a}`), 'merge'].map((job) => `bench-${i + 1}:${job}`)).flat();
  const child = spawn(node, [join(root, 'bench/artifact-service.mjs'), ...pairs], { stdio: ['pipe', 'pipe', 'inherit'] });
  const stop = supervise(child);
  const first = await new Promise((res, rej) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) res(buf.split('\n')[0]);
    });
    child.once('exit', (code) => rej(new Error(`bench/artifact-service.mjs exited ${code} (it needs Node 24's type stripping)`)));
  });
  return { ...JSON.parse(first), stop };
}

/** Node 24 (action.yml's runtime): BENCH_NODE, else the binary `npx -y node@24` runs. */
async function actionNode() {
  if (process.env.BENCH_NODE) return process.env.BENCH_NODE;
  const r = await run('npx', ['-y', 'node@24', '-p', 'process.execPath'], { allowFail: true });
  const path = r.stdout.trim().split('\n').at(-1);
  if (r.code === 0 && path && existsSync(path)) return path;
  say(`no Node 24 (npx -y node@24 failed); measuring under ${process.version}, which is not the action's runtime`);
  return process.execPath;
}

/** Time from spawn to the first complete line on stdout or stderr; the process is then waited for (killed after 10 s). */
function firstOutput(cmd, args, env) {
  return new Promise((resolvePromise, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let first;
    let buf = '';
    const on = (d) => {
      buf += d;
      if (first === undefined && buf.includes('\n')) first = { ms: Number(process.hrtime.bigint() - t0) / 1e6, line: buf.split('\n')[0] };
    };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      live.delete(child);
      if (first) resolvePromise(first);
      else reject(new Error(`${cmd} ${args.join(' ')} printed no line`));
    });
  });
}

// ---------------------------------------------------------------------------------------

async function main() {
  const s = await setup();
  const registryDir = await mkdtemp(join(tmp, 'registry-'));
  const registry = await startRegistry(registryDir);
  const link = LINK_MBIT ? await startLink(registry.host, { mbit: LINK_MBIT, rttMs: LINK_RTT_MS }) : undefined;
  if (link) say(`the registry is behind a ${LINK_MBIT} Mbit/s link with a ${LINK_RTT_MS} ms round trip (skopeo's own registries are not)`);
  const results = { rounds: [] };
  let artifacts;
  try {
    const host = link?.host ?? registry.host;
    for (const a of ARCHES) await pushPlatformBase(host, 'base', a, a);
    artifacts = await startArtifactService(s.node);
    const t = trials(s, host, artifacts);

    let levels;
    if (LEVEL_REPS > 0) {
      say(`gzip settings on the amd64 binary (${LEVEL_REPS} reps each)`);
      levels = JSON.parse((await run(s.node, [join(root, 'bench/levels.mjs'), join(s.bin, 'app-amd64'), String(LEVEL_REPS), '1', '1/w14/m9', '1/w13/m9', '1/w12/m9', '4/w13/m9', '6'])).stdout);
    }

    for (let n = 1; n <= RUNS; n++) {
      // Alternate the order so that neither tool always runs on a warmer (or busier) machine.
      const push = ['oursPush', 'cranePush', 'oursSbom', 'fanOut', 'skopeo', 'floor', 'layers', 'oursAssemble', ...(BASELINE ? ['basePush'] : [])];
      const noop = ['oursNoop', 'craneNoop', ...(BASELINE ? ['baseNoop'] : [])];
      if (n % 2 === 0) {
        push.reverse();
        noop.reverse();
      }
      const round = { n, load: loadavg()[0] };
      for (const k of [...push, ...noop]) round[k] = await t[k](n);
      say(`round ${n}/${RUNS}: ours ${ms(round.oursPush.ms)} (with SBOMs ${ms(round.oursSbom.ms)}, fan-out ${ms(round.fanOut.ms)}) crane ${ms(round.cranePush.ms)} skopeo ${ms(round.skopeo.ms)} floor ${ms(round.floor.ms)} layers ${ms(round.layers.ms)} | no-op ours ${ms(round.oursNoop.ms)} crane ${ms(round.craneNoop.ms)}${BASELINE ? ` | baseline push ${ms(round.basePush.ms)} no-op ${ms(round.baseNoop.ms)}` : ''} | load ${round.load.toFixed(1)}`);
      results.rounds.push(round);
    }
    const digests = new Set(results.rounds.flatMap((r) => [r.oursPush.digest, r.oursNoop.digest, r.oursAssemble.digest, r.oursSbom.digest, r.fanOut.digest]));
    if (digests.size !== 1 || !digests.has(s.meta.digest)) throw new Error(`ko-annotate's digest changed between runs: ${[...digests].join(', ')}`);
    const craneIndex = JSON.parse((await run(s.crane, ['manifest', '--insecure', `${host}/crane-1/benchapp:${s.meta.images[0].tags[0]}`], { env: s.baseEnv })).stdout);

    say(`start-up (${Math.max(RUNS, 10)} runs)`);
    const start = await startup(s, Math.max(RUNS, 10));
    await report(s, results, levels, start, craneIndex);
  } finally {
    await artifacts?.stop();
    await link?.close();
    await registry.stop();
    await rm(registryDir, { recursive: true, force: true });
  }
}

const ms = (x) => (x === undefined ? '—' : `${Math.round(x)} ms`);
const ratio = (a, b) => (a === undefined || !b ? '—' : (a / b).toFixed(2));

function report(s, results, levels, start, craneIndex) {
  const rounds = results.rounds;
  const med = (k, f = 'ms') => median(rounds.map((r) => r[k]?.[f]));
  const pairs = (a, b, f = 'ms') => median(rounds.map((r) => r[a][f] / r[b][f]));
  const m = {
    oursPush: med('oursPush'), cranePush: med('cranePush'), skopeo: med('skopeo'), floor: med('floor'), layers: med('layers'),
    oursAssemble: med('oursAssemble'), oursNoop: med('oursNoop'), craneNoop: med('craneNoop'), oursSbom: med('oursSbom'), fanOut: med('fanOut'),
  };
  const cpu = Object.fromEntries(Object.keys(m).map((k) => [k, med(k, 'cpuMs')]));
  const selfRssMiB = Math.max(...rounds.map((r) => r.oursPush.selfRssKiB)) / 1024;
  const treeRssMiB = Math.max(...rounds.map((r) => r.oursPush.treeRssKiB)) / 1024;
  const targets = [
    { target: 'assemble+push ≤ 0.7× crane', value: pairs('oursPush', 'cranePush'), limit: 0.7 },
    { target: 'no-op re-publish ≤ 0.5× crane', value: pairs('oursNoop', 'craneNoop'), limit: 0.5 },
    // MB as in the issue: 10^6 bytes (150 MB is 143 MiB).
    { target: 'peak RSS ≤ 150 MB (ko-annotate process, 10^6 bytes)', value: (selfRssMiB * 1048576) / 1e6, limit: 150 },
    { target: 'layers (writeLayer) ≤ 1.2× floor', value: pairs('layers', 'floor'), limit: 1.2 },
  ].map((t) => ({ ...t, met: t.value !== undefined && t.value <= t.limit }));

  const rows = [
    ['ours: assemble+push (CLI, 2 platforms)', m.oursPush, cpu.oursPush, ''],
    ['crane: append+mutate+index append+tag', m.cranePush, cpu.cranePush, `ours/crane ${ratio(m.oursPush, m.cranePush)} (paired ${pairs('oursPush', 'cranePush').toFixed(2)})`],
    ['ours: assemble+push with SBOMs (the default)', m.oursSbom, cpu.oursSbom, `ours with/without SBOMs ${pairs('oursSbom', 'oursPush').toFixed(2)} (paired)`],
    ['ours: fan-out, 2 legs in parallel + merge', m.fanOut, cpu.fanOut, `fan-out/one job ${pairs('fanOut', 'oursPush').toFixed(2)} (paired); legs ${ms(med('fanOut', 'legsMs'))}, merge ${ms(med('fanOut', 'mergeMs'))}`],
    ['skopeo copy of our OCI layout', m.skopeo, cpu.skopeo, `ours/skopeo ${ratio(m.oursPush, m.skopeo)}`],
    [`floor: tar | gzip -${s.gzipLevel} | sha256sum (both)`, m.floor, cpu.floor, ''],
    ['ours: writeLayer ×2, in-process', m.layers, cpu.layers, `ours/floor ${ratio(m.layers, m.floor)} (paired ${pairs('layers', 'floor').toFixed(2)})`],
    ['ours: CLI --push=false (all but push)', m.oursAssemble, cpu.oursAssemble, `ours/floor ${ratio(m.oursAssemble, m.floor)}`],
    ['ours: no-op re-publish', m.oursNoop, cpu.oursNoop, ''],
    ['crane: no-op re-publish', m.craneNoop, cpu.craneNoop, `ours/crane ${ratio(m.oursNoop, m.craneNoop)} (paired ${pairs('oursNoop', 'craneNoop').toFixed(2)})`],
    [`node -e 0 (reference), ${start.node}`, start.nodeBareMs, undefined, ''],
    [`node dist/cli/index.js --help, ${start.node}`, start.helpMs, undefined, ''],
    [`node dist/index.js → first line, ${start.node}`, start.actionFirstLineMs, undefined, ''],
    ...(start.host
      ? [
          [`node -e 0 (reference), ${start.host.node}`, start.host.nodeBareMs, undefined, ''],
          [`node dist/cli/index.js --help, ${start.host.node}`, start.host.helpMs, undefined, ''],
          [`node dist/index.js → first line, ${start.host.node}`, start.host.actionFirstLineMs, undefined, ''],
        ]
      : []),
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  const out = [];
  if (LINK_MBIT) out.push(`\nregistry behind a ${LINK_MBIT} Mbit/s link, ${LINK_RTT_MS} ms round trip (bench/link.mjs)`);
  out.push(`\nko-annotate bench: ${RUNS} paired runs, medians; ko-annotate under Node ${start.node}; ${cpus().length} CPUs; load avg at start of rounds ${rounds.map((r) => r.load.toFixed(1)).join(', ')}`);
  out.push(`binaries: ${Object.entries(s.goBuild).map(([a, g]) => `${a} ${(g.bytes / 1e6).toFixed(1)} MB (go build ${ms(g.ms)})`).join(', ')}; layers ${rounds[0].layers.sizes.map((x) => `${(x / 1e6).toFixed(1)} MB`).join(', ')} at gzip level ${s.gzipLevel}`);
  out.push('');
  out.push(`${'what'.padEnd(w)}  ${'wall'.padStart(9)}  ${'cpu'.padStart(9)}  ratio`);
  for (const [name, wall, c, r] of rows) out.push(`${name.padEnd(w)}  ${ms(wall).padStart(9)}  ${ms(c).padStart(9)}  ${r}`);
  out.push('');
  out.push(`peak RSS: ko-annotate process ${selfRssMiB.toFixed(0)} MiB (${((selfRssMiB * 1048576) / 1e6).toFixed(0)} MB); its process tree (GNU time, includes go list) ${treeRssMiB.toFixed(0)} MiB`);
  out.push(`bundles: dist/index.js ${(bundleSize('index.js') / 1e6).toFixed(2)} MB, dist/cli/index.js ${(bundleSize('cli/index.js') / 1e6).toFixed(2)} MB; action's first line: ${start.actionFirstLine}`);
  if (BASELINE) out.push('', ...beforeAfter(rounds, start, selfRssMiB));
  if (levels) {
    out.push('');
    out.push('gzip settings (Node zlib, amd64 binary, streaming; level/wWINDOWBITS/mMEMLEVEL): setting  size  ratio  wall  cpu');
    for (const l of levels) out.push(`  ${l.setting.padEnd(9)}  ${(l.bytes / 1e6).toFixed(2)} MB  ${(l.ratio * 100).toFixed(2)}%  ${ms(l.ms)}  ${ms(l.cpuMs)}`);
  }
  out.push('');
  out.push('targets:');
  for (const t of targets) out.push(`  ${t.met ? 'met    ' : 'NOT met'}  ${t.target}: ${t.value === undefined ? '—' : t.value.toFixed(2)}`);
  const craneP = (craneIndex.manifests ?? []).map((d) => (d.platform ? `${d.platform.os}/${d.platform.architecture}` : 'none'));
  out.push(`crane's index platforms: ${craneP.join(', ')}; ko-annotate digest stable across all runs: ${s.meta.digest}`);
  process.stdout.write(out.join('\n') + '\n');

  const json = {
    when: new Date().toISOString(),
    runs: RUNS,
    cpus: cpus().length,
    node: start.node,
    benchNode: process.version,
    link: LINK_MBIT ? { mbit: LINK_MBIT, rttMs: LINK_RTT_MS } : undefined,
    gzipLevel: s.gzipLevel,
    goBuild: s.goBuild,
    medians: { wallMs: m, cpuMs: cpu },
    ratios: {
      pushOursOverCrane: m.oursPush / m.cranePush,
      pushOursOverCranePaired: pairs('oursPush', 'cranePush'),
      noopOursOverCrane: m.oursNoop / m.craneNoop,
      noopOursOverCranePaired: pairs('oursNoop', 'craneNoop'),
      layersOverFloor: m.layers / m.floor,
      layersOverFloorPaired: pairs('layers', 'floor'),
      cliAssembleOverFloor: m.oursAssemble / m.floor,
      pushOursOverSkopeo: m.oursPush / m.skopeo,
      fanOutOverOneJobPaired: pairs('fanOut', 'oursPush'),
    },
    baseline: BASELINE && {
      dist: BASELINE,
      pushMs: med('basePush'),
      noopMs: med('baseNoop'),
      pushCpuMs: med('basePush', 'cpuMs'),
      selfRssMiB: Math.max(...rounds.map((r) => r.basePush.selfRssKiB)) / 1024,
      pushOursOverBaselinePaired: pairs('oursPush', 'basePush'),
      noopOursOverBaselinePaired: pairs('oursNoop', 'baseNoop'),
      startup: start.baseline,
      sameDigest: rounds.every((r) => r.basePush.digest === s.meta.digest && r.baseNoop.digest === s.meta.digest),
      bundles: { action: bundleSize('index.js', BASELINE), cli: bundleSize('cli/index.js', BASELINE) },
    },
    startup: start,
    peakRss: { selfMiB: selfRssMiB, treeMiB: treeRssMiB },
    bundles: { action: bundleSize('index.js'), cli: bundleSize('cli/index.js') },
    levels,
    targets,
    craneIndexPlatforms: craneP,
    digest: s.meta.digest,
    rounds,
  };
  return writeFile(join(root, '.tmp/bench.json'), JSON.stringify(json, null, 2) + '\n').then(() => say('wrote .tmp/bench.json'));
}

/**
 * This bundle beside the baseline's (BENCH_BASELINE_DIST): medians of the same rounds, and the
 * median of the per-round ratios for what was timed in pairs. Start-up is reported, not a target.
 */
function beforeAfter(rounds, start, selfRssMiB) {
  const med = (k, f = 'ms') => median(rounds.map((r) => r[k]?.[f]));
  const pairs = (a, b, f = 'ms') => median(rounds.map((r) => r[a][f] / r[b][f])).toFixed(2);
  const baseRssMiB = Math.max(...rounds.map((r) => r.basePush.selfRssKiB)) / 1024;
  const mib = (x) => `${x.toFixed(0)} MiB`;
  const rows = [
    ['assemble+push, wall', ms(med('basePush')), ms(med('oursPush')), `${pairs('oursPush', 'basePush')} (paired)`],
    ['assemble+push, cpu', ms(med('basePush', 'cpuMs')), ms(med('oursPush', 'cpuMs')), `${pairs('oursPush', 'basePush', 'cpuMs')} (paired)`],
    ['no-op re-publish, wall', ms(med('baseNoop')), ms(med('oursNoop')), `${pairs('oursNoop', 'baseNoop')} (paired)`],
    ['no-op re-publish, cpu', ms(med('baseNoop', 'cpuMs')), ms(med('oursNoop', 'cpuMs')), `${pairs('oursNoop', 'baseNoop', 'cpuMs')} (paired)`],
    ['peak RSS of the push (ko-annotate process)', mib(baseRssMiB), mib(selfRssMiB), ratio(selfRssMiB, baseRssMiB)],
    [`start-up: cli --help, ${start.node}`, ms(start.baseline.helpMs), ms(start.helpMs), ratio(start.helpMs, start.baseline.helpMs)],
    [`start-up: action → first line, ${start.node}`, ms(start.baseline.actionFirstLineMs), ms(start.actionFirstLineMs), ratio(start.actionFirstLineMs, start.baseline.actionFirstLineMs)],
    ['bundle: dist/index.js', `${(bundleSize('index.js', BASELINE) / 1e6).toFixed(2)} MB`, `${(bundleSize('index.js') / 1e6).toFixed(2)} MB`, ratio(bundleSize('index.js'), bundleSize('index.js', BASELINE))],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  const same = rounds.every((r) => r.basePush.digest === r.oursPush.digest && r.baseNoop.digest === r.oursPush.digest);
  return [
    `this bundle (${DIST}) beside the baseline (${BASELINE}); start-up is reported, not a target:`,
    `${'what'.padEnd(w)}  ${'baseline'.padStart(10)}  ${'this'.padStart(10)}  this/baseline`,
    ...rows.map(([name, b, t, r]) => `${name.padEnd(w)}  ${b.padStart(10)}  ${t.padStart(10)}  ${r}`),
    `same image digest from both bundles: ${same ? 'yes' : `no (baseline ${rounds[0].basePush.digest})`}`,
  ];
}

const bundleSize = (f, dist = DIST) => {
  try {
    return statSync(join(dist, f)).size;
  } catch {
    return NaN;
  }
};

main().catch((err) => {
  process.stderr.write(`bench: ${err.stack ?? err}\n`);
  killAll();
  process.exitCode = 1;
});
