// docker/metadata-action's own test vectors (__tests__/fixtures/metadata-action-cases.json, taken
// from its test tables, Apache-2.0; see the file's `about` and `source`), read for the table test
// (github-tag-rules-vectors.test.ts) and the end-to-end run (e2e-tag-rules.test.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Fixture {
  env: Record<string, string>;
  payload: unknown;
}

export interface VectorCase {
  id: string;
  kind: 'version_tags_labels' | 'tag_parse' | 'tag_transform' | 'flavor_transform';
  fixture?: string;
  extra_env?: Record<string, string>;
  inputs?: { images: string[]; tags: string[]; flavor: string[] };
  input?: string | string[];
  expected_invalid?: boolean;
  expected: unknown;
  depends_on?: string[];
}

export interface Vectors {
  about: string;
  source: { repository: string; commit: string };
  harness: { now: string; repo_api_response: { default_branch: string; description?: string } };
  fixtures: Record<string, Fixture>;
  cases: VectorCase[];
}

export const vectors: Vectors = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'metadata-action-cases.json'), 'utf8'));

/** metadata-action's rules when its `tags` input is empty (its tag.ts); this action computes its own instead. */
export const METADATA_ACTION_DEFAULT_RULES = ['type=schedule', 'type=ref,event=branch', 'type=ref,event=tag', 'type=ref,event=pr'];

export interface Expected {
  version: { main: string | null; partial: string[]; latest: boolean };
  tags: string[];
}

/**
 * The one tag list a version_tags_labels case expects for a single image: metadata-action gives
 * every image the same list, so a case with several images is checked as one (undefined if the
 * lists differ, which would make the case inapplicable).
 */
export function tagsForOneImage(c: VectorCase): string[] | undefined {
  const e = c.expected as Expected;
  // An image is `name[,enable=false]` (metadata-action's image.ts); a disabled one gets no tags.
  const images = c.inputs!.images
    .map((i) => i.split(','))
    .filter((fields) => !fields.slice(1).includes('enable=false'))
    .map((fields) => fields[0]!.replace(/^name=/, ''));
  if (images.length === 0) return e.tags;
  const per = images.map((img) => e.tags.filter((t) => t.startsWith(`${img.toLowerCase()}:`)).map((t) => t.slice(img.length + 1)));
  const [first] = per;
  if (per.some((p) => JSON.stringify(p) !== JSON.stringify(first)) || per.flat().length !== e.tags.length) return undefined;
  return first;
}

/** Why a case cannot apply to this action, or undefined when it applies. */
export function exclusionOf(c: VectorCase): string | undefined {
  if (c.kind !== 'version_tags_labels') return undefined;
  if (c.inputs!.tags.some((t) => /^type=pep440/.test(t))) return 'uses type=pep440, which this action refuses by name (docs/tag-rules.md#types); the test checks the refusal';
  if (tagsForOneImage(c) === undefined) return 'its images get different tags; this action publishes one repository per package';
  return undefined;
}
