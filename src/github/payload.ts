import { existsSync, readFileSync } from 'node:fs';

/**
 * The event payload at GITHUB_EVENT_PATH, or `{}` without one. A path that names no file (a
 * local runner such as act, a hand-made environment) is reported and read as no payload, as
 * @actions/github's context reads it, instead of failing on ENOENT.
 */
export function readPayload(env: Record<string, string | undefined>, warn: (message: string) => void): unknown {
  const file = env.GITHUB_EVENT_PATH;
  if (!file) return {};
  if (!existsSync(file)) {
    warn(`GITHUB_EVENT_PATH ${file} does not exist; running without the event payload`);
    return {};
  }
  return JSON.parse(readFileSync(file, 'utf8'));
}
