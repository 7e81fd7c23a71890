// Runs the action the way the GitHub Actions runner does: `node24 dist/index.js` in a child
// process, with the runner's environment (INPUT_* from action.yml's defaults and the step's
// `with:`, the recorded GITHUB_* variables, GITHUB_EVENT_PATH, GITHUB_OUTPUT, …), and reads back
// what the runner would: the exit code, the log, the outputs file and the step summary.
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { exampleDir, repoRoot } from './engine.js';
import { loadEvent } from './events.js';
import type { TestRegistry } from './registry.js';

const exec = promisify(execFile);

export const actionEntry = join(repoRoot, 'dist', 'index.js');
const RUN_TIMEOUT_MS = 300_000;

/** An event as the runner sees it: its GITHUB_* variables and the payload it writes to GITHUB_EVENT_PATH. */
export interface RunnerEvent {
  env: Record<string, string>;
  payload: unknown;
}

export interface RunActionOptions {
  /** A fixture name from __tests__/fixtures/events, or an event built by the test. */
  event: string | RunnerEvent;
  /** The step's `with:`; keys are input names as in action.yml. They win over the defaults. */
  inputs?: Record<string, string>;
  /** Its password is what `${{ github.token }}` stands for. */
  registry?: TestRegistry;
  /** GITHUB_WORKSPACE: a git checkout (see createWorkspace). */
  workspace: string;
  /** Added last: they win over everything else. `undefined` removes a variable. */
  extraEnv?: Record<string, string | undefined>;
  /** Answers for the loopback GitHub API; default: 404 for everything. */
  api?: (path: string) => { status: number; body: unknown } | undefined;
}

export interface ApiRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

export interface ActionRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** GITHUB_OUTPUT, parsed. */
  outputs: Record<string, string>;
  /** GITHUB_OUTPUT exactly as written. */
  outputsFile: string;
  /** GITHUB_STEP_SUMMARY. */
  summary: string;
  /** Requests that reached the loopback GITHUB_API_URL. */
  apiRequests: ApiRequest[];
  /** The environment the action ran with (for diagnostics; holds the token). */
  env: Record<string, string>;
}

// ---------------------------------------------------------------------------------------
// Node 24, as `runs.using: node24` asks

let node24: Promise<string> | undefined;

/**
 * The path of a Node 24 binary: `npx -y node@24` fetches it from the npm registry once, then
 * its path is reused, so each run starts node directly as the runner does.
 */
export function node24Path(): Promise<string> {
  node24 ??= (async () => {
    const { stdout } = await exec('npx', ['-y', 'node@24', '-p', 'process.execPath'], { timeout: 180_000 });
    const path = stdout.trim().split('\n').pop()!.trim();
    const { stdout: version } = await exec(path, ['--version']);
    if (!/^v24\./.test(version.trim())) throw new Error(`npx node@24 gave ${path}, which is ${version.trim()}`);
    return path;
  })();
  return node24;
}

// ---------------------------------------------------------------------------------------
// Inputs

interface ActionYml {
  inputs: Record<string, { default?: string }>;
}

