import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

let n = 0;

/** A fresh directory under `root` with `config` as its config.json (a Docker config, for DOCKER_CONFIG). */
export async function dockerConfigDir(root: string, config: unknown): Promise<string> {
  const dir = join(root, `docker-config-${n++}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}
