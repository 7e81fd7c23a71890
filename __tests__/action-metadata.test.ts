// action.yml as GitHub reads it: the Marketplace's release form, which checks the metadata only
// when a release is published, and the precedence its descriptions promise.
import { describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';

interface ActionYml {
  name: string;
  description: string;
  branding: { icon: string; color: string };
  inputs: Record<string, { description: string; default?: string }>;
}

const action = async (): Promise<ActionYml> => parse(await readFile(new URL('../action.yml', import.meta.url), 'utf8')) as ActionYml;

describe('GitHub Marketplace', () => {
  // The release form refuses the listing with "Description must be less than 125 characters";
  // nothing else checks it, and a release tag cannot be fixed afterwards.
  it('takes the description: fewer than 125 characters', async () => {
    const { description } = await action();
    expect(description.length).toBeLessThan(125);
  });

  it('takes the branding: one of its nine colours, a Feather icon it does not leave out', async () => {
    const { branding } = await action();
    expect(['white', 'black', 'yellow', 'blue', 'green', 'orange', 'red', 'purple', 'gray-dark']).toContain(branding.color);
    const omitted = ['coffee', 'columns', 'divide-circle', 'divide-square', 'divide', 'frown', 'hexagon', 'key', 'meh', 'mouse-pointer', 'smile', 'tool', 'x-octagon'];
    expect(omitted).not.toContain(branding.icon);
    expect(branding.icon).toMatch(/^[a-z0-9]+(?:-[a-z0-9]+)*$/);
  });
});
