import { basename } from 'node:path';
import type { Provenance } from './gobuild/assemble.js';
import { childEnv } from './gobuild/go.js';
import { gitInfo, type GitInfo, type RunCommand } from './config/git.js';
import { renderTemplate } from './config/template.js';
import { defaultRepository, isPullRequestEvent, readContext, sourceUrl, type GithubContext } from './github/context.js';
import { createdTime } from './github/created.js';
import { repoInfo, type RepoInfo } from './github/repo-info.js';
import { computeTags, tagsFollowExisting } from './github/tags.js';
import { planTagRules } from './github/rules-plan.js';
import type { Inputs } from './inputs.js';
import type { Logger } from './log.js';
import type { RunRequest } from './engine.js';

export interface PrepareDeps {
  logger: Logger;
  /** Runs a command line (`args[0]` is the program); used for git. */
  run: RunCommand;
  /** The clock, for tag rules' {{date}} (docs/tag-rules.md#expressions); the wall clock by default. */
  now?: () => Date;
}

/** This action's version: package.json's (a unit test keeps the two equal). */
export const VERSION = '0.1.0';
/** This action's own name and version, written as `io.github.ko-annotate.builder`. */
export const BUILDER = `ko-annotate/${VERSION}`;

/**
 * Turn the inputs, environment and event payload into what the engine needs: provenance
 * values, the version and a tag planner, whether to push, and the template renderer.
 * Outside Actions (no GITHUB_REPOSITORY) the context comes from the local git checkout.
 */
export async function prepareRun(
  inputs: Inputs,
  env: Record<string, string | undefined>,
  payload: unknown,
  workspace: string,
  deps: PrepareDeps,
): Promise<Omit<RunRequest, 'ko'> & { ctx: GithubContext; git: GitInfo; render: NonNullable<RunRequest['render']> }> {
  // The runner's context needs no git, so in Actions the repository lookup (a network request)
  // starts with the git processes; outside Actions the context comes from the checkout.
  const runnerCtx = env.GITHUB_REPOSITORY ? readContext(env, payload) : undefined;
  // Outside Actions there is no token and often no network: the description and license are
  // only looked up for a run in Actions. The API gets the `github-token` input, never the
  // registry's `token` (docs/publishing.md#credentials).
  const lookUp = (ctx: GithubContext): Promise<RepoInfo> =>
    env.GITHUB_ACTIONS === 'true' ? repoInfo(ctx, { token: inputs.githubToken ?? '', logger: deps.logger }) : Promise.resolve({});
  const [git, remote, runnerInfo] = await Promise.all([
    gitInfo({ dir: workspace, run: deps.run, env }),
    runnerCtx ? undefined : deps.run(['git', 'remote', 'get-url', 'origin'], workspace),
    runnerCtx ? lookUp(runnerCtx) : undefined,
  ]);
  const local = remote ? localContext(env, workspace, git, remote) : undefined;
  const ctx = local?.ctx ?? runnerCtx!;
  const gitCommitTime = async () => {
    // gitInfo already read HEAD's committer time (as Unix seconds; `%cI` is the same instant).
    if (git.commitDate && ctx.revision === git.fullCommit) return git.commitDate;
    const log = () => deps.run(['git', 'log', '-1', '--format=%cI', ctx.revision || 'HEAD'], workspace);
    let r = await log();
    if (r.code !== 0 && ctx.revision && isPullRequestEvent(ctx.eventName)) {
      // actions/checkout fetches a pull request's merge commit alone (depth 1): the head commit,
      // the revision, is not in the clone. Fetch just it, by its SHA, as checkout fetches (the
      // base repository serves a fork's head too); a stalled transfer gives up after 30 s.
      const fetch = ['fetch', '--quiet', '--no-tags', '--depth=1', 'origin', ctx.revision];
      const f = await deps.run(['git', '-c', 'http.lowSpeedLimit=1000', '-c', 'http.lowSpeedTime=30', ...fetch], workspace);
      if (f.code === 0) {
        deps.logger.info(`fetched the pull request's head ${ctx.revision} for its commit time (the checkout has only the merge commit)`);
        r = await log();
      }
    }
    return r.code === 0 ? r.stdout.trim() || undefined : undefined;
  };
  const created = await createdTime({ env, ctx, gitCommitTime });
  const info = runnerInfo ?? (await lookUp(ctx));
  // docs/tag-rules.md: metadata-action's rules decide the tags and the version; the existing
  // tags only hold floating ones back.
  const rules = inputs.tagRules
    ? await planTagRules(inputs.tagRules, {
        // Outside Actions the checkout's context stands for the runner's.
        env: runnerCtx ? env : { ...env, GITHUB_EVENT_NAME: ctx.eventName, GITHUB_REF: ctx.ref, GITHUB_SHA: ctx.sha },
        payload: runnerCtx ? payload : {},
        defaultBranch: ctx.defaultBranch ?? info.defaultBranch,
        now: deps.now?.() ?? new Date(),
        // The revision's time is read as for `created` (fetching a pull request's head if need be).
        commitTime: (sha) =>
          sha.toLowerCase() === ctx.revision
            ? gitCommitTime()
            : deps.run(['git', 'log', '-1', '--format=%cI', sha], workspace).then((r) => (r.code === 0 ? r.stdout.trim() || undefined : undefined)),
        logger: deps.logger,
      })
    : undefined;
  const plan = (existing: readonly string[] | undefined) =>
    rules ? rules.plan(existing) : computeTags({ ctx, explicitTags: inputs.tags, latest: inputs.latest, existingTags: existing ?? [] });
  const { version } = plan(undefined);
  const provenance: Provenance = {
    source: local && !local.fromRemote ? undefined : sourceUrl(ctx),
    revision: ctx.revision,
    created,
    version,
    description: info.description,
    licenses: info.license,
    builder: BUILDER,
  };
  const push = inputs.push === 'auto' ? !isPullRequestEvent(ctx.eventName) : inputs.push === 'true';
  // {{.Env.X}} sees what go build does (childEnv): never the action's inputs or a token (either), which a
  // template in ldflags would otherwise write into the binary.
  const templateEnv = { ...childEnv(env, [inputs.token ?? '', inputs.githubToken ?? ''].filter(Boolean)), ...inputs.env };
  return {
    ctx,
    git,
    inputs,
    workspace,
    env,
    // Outside Actions a GitHub-style origin remote names the repository as GITHUB_REPOSITORY
    // would (docs/cli.md: the CLI's example gives no repository), for a run that pushes nothing:
    // as with ko, nothing is pushed to a registry the user did not name. `local/<dir>` names none.
    defaultRepository: !local || (local.fromRemote && !push) ? defaultRepository(ctx) : undefined,
    provenance,
    push,
    tagsFor: (existing) => plan(existing).tags,
    tagsFollowExisting: rules ? rules.followsExisting : tagsFollowExisting({ ctx, explicitTags: inputs.tags }),
    // {{.Env.NAME}} sees the environment go build gets, as in ko's createTemplateData: the
    // build's own (a `.ko.yaml` build's env, the platform's GOOS/GOARCH) over the process's.
    render: (text, where, buildEnv) => renderTemplate(text, { env: { ...templateEnv, ...buildEnv }, created: new Date(created), git }, where),
  };
}

