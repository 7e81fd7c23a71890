import { appendFileSync, existsSync } from 'node:fs';
import { EOL } from 'node:os';
import type { Annotation, Logger } from '../log.js';

/*
 * The runner protocol the action speaks — inputs, workflow commands, the GITHUB_OUTPUT file —
 * written byte for byte as @actions/core writes it (a test compares the two). @actions/core is
 * not bundled: its OIDC client pulls in undici, and loading that was ~60 ms of the action's
 * ~150 ms start-up, before the first log line and before `go list`.
 */

/** `core.getInput`: `INPUT_<NAME>` as the runner sets it (spaces as `_`), trimmed; empty when unset. */
export function getInput(name: string, env: Record<string, string | undefined> = process.env): string {
  return (env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] ?? '').trim();
}

/** `::name key=value,…::message`, with @actions/core's escaping. */
export function workflowCommand(name: string, properties: Record<string, string | number | undefined>, message: string): string {
  let text = `::${name}`;
  const keys = Object.keys(properties);
  if (keys.length > 0) {
    // As @actions/core: empty values are left out, but the space stays once there are keys.
    text += ` ${keys.flatMap((k) => (properties[k] ? [`${k}=${escapeProperty(String(properties[k]))}`] : [])).join(',')}`;
  }
  return `${text}::${escapeData(message)}`;
}

const escapeData = (s: string): string => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const escapeProperty = (s: string): string => escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');

/** An annotation's position as the `title`, `file`, `line` and `col` properties. */
function annotationProperties(where: Annotation | undefined): Record<string, string | number | undefined> {
  if (!where || Object.keys(where).length === 0) return {};
  return { title: where.title, file: where.file, line: where.startLine, col: where.startColumn };
}

/** What the action tells the runner: log lines and annotations, secrets to mask, outputs, failure. */
export interface Workflow extends Logger {
  mask(secret: string): void;
  setOutput(name: string, value: string): void;
  /** An error annotation, and exit code 1 for the step. */
  setFailed(message: string): void;
}

export function workflow(
  env: Record<string, string | undefined> = process.env,
  write: (s: string) => void = (s) => process.stdout.write(s),
): Workflow {
  const issue = (name: string, properties: Record<string, string | number | undefined>, message: string) =>
    write(`${workflowCommand(name, properties, message)}${EOL}`);
  const error = (m: string, where?: Annotation) => issue('error', annotationProperties(where), m);
  return {
    mask: (secret) => issue('add-mask', {}, secret),
    info: (m) => write(`${m}${EOL}`),
    warning: (m, where) => issue('warning', annotationProperties(where), m),
    error,
    debug: (m) => issue('debug', {}, m),
    group: async (name, fn) => {
      issue('group', {}, name);
      try {
        return await fn();
      } finally {
        issue('endgroup', {}, '');
      }
    },
    section: (name, lines) => {
      issue('group', {}, name);
      for (const line of lines) write(`${line}${EOL}`);
      issue('endgroup', {}, '');
    },
    setOutput: (name, value) => {
      const file = env.GITHUB_OUTPUT;
      if (!file) {
        // Runners before GITHUB_OUTPUT; the command must start a line.
        write(EOL);
        issue('set-output', { name }, value);
        return;
      }
      if (!existsSync(file)) throw new Error(`Missing file at path: ${file}`);
      // A heredoc with a delimiter nobody can predict, so a value cannot end it early.
      // The global Web Crypto, so that this module does not load node:crypto at start-up.
      const delimiter = `ghadelimiter_${globalThis.crypto.randomUUID()}`;
      if (name.includes(delimiter) || value.includes(delimiter)) throw new Error(`output ${name}: contains the delimiter "${delimiter}"`);
      appendFileSync(file, `${name}<<${delimiter}${EOL}${value}${EOL}${delimiter}${EOL}`, { encoding: 'utf8' });
    },
    setFailed: (message) => {
      process.exitCode = 1;
      error(message);
    },
  };
}
