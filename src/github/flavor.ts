import { csvRecords, inputItems, type ListItem } from './csv.js';

/** docker/metadata-action's `flavor` input (docs/tag-rules.md#flavor). */
export interface Flavor {
  latest: 'auto' | 'true' | 'false';
  prefix: string;
  /** Whether `latest` gets the prefix too. */
  prefixLatest: boolean;
  suffix: string;
  suffixLatest: boolean;
}

export const defaultFlavor: Flavor = { latest: 'auto', prefix: '', prefixLatest: false, suffix: '', suffixLatest: false };

/**
 * Read the `flavor` input as metadata-action does: each line `key=value` fields, later lines
 * winning; `onlatest=` belongs to the prefix or suffix before it on the same line. Pure: throws
 * naming the line and the field.
 */
export function parseFlavor(input: string): Flavor {
  return parseFlavorItems(inputItems('flavor', input));
}

/** The flavor of items already split into lines (metadata-action's list of flavor entries). */
export function parseFlavorItems(items: readonly ListItem[]): Flavor {
  const flavor: Flavor = { ...defaultFlavor };
  for (const item of items) {
    const at = `input "flavor" line ${item.line} ${JSON.stringify(item.text)}`;
    let fields: string[];
    try {
      fields = csvRecords(item.text, { relaxQuotes: false, comments: false })[0]?.fields ?? [];
    } catch (err) {
      throw new Error(`${at}: ${(err as Error).message}`);
    }
    let onlatestFor: 'prefix' | 'suffix' | undefined;
    for (const field of fields) {
      // metadata-action splits at every `=` and keeps the second part.
      const parts = field.split('=').map((p) => p.trim());
      if (parts.length === 1) throw new Error(`${at}: ${JSON.stringify(field)} is not key=value (latest=, prefix=, suffix=, onlatest=)`);
      const key = parts[0]!.toLowerCase();
      const value = parts[1]!;
      switch (key) {
        case 'latest':
          if (value !== 'auto' && value !== 'true' && value !== 'false') throw new Error(`${at}: latest ${JSON.stringify(value)} must be one of auto, true, false`);
          flavor.latest = value;
          break;
        case 'prefix':
        case 'suffix':
          flavor[key] = value;
          onlatestFor = key;
          break;
        case 'onlatest':
          if (value !== 'true' && value !== 'false') throw new Error(`${at}: onlatest ${JSON.stringify(value)} must be true or false`);
          if (onlatestFor === 'prefix') flavor.prefixLatest = value === 'true';
          if (onlatestFor === 'suffix') flavor.suffixLatest = value === 'true';
          break;
        default:
          throw new Error(`${at}: ${JSON.stringify(parts[0])} is not a flavor field (latest, prefix, suffix, onlatest)`);
      }
    }
  }
  return flavor;
}
