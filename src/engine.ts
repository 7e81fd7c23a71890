import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { buildPackages, lastElement, type BuiltPackage, type PackagePlan } from './gobuild/builder.js';
import type { Provenance } from './gobuild/assemble.js';
import { cgoEnabled, findCCompiler, thisHost, type Host } from './gobuild/cgo.js';
import { BUILD_ENV, type GoPackage, type GoToolchain } from './gobuild/go.js';
import { baseImageOverride, refuseToolexec, refuseToolexecInEnv } from './config/koyaml.js';
import { Defaults, parseKoEnvironment, parsePlatformList, platformEnvFor, validateBaseImage, validateRepository, type InputName, type Inputs, type Naming } from './inputs.js';
import { DeferredLogger, type Logger } from './log.js';
import { resolveBase, type ResolvedBase } from './oci/base.js';
import { imagesOf, scratch, type Artifact } from './oci/image.js';
import type { TarEntry } from './oci/layer.js';
import { formatPlatform, goEnv, platformMatches } from './oci/platform.js';
import type { Platform } from './oci/spec.js';
import type { ContentSource } from './oci/store.js';
import { LayoutPublisher } from './publish/layout.js';
import type { PreviousImages } from './publish/previous.js';
import type { Publisher } from './publish/publisher.js';
import type { Attached, AttachWhere, SignedStatement } from './publish/attachments.js';
import { allDone } from './util.js';
import { runIdentity, uploadHandoffs } from './fanout/handoff.js';
import { legHandoffs, putLegContent } from './fanout/leg.js';
import { runMerge, type FanOutDeps } from './fanout/merge.js';
import type { SbomResult } from './sbom/referrer.js';

/** The settings .ko.yaml and KO_* environment variables contribute (README.md#inputs, ko's config). */
export interface KoSettings {
  defaultBaseImage?: string;
  /** Keyed by lower-cased import path (koyaml.ts baseImageOverride). */
  baseImageOverrides?: Record<string, string>;
  defaultPlatforms?: string[];
  /**
   * Where `go list`/`go build` run for a package as the user named it: a `.ko.yaml` build's
   * `dir` (which may be another module), with the package relative to it. Undefined: the
   * working directory and the name as given.
   */
  locate?(spec: string): { dir: string; target: string; env?: Record<string, string> } | undefined;
  /**
   * Per-package build settings (templates already rendered): where to run `go build`, flags,
   * ldflags, env. `over` is the rest of one platform's build environment (the env input,
   * CGO_ENABLED, GOOS, GOARCH…), which templates see over the build's own env.
   */
  buildFor?(pkg: GoPackage, over?: Readonly<Record<string, string>>): { dir?: string; target?: string; flags: string[]; ldflags: string[]; env: Record<string, string> } | undefined;
}

/** Everything a run needs to know besides the inputs. */
export interface RunRequest {
  inputs: Inputs;
  /** The repository checkout (GITHUB_WORKSPACE, or the CLI's current directory). */
  workspace: string;
  env: Record<string, string | undefined>;
  /** `ghcr.io/<owner>/<repo>` from the GitHub context, when there is one. */
  defaultRepository?: string;
  provenance: Provenance;
  /** Tags for a repository whose existing tags are `existing` (undefined: not read). */
  tagsFor(existing: readonly string[] | undefined): string[];
  /** False when tagsFor does not depend on `existing` (github/tags.ts tagsFollowExisting): the tag list is not read. */
  tagsFollowExisting?: boolean;
  push: boolean;
  ko?: KoSettings;
  /**
   * Renders `{{.Git.ShortCommit}}`-style templates in ldflags/flags/env values. `buildEnv` (the
   * environment go build gets besides the process's) is what `{{.Env.NAME}}` sees over it.
   */
  render?(text: string, where: string, buildEnv?: Readonly<Record<string, string>>): string;
}

/** A package as `go list` resolved it, with the name the user gave it. */
export type ListedPackage = GoPackage & { spec: string };

/**
 * `go list` every package the inputs name, where `.ko.yaml` says to run it for each, with the
 * `env` input rendered by `render` (needed only when a value holds a template).
 */
