/** Sort a string map by key so that label and annotation order never depends on insertion. */
export function sortedRecord(r: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!r) return undefined;
  const keys = Object.keys(r).sort();
  if (keys.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const k of keys) out[k] = r[k];
  return out;
}

/** The bytes that get hashed and PUT: compact JSON, no trailing newline. */
export const encodeJson = (v: unknown): Buffer => Buffer.from(JSON.stringify(v), 'utf8');

export function deepCopy<T>(v: T): T {
  return structuredClone(v);
}

/** Drop keys whose value is undefined so they are absent, not `null`, in the JSON. */
export function compact<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}