/** `INPUT_<NAME>` as the runner names it: upper case, spaces to `_`, hyphens kept. */
export const inputVariable = (name: string): string => `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;

/** action.yml's inputs with their defaults, `${{ github.actor }}` and `${{ github.token }}` resolved. */
export async function defaultInputs(github: { actor: string; token: string }): Promise<Record<string, string>> {
  const yml = parseYaml(await readFile(join(repoRoot, 'action.yml'), 'utf8')) as ActionYml;
  const out: Record<string, string> = {};
  for (const [name, spec] of Object.entries(yml.inputs)) {
    const raw = spec.default === undefined || spec.default === null ? '' : String(spec.default);
    out[name] = raw.replace(/\$\{\{\s*github\.(\w+)\s*\}\}/g, (expr, key: string) => {
      if (key === 'actor') return github.actor;
      if (key === 'token') return github.token;
      throw new Error(`action.yml default ${expr} of input ${name} is not one this runner knows`);
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The workspace

export interface Workspace {
  dir: string;
  /** The real commit at HEAD. */
  head: string;
  /** The committer time given to the commit (RFC 3339 with offset). */
  commitTime: string;
  cleanup(): Promise<void>;
}

/**
 * GITHUB_WORKSPACE as actions/checkout leaves it: a git repository whose HEAD holds the
 * example module (examples/hello, or `example`) at its root. The recorded events name fixed SHAs that no real commit can
 * have, so `pinCommit` makes git answer for them with this commit (a replace ref), as the
 * checkout of that SHA would.
 */
export async function createWorkspace(commitTime = '2026-01-05T10:20:30+01:00', example = exampleDir): Promise<Workspace> {
  const dir = await mkdtemp(join(tmpdir(), 'ko-annotate-workspace-'));
  try {
    await cp(example, dir, { recursive: true });
    const env = {
      ...process.env,
      GIT_AUTHOR_NAME: 'Mona Lisa',
      GIT_AUTHOR_EMAIL: 'mona@example.com',
      GIT_COMMITTER_NAME: 'Mona Lisa',
      GIT_COMMITTER_EMAIL: 'mona@example.com',
      GIT_AUTHOR_DATE: commitTime,
      GIT_COMMITTER_DATE: commitTime,
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_CONFIG_NOSYSTEM: '1',
    };
    const git = (...args: string[]) => exec('git', args, { cwd: dir, env });
    await git('init', '-q', '-b', 'main');
    await git('add', '-A');
    await git('commit', '-q', '-m', 'hello');
    const head = (await git('rev-parse', 'HEAD')).stdout.trim();
    return { dir, head, commitTime, cleanup: () => rm(dir, { recursive: true, force: true }) };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Make `sha` name the workspace's HEAD commit for git (`refs/replace/<sha>`). */
export async function pinCommit(workspace: string, sha: string): Promise<void> {
  const head = (await exec('git', ['rev-parse', 'HEAD'], { cwd: workspace })).stdout.trim();
  if (sha === head) return;
  await exec('git', ['update-ref', `refs/replace/${sha}`, head], { cwd: workspace });
}

// ---------------------------------------------------------------------------------------
// GITHUB_OUTPUT

/**
 * The runner's file commands format: `name<<DELIMITER\nvalue\nDELIMITER` (what @actions/core
 * writes) or `name=value` on one line. A name given twice keeps the last value, as the runner does.
 */
export function parseOutputFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    const eq = line.indexOf('=');
    if (heredoc && (eq < 0 || eq > line.indexOf('<<'))) {
      const [, name, delim] = heredoc;
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== delim; i++) value.push(lines[i]);
      if (i >= lines.length) throw new Error(`GITHUB_OUTPUT: ${name} has no closing delimiter ${delim}`);
      out[name] = value.join('\n');
    } else if (eq > 0) {
      out[line.slice(0, eq)] = line.slice(eq + 1);
    } else {
      throw new Error(`GITHUB_OUTPUT: cannot read line ${JSON.stringify(line)}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The run

let goEnv: Promise<{ bin: string; cache: string }> | undefined;

/**
 * The Go that tests use (Debian's versioned Go is not on PATH, so /usr/lib/go-1.23/bin goes
 * first) and its build cache, which runs share as setup-go's cache would.
 */
export function goEnvironment(): Promise<{ bin: string; cache: string }> {
  goEnv ??= exec('go', ['env', 'GOROOT', 'GOCACHE'], { env: { ...process.env, PATH: `/usr/lib/go-1.23/bin${delimiter}${process.env.PATH ?? ''}` } }).then(
    ({ stdout }) => {
      const [root, cache] = stdout.trim().split('\n');
      return { bin: join(root, 'bin'), cache };
    },
  );
  return goEnv;
}