export async function listPackages(inputs: Inputs, workspace: string, ko: KoSettings | undefined, go: GoToolchain, render?: RunRequest['render']): Promise<ListedPackage[]> {
  const workDir = resolve(workspace, inputs.workingDirectory);
  const env = render ? inputEnv(inputs, render) : inputs.env;
  // Go would start in it: a missing directory or a file would fail as `cannot run go` or
  // `spawn ENOTDIR`, naming neither the input nor its value (docs/reliability.md).
  await checkDirectoryInput('working-directory', inputs.workingDirectory, workDir, workspace);
  // The flags input's -tags (rendered when it can be already): .ko.yaml's flags belong to a
  // build entry, which is found only from what go list says.
  const flags = inputs.flags.filter((f) => !f.includes('{{') || render !== undefined).map((f) => (render ? render(f, 'input "flags"') : f));
  return Promise.all(
    inputs.packages.map(async (spec) => {
      const at = ko?.locate?.(spec) ?? { dir: workDir, target: spec };
      const [pkg] = await go.list([at.target], at.dir, { ...('env' in at ? at.env : {}), ...env }, flags);
      return { ...pkg, spec };
    }),
  );
}

/** The `env` input with its templates rendered; a template that yields -toolexec is refused as a literal one is. */
function inputEnv(inputs: Inputs, render: (text: string, where: string) => string): Record<string, string> {
  const env = Object.fromEntries(Object.entries(inputs.env).map(([k, v]) => [k, render(v, 'input "env"')]));
  refuseToolexecInEnv(Object.entries(env).map(([k, v]) => `${k}=${v}`), 'input "env"');
  return env;
}

/** The `flags` input with its templates rendered, checked again as inputEnv is. */
function inputFlags(inputs: Inputs, render: NonNullable<RunRequest['render']>, buildEnv: Readonly<Record<string, string>>): string[] {
  const flags = inputs.flags.map((f) => render(f, 'input "flags"', buildEnv));
  refuseToolexec(flags, 'input "flags"');
  return flags;
}

/** A registry repository we can publish to and read tags from. */
export interface RegistryTarget extends Publisher {
  listTags(): Promise<string[]>;
}

export interface EngineDeps {
  go: GoToolchain;
  logger: Logger;
  /** The machine's OS and architecture, for a native cgo build's C compiler (docs/cgo.md); default: this one. */
  host?: Host;
  /** Opens a base reference: `oci:<dir>[:<name>]` or a registry reference. */
  openBase(reference: string): Promise<{ source: ContentSource; reference: string }>;
  /** The publisher for `repository`, logging to `logger` (the run's logger when not given). */
  registryTarget(repository: string, logger?: Logger): RegistryTarget;
  kodata(packageDir: string, repoRoot: string): Promise<TarEntry[]>;
  /**
   * What is attached to `built`'s image (docs/provenance.md#storage): with `sbom`, one SPDX
   * document per platform image, and the signed provenance when the run signs
   * (docs/provenance.md); pushed as referrers when `push`, written into `layoutDir` when set.
   * Called as the package's content starts going up, with `published`, which settles once it
   * is all there, and `imagesUp`, once its platform images are: a referrer manifest waits for its
   * subject, its blobs need not. The result's `names()` writes the referrers' fallback indexes;
   * the engine calls it with the tags, after every package's content is up.
   */
  attach?(built: BuiltPackage, where: AttachWhere, published: Promise<void>, logger?: Logger, imagesUp?: Promise<unknown>): Promise<Attached>;
  /**
   * What `repository` holds under `tags` now: the digests they name, and the layers of the
   * images this builder made (see publish/previous.ts). Read while Go builds, outside the
   * publish phase and its deadline; a failure only means every layer is compressed and every
   * tag written.
   */
  previousImages?(repository: string, tags: readonly string[], builder: string): Promise<PreviousImages>;
  /**
   * Upload a blob to `repository` while it is being made (Repository.uploadWhileWritten), during
   * the builds: one attempt, outside the publish phase and its deadline; what fails here is
   * uploaded when publishing.
   */
  uploadWhileWritten?(repository: string, bytes: Readable, digest: Promise<string>): Promise<void>;
  /** Where private build files go; defaults to the OS temp directory. */
  tmpRoot?: string;
  /** docs/fan-out.md: the handoff between build legs and the merge job (fan-out build or merge only). */
  fanOut?: FanOutDeps;
}

export interface PackageResult {
  package: string;
  repository: string;
  artifact: Artifact;
  digest: string;
  ref: string;
  tags: string[];
  platforms: { platform: string; digest: string; size: number }[];
  base?: { name: string; digest: string };
  labels: Record<string, string>;
  annotations: Record<string, string>;
  goVersion: string;
  built: BuiltPackage;
  /** One SPDX document per platform image, when `sbom: spdx` (docs/image.md#sbom). */
  sboms?: SbomResult[];
  /** The signed statements about it, when provenance is on (docs/provenance.md). */
  provenance?: SignedStatement[];
}

