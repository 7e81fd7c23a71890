// licenses.txt for dist/ (docs/architecture.md#dist), from ncc's webpack stats: every package a
// bundle or its chunks hold, with its license id and text, one blank line apart, sorted by name.
// ncc's own --license writes only the last chunk's packages once there is more than one chunk.
//   node scripts/licenses.mjs <stats.json>... > dist/licenses.txt
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const dirs = new Set();
const visit = (modules) => {
  for (const m of modules ?? []) {
    visit(m.modules);
    const name = String(m.nameForCondition ?? m.name ?? '');
    const i = name.lastIndexOf('node_modules/');
    if (i < 0) continue;
    const rest = name.slice(i + 'node_modules/'.length).split('/');
    const pkg = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
    dirs.add(resolve(root, name.slice(0, i).replace(/^\.\//, ''), 'node_modules', pkg));
  }
};
for (const f of process.argv.slice(2)) {
  const stats = JSON.parse(readFileSync(f, 'utf8'));
  visit(stats.modules);
  for (const c of stats.chunks ?? []) visit(c.modules);
}
const entries = new Map();
for (const dir of dirs) {
  const manifest = join(dir, 'package.json');
  if (!existsSync(manifest)) continue;
  const { name, license } = JSON.parse(readFileSync(manifest, 'utf8'));
  const file = readdirSync(dir).find((f) => /^(licen[sc]e|copying)/i.test(f));
  const text = file ? readFileSync(join(dir, file), 'utf8').trim() : '';
  entries.set(name, `${name}\n${typeof license === 'string' ? license : 'UNKNOWN'}\n${text}`);
}
process.stdout.write([...entries.keys()].sort().map((k) => entries.get(k)).join('\n\n') + '\n');