/**
 * A context for runs outside GitHub Actions, from the checkout: the `origin` remote names the
 * repository when it is a GitHub-style URL, HEAD is the revision, and the branch or an exact
 * tag is the ref, as a push of it would be. `remote` is `git remote get-url origin`.
 */
function localContext(
  env: Record<string, string | undefined>,
  workspace: string,
  git: GitInfo,
  remote: { stdout: string; code: number },
): { ctx: GithubContext; fromRemote: boolean } {
  const m = remote.code === 0 ? /^(?:https?:\/\/(?:[^@/]+@)?|ssh:\/\/git@|git@)([^/:]+)[/:]([^/]+)\/([^/]+?)(?:\.git)?\/?$/.exec(remote.stdout.trim()) : null;
  // Without a remote there is no source URL to claim; the name only feeds the default tags.
  const repository = m ? `${m[2]}/${m[3]}` : `local/${basename(workspace).toLowerCase().replace(/[^a-z0-9_.-]/g, '-') || 'app'}`;
  const ref = git.tag ? `refs/tags/${git.tag}` : git.branch ? `refs/heads/${git.branch}` : '';
  const ctx = readContext(
    {
      ...env,
      GITHUB_REPOSITORY: repository,
      GITHUB_SERVER_URL: env.GITHUB_SERVER_URL ?? (m ? `https://${m[1]}` : undefined),
      GITHUB_SHA: git.fullCommit || '0000000000000000000000000000000000000000',
      GITHUB_REF: ref,
      GITHUB_EVENT_NAME: 'push',
    },
    {},
  );
  return { ctx, fromRemote: !!m };
}