export interface RunResult {
  version: string;
  packages: PackageResult[];
  pushed: boolean;
  layout?: string;
  /** The repository owner, for the summary's `gh attestation verify --owner` (when run in a GitHub context). */
  owner?: string;
}

/**
 * The whole job, shared by the action and the CLI: plan → build → publish content → write
 * names. Names (tags, layout refs) are written only after every package's content is in
 * place (docs/publishing.md), so a failed run leaves no tag on incomplete content.
 */
export async function runEngine(req: RunRequest, deps: EngineDeps): Promise<RunResult> {
  // docs/fan-out.md: a leg or merge outside a workflow run fails before anything is built.
  const run = req.inputs.fanOut === 'off' ? undefined : runIdentity(req.env);
  if (run && !deps.fanOut) throw new Error(`fan-out: ${req.inputs.fanOut} needs the artifact service of a GitHub Actions run`);
  const workDir = await mkdtemp(join(deps.tmpRoot ?? tmpdir(), 'ko-annotate-'));
  try {
    const plans = await planPackages(req, deps);
    // docs/fan-out.md: the merge job builds nothing; a build leg publishes no name of any kind.
    if (req.inputs.fanOut === 'merge') return await runMerge(req, deps, plans, run!);
    const leg = req.inputs.fanOut === 'build' ? run : undefined;
    // A re-run names the layers it would write byte for byte the same by what the repository
    // holds, read (pull access only) while Go builds, so that a layer seldom waits for it, and
    // leaves a tag that already names its artifact as it is. Not with an OCI layout to write,
    // which needs every layer's bytes.
    const previous =
      req.push && !req.inputs.ociLayoutPath && deps.previousImages
        ? plans.map((p) =>
            within(PREVIOUS_LAYERS_MS, deps.previousImages!(p.repository, req.tagsFor(undefined), req.provenance.builder)).catch((err: Error) => {
              deps.logger.debug(`not reusing layers from ${p.repository}: ${err.message}`);
              return undefined;
            }),
          )
        : undefined;
    const uploadWhileWritten = req.push ? deps.uploadWhileWritten?.bind(deps) : undefined;
    const built = await buildPackages(plans, req.provenance, { go: deps.go, logger: deps.logger, workDir, scratch, workspace: req.workspace, previous, uploadWhileWritten, fanOutLeg: !!leg });

    // Several packages publish together, each one's lines held and then written as its own
    // group (Actions groups do not nest or interleave); one package logs as it goes.
    const held = built.length > 1 ? built.map(() => new DeferredLogger()) : undefined;
    const logOf = (i: number): Logger => held?.[i] ?? deps.logger;
    const targets = req.push ? built.map((b, i) => deps.registryTarget(b.plan.repository, logOf(i))) : [];
    const layout = req.inputs.ociLayoutPath ? new LayoutPublisher(resolve(req.workspace, req.inputs.ociLayoutPath)) : undefined;
    // Tags are listed while the content goes up; they are needed only for the names, and only
    // when they can change them (a release's floating tags).
    const listTags = req.push && req.tagsFollowExisting !== false && !leg;
    const listing = settled(Promise.all(built.map(async (b, i) => (leg ? [] : req.tagsFor(listTags ? await targets[i].listTags() : undefined)))));

    const attached: (Attached | undefined)[] = [];
    const publish = async (b: BuiltPackage, i: number) => {
      let imagesUp!: () => void;
      const imagesThere = new Promise<void>((resolve) => (imagesUp = resolve));
      const published = (async () => {
        const named = (await previous?.[i])?.tags;
        if (req.push && leg) await putLegContent(targets[i], b, named, imagesUp);
        else if (req.push) await targets[i].putContent(b.artifact, named, imagesUp);
        if (layout) await layout.putContent(b.artifact);
      })();
      // The referrers' blobs go up alongside the images; their manifests wait for their
      // subjects: the platform images (not the index) for the SBOMs, `published` for the rest.
      const subjects = Promise.race([imagesThere, published]);
      subjects.catch(() => undefined); // `published` carries the failure to the caller
      const attaching = deps.attach
        ? deps.attach(b, { push: req.push, layoutDir: layout?.dir, sbom: req.inputs.sbom === 'spdx', deferTags: !!leg }, published, logOf(i), subjects)
        : Promise.resolve(undefined);
      // Both finish before a failure of either fails the run: nothing is left reading workDir.
      [, attached[i]] = await allDone([published, attaching]);
    };
    const title = (b: BuiltPackage) => `Publish ${b.plan.repository}@${b.artifact.digest}`;
    if (req.push || layout || (req.inputs.sbom === 'spdx' && deps.attach)) {
      if (!held) {
        await deps.logger.group(title(built[0]), () => publish(built[0], 0));
      } else {
        // Every package's content is up (or failed) before any tag is written.
        await allDone(
          built.map(async (b, i) => {
            try {
              await publish(b, i);
            } finally {
              await held[i].replay(deps.logger, title(b));
            }
          }),
        );
      }
    }
    if (leg) {
      const sboms = attached.map((a) => a?.sboms);
      const names = await uploadHandoffs(deps.fanOut!.artifacts, legHandoffs(built, sboms, leg, req.provenance.revision), deps.tmpRoot);
      for (const name of names) deps.logger.info(`handed over to the merge job: artifact ${name}`);
      return { version: req.provenance.version, pushed: req.push, packages: built.map((b, i) => ({ ...legResult(b), sboms: sboms[i] })) };
    }
    const tags = await listing();
    // Names: the referrers' fallback indexes, then the tags (docs/provenance.md#storage).
    await allDone(attached.map((a) => a?.names() ?? Promise.resolve()));
    if (req.push) await allDone(built.map(async (b, i) => targets[i].putTags(b.artifact, tags[i], (await previous?.[i])?.tags)));
    // One after another: each rewrites the layout's index.json. Several packages share their
    // tags, so there each entry is named by its reference (`<repository>:<tag>`): named by the
    // tag alone, each package's entry would replace the one before it.
    const layoutNames = (b: BuiltPackage, t: string[]) => (built.length > 1 ? t.map((tag) => `${b.plan.repository}:${tag}`) : t);
    if (layout) for (const [i, b] of built.entries()) await layout.putTags(b.artifact, layoutNames(b, tags[i]));
    return {
      version: req.provenance.version,
      pushed: req.push,
      layout: layout?.dir,
      packages: built.map((b, i) => ({ ...toResult(b, tags[i]), sboms: attached[i]?.sboms, provenance: attached[i]?.provenance })),
    };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/** docs/fan-out.md: a leg's result names its first platform manifest, not the index it did not push, and no tags. */
function legResult(b: BuiltPackage): PackageResult {
  const first = b.platforms[0].image;
  return { ...toResult(b, []), digest: first.digest, ref: `${b.plan.repository}@${first.digest}` };
}

function toResult(b: BuiltPackage, tags: string[]): PackageResult {
  const first = imagesOf(b.artifact)[0];
  return {
    package: b.plan.pkg.importPath,
    repository: b.plan.repository,
    artifact: b.artifact,
    digest: b.artifact.digest,
    ref: `${b.plan.repository}@${b.artifact.digest}`,
    tags,
    platforms: b.platforms.map((p) => ({
      platform: formatPlatform(p.platform),
      digest: p.image.digest,
      size: p.image.size + p.image.manifest.config.size + p.image.layers.reduce((n, l) => n + l.size, 0),
    })),
    base: b.plan.base === 'scratch' ? undefined : { name: b.plan.base.name, digest: b.plan.base.digest },
    labels: first.config.config?.Labels ?? {},
    annotations: (b.artifact.kind === 'index' ? b.artifact.index.annotations : b.artifact.manifest.annotations) ?? {},
    goVersion: b.goVersion,
    built: b,
  };
}

/** Resolve packages, repositories, bases and platforms before anything is built (docs/reliability.md: bad input fails first). */
async function planPackages(req: RunRequest, deps: EngineDeps): Promise<PackagePlan[]> {
  const { inputs, env, ko } = req;
  const workDir = resolve(req.workspace, inputs.workingDirectory);
  const render = req.render ?? ((s: string) => s);
  const pkgs = await listPackages(inputs, req.workspace, ko, deps.go, render);
  // The layout is written only after every build and alongside the push: a path that is a
  // file, or below one, must fail first (docs/reliability.md), not as a bare ENOTDIR once the content is up.
  if (inputs.ociLayoutPath !== undefined) await checkDirectoryInput('oci-layout-path', inputs.ociLayoutPath, resolve(req.workspace, inputs.ociLayoutPath));
  const repoRoot = resolve(req.workspace);

  const koEnv = parseKoEnvironment(env);
  const repository = inputs.repository ?? koEnv.repository ?? req.defaultRepository;
  if (!repository) {
    throw new Error('input "repository" is empty and there is no GITHUB_REPOSITORY or KO_DOCKER_REPO to derive it from');
  }
  const naming: Exclude<Naming, 'auto'> = inputs.naming === 'auto' ? (pkgs.length === 1 ? 'bare' : 'base') : inputs.naming;
  // Repository names are lower-case; ko lower-cases the import path for every naming mode.
  const repoFor = (p: GoPackage) =>
    naming === 'bare' ? repository : `${repository}/${(naming === 'base' ? lastElement(p.importPath) : p.importPath).toLowerCase()}`;
  if (naming === 'bare' && pkgs.length > 1) {
    throw new Error(`input "naming": "bare" gives ${pkgs.length} packages the same repository ${repository}; use base or preserve`);
  }
  // One image per package: two in one repository would race for the same tags.
  const byRepository = new Map<string, ListedPackage>();
  for (const p of pkgs) {
    const other = byRepository.get(repoFor(p));
    if (other?.importPath === p.importPath) throw new Error(`input "packages": ${JSON.stringify(other.spec)} and ${JSON.stringify(p.spec)} are the same package ${p.importPath}`);
    if (other) {
      const how = inputs.naming === 'auto' ? `"auto" (base for several packages)` : `"${naming}"`;
      throw new Error(`input "naming": ${how} gives ${other.importPath} and ${p.importPath} the same repository ${repoFor(p)}${naming === 'base' ? '; use preserve' : ''}`);
    }
    byRepository.set(repoFor(p), p);
    // The derived names were never an input: a repository called `.github`, or a package path
    // element like `My_Tool_`, must fail here, naming where the name came from, not at a push.
    const where =
      inputs.repository !== undefined || koEnv.repository !== undefined
        ? `the repository for ${p.importPath} (naming "${naming}")`
        : `the default repository ghcr.io/<owner>/<repo> for ${p.importPath} (naming "${naming}"); set "repository"`;
    validateRepository(repoFor(p), where);
  }

  const platformSpec =
    inputs.platforms ??
    koEnv.platforms ??
    (ko?.defaultPlatforms?.length ? parsePlatformList(ko.defaultPlatforms.join(','), '.ko.yaml defaultPlatforms') : undefined) ??
    parsePlatformList(Defaults.platforms, 'the default platforms');
  const bases = new Map<string, Promise<ResolvedBase | 'scratch'>>();
  const baseFor = (ref: string) => {
    if (!bases.has(ref)) bases.set(ref, openResolved(ref, platformSpec, deps));
    return bases.get(ref)!;
  };

  const withInputs = inputEnv(inputs, render);
  const platformInputEnv = (p: Platform) => {
    const env = Object.fromEntries(Object.entries(platformEnvFor(inputs.platformEnv, p)).map(([k, v]) => [k, render(v, 'input "env"')]));
    refuseToolexecInEnv(Object.entries(env).map(([k, v]) => `${k}=${v}`), 'input "env"');
    return env;
  };
  return Promise.all(
    pkgs.map(async (pkg) => {
      // Inputs win, then ko's order: a per-package override, KO_DEFAULTBASEIMAGE, the file's default.
      const override = baseImageOverride(ko?.baseImageOverrides, pkg.importPath);
      const [baseRef, where] =
        inputs.baseImage !== undefined ? [inputs.baseImage, 'input "base-image"']
        : override !== undefined ? [override, `.ko.yaml baseImageOverrides[${pkg.importPath}]`]
        : koEnv.baseImage !== undefined ? [koEnv.baseImage, 'KO_DEFAULTBASEIMAGE']
        : ko?.defaultBaseImage !== undefined ? [ko.defaultBaseImage, '.ko.yaml defaultBaseImage']
        : [Defaults.baseImage, 'the default base image'];
      validateBaseImage(baseRef, where);
      const base = await baseFor(baseRef);
      const platforms: Platform[] =
        base === 'scratch'
          ? platformSpec === 'all'
            ? fail('input "platforms": "all" needs a base image index to list platforms; base is scratch')
            : platformSpec
          : [...base.platforms];
      // Templates see each platform's build environment, as ko's do: GOOS, GOARCH (GOARM,
      // GOAMD64) win over the env input (its lines for the platform last), which wins over
      // .ko.yaml's, which wins over CGO_ENABLED=0 (GoToolchain.buildCommand).
      const inputsFor = (p: Platform) => ({ ...withInputs, ...platformInputEnv(p) });
      const platformEnv = (p: Platform) => ({ ...BUILD_ENV, ...inputsFor(p), ...goEnv(p) });
      const perPlatform = platforms.map((p) => ko?.buildFor?.(pkg, platformEnv(p)));
      const fromKo = perPlatform[0];
      const buildDir = fromKo?.dir ? resolve(workDir, fromKo.dir) : workDir;
      // docs/cgo.md: a C compiler for each cgo platform is found now, before anything is built.
      const envs = await Promise.all(
        platforms.map(async (p, i) => {
          const env = { ...(perPlatform[i]?.env ?? {}), ...inputsFor(p) };
          if (!cgoEnabled({ ...BUILD_ENV, ...env })) return env;
          const cc = await findCCompiler(p, env, { host: deps.host ?? thisHost(), path: deps.go.searchPath });
          deps.logger.info(`cgo for ${pkg.importPath} on ${formatPlatform(p)}: ${cc.how}`);
          return { ...env, ...cc.env };
        }),
      );
      return {
        pkg,
        repository: repoFor(pkg),
        base,
        platforms,
        buildDir,
        buildTarget: fromKo?.target ?? pkg.importPath,
        // .ko.yaml's lists come rendered; the inputs are appended after them, so they win.
        args: platforms.map((p, i) => {
          const buildEnv = { ...perPlatform[i]?.env, ...platformEnv(p) };
          return {
            flags: [...(perPlatform[i]?.flags ?? []), ...inputFlags(inputs, render, buildEnv)],
            ldflags: [...(perPlatform[i]?.ldflags ?? []), ...inputs.ldflags.map((f) => render(f, 'input "ldflags"', buildEnv))],
            env: envs[i],
          };
        }),
        user: inputs.user,
        labels: inputs.labels,
        annotations: inputs.annotations,
        kodata: await deps.kodata(pkg.dir, repoRoot),
      } satisfies PackagePlan;
    }),
  );
}

/**
 * The input `name`, given as `given`, names `dir`: fail naming both unless it is a directory,
 * or is not there at all and need not be (`mustExistIn` unset: it is made later).
 */
async function checkDirectoryInput(name: InputName, given: string, dir: string, mustExistIn?: string): Promise<void> {
  const where = `input "${name}": ${JSON.stringify(given)}`;
  const s = await stat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' && mustExistIn === undefined) return undefined;
    if (err.code === 'ENOENT') throw new Error(`${where} does not exist in ${mustExistIn}`, { cause: err });
    throw new Error(`${where}: ${err.code === 'ENOTDIR' ? 'a part of it is a file, not a directory' : err.message}`, { cause: err });
  });
  if (s && !s.isDirectory()) throw new Error(`${where} is not a directory`);
}

