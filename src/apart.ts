import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * A module bundled on its own (scripts/build.sh): `dist/<name>/index.js`, next to the action's
 * bundle (dist/index.js) or the CLI's (dist/cli/index.js), so that only the runs that use it
 * parse it. From source (tests, a checkout) there is no such bundle and `fromSource` loads the
 * packages themselves. ncc leaves `webpackIgnore` imports as they are.
 */
export async function loadApart<T>(name: string, fromSource: () => Promise<T>): Promise<T> {
  const bundled = [`./${name}/index.js`, `../${name}/index.js`].map((p) => new URL(p, import.meta.url)).find((u) => u.protocol === 'file:' && existsSync(fileURLToPath(u)));
  return bundled ? ((await import(/* webpackIgnore: true */ bundled.href)) as T) : fromSource();
}
