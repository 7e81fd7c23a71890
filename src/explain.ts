import { RegistryError } from './registry/errors.js';

/**
 * The message that fails the step. A 401/403 from ghcr.io gets the likely causes in plain
 * sentences (docs/reliability.md): GHCR answers all of them with the same status and no detail.
 */
export function explainFailure(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (!(err instanceof RegistryError) || (err.status !== 401 && err.status !== 403) || err.host !== 'ghcr.io') return message;
  const owner = err.repository?.split('/')[0] ?? '<owner>';
  const pkg = err.repository?.split('/').slice(1).join('/') ?? '<package>';
  return [
    message,
    'GitHub Container Registry refused the token. The usual causes:',
    '- The workflow lacks `permissions: packages: write` (add it to the job or the workflow).',
    '- This is a pull request from a fork, whose token can never write packages (use push: auto, which does not push on pull requests).',
    `- The package ${owner}/${pkg} exists but is not linked to this repository or does not grant it write access: see https://github.com/users/${owner}/packages/container/${encodeURIComponent(pkg)}/settings ("Manage Actions access"; for an organization, https://github.com/orgs/${owner}/packages/container/${encodeURIComponent(pkg)}/settings).`,
  ].join('\n');
}
