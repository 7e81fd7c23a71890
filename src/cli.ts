import { parseArgs } from 'node:util';
import { GoBuildError } from './gobuild/go.js';
import { explainFailure } from './explain.js';
import { runnerContext } from './github/context.js';
import { runJob } from './job.js';
import { INPUT_NAMES, parseInputs, type InputName, type RawInputs } from './inputs.js';
import type { Logger } from './log.js';
import { outputsOf, summaryMarkdown } from './outputs.js';

export const USAGE = `usage: ko-annotate build [PACKAGE ...] [--INPUT=VALUE ...]

Builds Go main packages into OCI images and publishes them, like the GitHub Action.
Every action input is a flag of the same name (--platforms, --push, --oci-layout-path,
--repository, --base-image, --tags, --labels, ...). --labels, --annotations, --tags,
--ldflags, --flags and --env may be repeated. The registry token is never a flag: set
KO_ANNOTATE_TOKEN, or log in so that ~/.docker/config.json has credentials. Nor is the
github-token: in a workflow step the CLI reads it from GITHUB_TOKEN.

  ko-annotate build ./cmd/app --push=false --oci-layout-path out
`;

const REPEATABLE = new Set<InputName>(['labels', 'annotations', 'tags', 'flavor', 'ldflags', 'flags', 'env', 'packages', 'platforms']);

/** Parse the command line into the same raw record the action reads from its inputs. */
export function parseCommandLine(argv: readonly string[], env: Record<string, string | undefined>): RawInputs | 'help' {
  const flagNames = INPUT_NAMES.filter((n) => n !== 'token' && n !== 'github-token');
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      ...Object.fromEntries(flagNames.map((n) => [n, { type: 'string', multiple: REPEATABLE.has(n) }])),
    },
  });
  if (values.help) return 'help';
  const [command, ...packages] = positionals;
  if (command !== 'build') throw new Error(command ? `unknown command ${JSON.stringify(command)}\n\n${USAGE}` : USAGE);
  const raw: RawInputs = {};
  for (const n of flagNames) {
    const v = (values as Record<string, string | string[] | undefined>)[n];
    if (v !== undefined) raw[n] = Array.isArray(v) ? v.join('\n') : v;
  }
  if (packages.length) raw.packages = [raw.packages, ...packages].filter(Boolean).join('\n');
  raw.token = env.KO_ANNOTATE_TOKEN ?? '';
  if (env.GITHUB_TOKEN) raw['github-token'] = env.GITHUB_TOKEN;
  return raw;
}

/** A logger for terminals: everything to stderr, so stdout carries only the references. */
export function streamLogger(write: (s: string) => void): Logger {
  return {
    info: (m) => write(`${m}\n`),
    warning: (m, w) => write(`warning: ${w?.file ? `${w.file}:${w.startLine ?? 0}: ` : ''}${m}\n`),
    error: (m, w) => write(`error: ${w?.file ? `${w.file}:${w.startLine ?? 0}:${w.startColumn ?? 0}: ` : ''}${m}\n`),
    debug: () => {},
    group: async (name, fn) => {
      write(`── ${name}\n`);
      return fn();
    },
    section: (name, lines) => write(`── ${name}\n${lines.map((l) => `${l}\n`).join('')}`),
  };
}

/** Run the CLI; returns the exit code. `io.signal`: aborted on Ctrl-C (src/cancel.ts). */
export async function cli(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  io: { out: (s: string) => void; err: (s: string) => void; cwd: string; signal?: AbortSignal },
): Promise<number> {
  const logger = streamLogger(io.err);
  try {
    const raw = parseCommandLine(argv, env);
    if (raw === 'help') {
      io.out(USAGE);
      return 0;
    }
    const inputs = parseInputs(raw);
    const workspace = io.cwd;
    // Run from a workflow step, the CLI reads the event as the action does (a pull request's
    // revision is its head, not GITHUB_SHA's merge commit).
    const payload = env.GITHUB_REPOSITORY ? runnerContext(env, (m) => logger.warning(m)).payload : {};
    const result = await runJob(inputs, env, payload, workspace, logger, { signal: io.signal });
    io.err(`\n${summaryMarkdown(result)}\n`);
    if (env.KO_ANNOTATE_OUTPUTS_JSON === 'true') io.out(`${outputsOf(result).metadata}\n`);
    else for (const p of result.packages) io.out(`${p.ref}\n`);
    return 0;
  } catch (err) {
    if (io.signal?.aborted) err = io.signal.reason;
    else if (err instanceof GoBuildError) for (const d of err.diagnostics) logger.error(d.message, d.where);
    io.err(`ko-annotate: ${explainFailure(err)}\n`);
    return 1;
  }
}