async function openResolved(ref: string, platforms: Platform[] | 'all', deps: EngineDeps): Promise<ResolvedBase | 'scratch'> {
  if (ref === 'scratch') return 'scratch';
  const { source, reference } = await deps.openBase(ref);
  try {
    const base = await resolveBase(source, ref, reference, platforms);
    // docs/cgo.md#platform-matching: the image is the platform asked for, built on a lower variant's entry.
    base.platforms.forEach((p, i) => {
      const entry = base.images[i];
      if (!platformMatches(p, entry.platform)) {
        deps.logger.info(`${formatPlatform(p)}: base ${ref} has no ${formatPlatform(p)} entry; building on its ${formatPlatform(entry.platform)} entry (${entry.digest})`);
      }
    });
    if (base.skipped) {
      const built = base.platforms.map(formatPlatform).join(', ');
      deps.logger.info(`platforms "all" of ${ref}: ${built} (not ${base.skipped.map(formatPlatform).join(', ')}: images are built for linux only)`);
    }
    return base;
  } catch (err) {
    throw new Error(`base image ${ref}: ${(err as Error).message}`, { cause: err });
  }
}

/** Start `p` now and read its outcome later, without an unhandled rejection in between. */
function settled<T>(p: Promise<T>): () => Promise<T> {
  const outcome = p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  return async () => {
    const o = await outcome;
    if (!o.ok) throw o.error;
    return o.value;
  };
}

/** How long builds wait for the repository's layers before compressing their own. */
const PREVIOUS_LAYERS_MS = 5000;

/** `p`, or a rejection once `ms` have passed (the timer does not hold the process open). */
function within<T>(ms: number, p: Promise<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
    p.then(resolve, reject).finally(() => clearTimeout(timer));
  });
}

const fail = (m: string): never => {
  throw new Error(m);
};

