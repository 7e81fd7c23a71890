// Checks an SPDX 2.3 JSON document: the schema subset in fixtures/spdx-2.3.schema.json (no npm
// package ships the official schema), plus what a JSON schema cannot say: element IDs are
// unique and every relationship names elements that exist.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import * as formats from 'ajv-formats';
import { repoRoot } from './engine.js';

const schema = JSON.parse(readFileSync(join(repoRoot, '__tests__', 'fixtures', 'spdx-2.3.schema.json'), 'utf8')) as object;
// strictRequired is off: `if/then` names properties declared beside it, which that check cannot see.
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
// ajv-formats is CommonJS with a default export; under NodeNext it arrives as `.default`.
(formats as unknown as { default: (a: Ajv) => void }).default(ajv);
const validate = ajv.compile(schema);

/** Every problem with `doc`, as `path: message` lines; empty when it is valid. */
export function spdxProblems(doc: unknown): string[] {
  const problems = validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message}`);
  const d = doc as { packages?: { SPDXID: string }[]; relationships?: { spdxElementId: string; relatedSpdxElement: string }[] };
  const ids = new Set<string>(['SPDXRef-DOCUMENT']);
  for (const p of d.packages ?? []) {
    if (ids.has(p.SPDXID)) problems.push(`/packages: ${p.SPDXID} is not unique`);
    ids.add(p.SPDXID);
  }
  for (const r of d.relationships ?? []) {
    for (const id of [r.spdxElementId, r.relatedSpdxElement]) if (!ids.has(id)) problems.push(`/relationships: ${id} names no element`);
  }
  return problems;
}
