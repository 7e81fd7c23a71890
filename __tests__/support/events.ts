import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Recorded-shape GitHub Actions runs, for tests of the GitHub context and end to end.
 *
 * Each fixture `<name>` is two files in `__tests__/fixtures/events/`:
 * - `<name>.json`: the event payload exactly as the runner writes it to `GITHUB_EVENT_PATH`;
 * - `env/<name>.json`: `{ description, env }`, the runner's `GITHUB_*`/`RUNNER_*` variables.
 *
 * All fixtures are runs of `Octo-Org/Hello-World` (mixed case on purpose: the default image
 * repository is `ghcr.io/octo-org/hello-world`). Variables that depend on the machine
 * (`GITHUB_WORKSPACE`, `GITHUB_OUTPUT`, `RUNNER_TEMP`, …) and `GITHUB_TOKEN` are not recorded;
 * a test that needs them adds its own.
 */
export const eventsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'events');

export interface LoadedEvent {
  /** The runner environment, plus `GITHUB_EVENT_PATH` pointing at `path`. */
  env: Record<string, string>;
  payload: unknown;
  /** Absolute path of the payload file. */
  path: string;
  /** What run this is, in a sentence. */
  description: string;
}

export function loadEvent(name: string): LoadedEvent {
  const path = join(eventsDir, `${name}.json`);
  const payload: unknown = JSON.parse(readFileSync(path, 'utf8'));
  const recorded = JSON.parse(readFileSync(join(eventsDir, 'env', `${name}.json`), 'utf8')) as {
    description: string;
    env: Record<string, string>;
  };
  return { env: { ...recorded.env, GITHUB_EVENT_PATH: path }, payload, path, description: recorded.description };
}

/** Every fixture name, sorted. */
export function eventNames(): string[] {
  return readdirSync(eventsDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}
