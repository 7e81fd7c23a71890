import type { Logger } from '../log.js';
import { parseRfc3339 } from './created.js';
import { dateFormatter } from './dates.js';
import { evaluateTagRules, forwardOnly, rulesContext, type TagRules } from './tag-rules.js';
import type { TagsResult } from './tags.js';

export interface RulesPlanInput {
  env: Record<string, string | undefined>;
  payload: unknown;
  /** The repository's default branch (payload, else the GitHub API), for type=edge. */
  defaultBranch?: string;
  now: Date;
  /** The committer time of a commit as git prints it (`%cI`), or undefined when git does not have it. */
  commitTime(sha: string): Promise<string | undefined>;
  logger: Logger;
}

export interface RulesPlan {
  /** The tags for a repository holding `existing` (undefined: not read), and the version. */
  plan(existing: readonly string[] | undefined): TagsResult;
  /** Whether the existing tags can change the plan (a floating tag to hold back). */
  followsExisting: boolean;
}

/**
 * Evaluate the tag rules for this run once, before any build (docs/tag-rules.md): metadata-action's
 * tags and version, its warnings logged; then each repository's existing tags only leave out
 * floating tags that would move backwards.
 */
export async function planTagRules(rules: TagRules, input: RulesPlanInput): Promise<RulesPlan> {
  const formatDate = rules.usesDates ? await dateFormatter() : undefined;
  const first = rulesContext(input.env, input.payload, { defaultBranch: input.defaultBranch, now: input.now, commitDate: input.now, formatDate });
  const commitDate = rules.usesCommitDate ? await commitDateOf(first.sha, input) : input.now;
  const outcome = evaluateTagRules(rules, { ...first, commitDate });
  for (const w of outcome.warnings) input.logger.warning(w);
  input.logger.info(`tag rules: version ${JSON.stringify(outcome.version)}, tags ${outcome.tags.join(', ') || '(none)'}`);
  if (outcome.tags.length === 0) input.logger.warning('the tag rules give no tag for this run, as metadata-action would; the image is published by digest only');
  return {
    plan: (existing) => ({ version: outcome.version, tags: existing === undefined ? outcome.tags : forwardOnly(outcome, existing) }),
    followsExisting: outcome.floating.length > 0,
  };
}

/**
 * metadata-action's commit date for {{commit_date}}: the pushed commit's time from the payload
 * (`commits[]`, `head_commit`), else the commit's as git has it (metadata-action asks the
 * GitHub API), else the run's clock.
 */
async function commitDateOf(sha: string, input: RulesPlanInput): Promise<Date> {
  const p = (typeof input.payload === 'object' && input.payload !== null ? input.payload : {}) as {
    commits?: { id?: unknown; timestamp?: unknown }[];
    head_commit?: { id?: unknown; timestamp?: unknown } | null;
  };
  const fromPayload = (Array.isArray(p.commits) ? p.commits.find((c) => c?.id === sha)?.timestamp : undefined) ?? (p.head_commit?.id === sha ? p.head_commit.timestamp : undefined);
  if (typeof fromPayload === 'string' && !Number.isNaN(Date.parse(fromPayload))) return new Date(fromPayload);
  const fromGit = sha ? await input.commitTime(sha).catch(() => undefined) : undefined;
  const ms = fromGit === undefined ? undefined : parseRfc3339(fromGit);
  if (ms !== undefined) return new Date(ms);
  input.logger.warning(`{{commit_date}}: no time for commit ${sha} in the event payload or in git; the run's clock stands in, as in metadata-action`);
  return input.now;
}