export async function runAction(o: RunActionOptions): Promise<ActionRun> {
  const event = typeof o.event === 'string' ? loadEvent(o.event) : o.event;
  const tmp = await mkdtemp(join(tmpdir(), 'ko-annotate-runner-'));
  const apiRequests: ApiRequest[] = [];
  const api = createServer((req, res) => {
    apiRequests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    const answer = o.api?.(req.url ?? '') ?? { status: 404, body: { message: 'Not Found' } };
    const bytes = Buffer.from(JSON.stringify(answer.body));
    res.writeHead(answer.status, { 'Content-Type': 'application/json', 'Content-Length': bytes.length });
    res.end(bytes);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      api.once('error', reject);
      api.listen(0, '127.0.0.1', () => resolve());
    });
    const apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;

    const runnerTemp = join(tmp, 'runner-temp');
    const home = join(tmp, 'home');
    const fileCommands = join(tmp, 'file-commands');
    await Promise.all([mkdir(runnerTemp), mkdir(home), mkdir(fileCommands), mkdir(join(tmp, 'docker'))]);
    const outputPath = join(fileCommands, `set_output_${randomBytes(8).toString('hex')}`);
    const summaryPath = join(fileCommands, `step_summary_${randomBytes(8).toString('hex')}`);
    await writeFile(outputPath, '');
    await writeFile(summaryPath, '');
    const eventPath = join(tmp, 'event.json');
    await writeFile(eventPath, JSON.stringify(event.payload, null, 2));

    // The checkout holds the commit the event names (the PR head too, for pull requests).
    const pr = (event.payload as { pull_request?: { head?: { sha?: string } } }).pull_request;
    for (const sha of [event.env.GITHUB_SHA, pr?.head?.sha]) if (sha) await pinCommit(o.workspace, sha);

    const token = o.registry?.password ?? '';
    const inputs = { ...(await defaultInputs({ actor: event.env.GITHUB_ACTOR ?? '', token })), ...o.inputs };
    const go = await goEnvironment();
    const node = await node24Path();

    // A runner's environment, not this process's: nothing (SOURCE_DATE_EPOCH, KO_*, a Docker
    // login in ~/.docker) leaks in from the machine running the tests; SOURCE_DATE_EPOCH is
    // unset, so the created time comes from the payload or git.
    const env: Record<string, string> = {
      PATH: [dirname(node), go.bin, '/usr/local/bin', '/usr/bin', '/bin'].join(delimiter),
      HOME: home,
      LANG: 'C.UTF-8',
      // The Go build cache is shared between runs (as setup-go's cache would be); no module
      // downloads: the example has none, and nothing may leave the machine.
      GOCACHE: go.cache,
      GOPATH: join(tmp, 'gopath'),
      GOPROXY: 'off',
      GOTOOLCHAIN: 'local',
      GOFLAGS: '-modcacherw',
      DOCKER_CONFIG: join(tmp, 'docker'),
      ...event.env,
      GITHUB_EVENT_PATH: eventPath,
      GITHUB_WORKSPACE: o.workspace,
      GITHUB_API_URL: apiUrl,
      GITHUB_OUTPUT: outputPath,
      GITHUB_STEP_SUMMARY: summaryPath,
      GITHUB_ACTIONS: 'true',
      GITHUB_ACTION: '__self',
      GITHUB_ACTION_PATH: repoRoot,
      RUNNER_TEMP: runnerTemp,
      RUNNER_TOOL_CACHE: join(tmp, 'toolcache'),
      RUNNER_OS: 'Linux',
      CI: 'true',
    };
    for (const [name, value] of Object.entries(inputs)) env[inputVariable(name)] = value;
    for (const [name, value] of Object.entries(o.extraEnv ?? {})) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }

    const child = spawn(node, [actionEntry], { cwd: o.workspace, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c, s) => resolve([c, s]));
    });
    clearTimeout(timer);
    const outputsFile = await readFile(outputPath, 'utf8');
    return {
      code,
      signal,
      stdout,
      stderr,
      outputs: parseOutputFile(outputsFile),
      outputsFile,
      summary: await readFile(summaryPath, 'utf8'),
      apiRequests,
      env,
    };
  } finally {
    await new Promise<void>((resolve) => {
      api.close(() => resolve());
      api.closeAllConnections();
    });
    await rm(tmp, { recursive: true, force: true });
  }
}

/** A stable fake commit SHA for events the fixtures do not record (`v1.3.0`, …). */
export const fakeSha = (seed: string): string => createHash('sha1').update(seed).digest('hex');
