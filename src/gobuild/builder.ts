import { mkdir, stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { join } from 'node:path';
import type { ResolvedBase } from '../oci/base.js';
import type { Artifact, Image } from '../oci/image.js';
import { READ_CHUNK, reusedLayer, tarDigest, writeLayer, type Layer, type TarEntry } from '../oci/layer.js';
import { formatPlatform, goEnv } from '../oci/platform.js';
import { RootFs } from '../oci/rootfs.js';
import { Key, mediaTypesOf, type Platform } from '../oci/spec.js';
import type { Logger } from '../log.js';
import type { PreviousImages } from '../publish/previous.js';
import { parseRepository } from '../registry/reference.js';
import { allDone, cpuCount, formatBytes, mapLimit } from '../util.js';
import { assembleImage, binaryEntries, combine, metadataKeys, type Provenance, type UserAnnotations } from './assemble.js';
import { elfInterpreter } from './elf.js';
import type { BuildInfo, GoPackage, GoToolchain } from './go.js';

/** Everything needed to build one package's image (resolved from inputs and .ko.yaml). */
export interface PackagePlan {
  pkg: GoPackage;
  /** Target repository, `host/path`; its last element is the title. */
  repository: string;
  base: ResolvedBase | 'scratch';
  platforms: readonly Platform[];
  /** Directory `go build` runs in, and the target it is given there. */
  buildDir: string;
  buildTarget: string;
  /**
   * `go build` flags, ldflags and env for each of `platforms`, in order: templates are rendered
   * per platform, since `{{.Env.GOARCH}}` (as in ko) is that platform's, and env lines may be
   * limited to a platform, as a cgo cross compiler is (docs/cgo.md).
   */
  args: readonly { flags: string[]; ldflags: string[]; env: Record<string, string> }[];
  user?: string;
  labels: Record<string, string>;
  annotations: UserAnnotations;
  /** The kodata layer's entries (empty: no kodata layer). */
  kodata: TarEntry[];
}

export interface BuiltPlatform {
  platform: Platform;
  image: Image;
  binary: string;
  buildInfo: BuildInfo;
}

export interface BuiltPackage {
  plan: PackagePlan;
  artifact: Artifact;
  platforms: BuiltPlatform[];
  goVersion: string;
}

export interface BuilderDeps {
  go: GoToolchain;
  logger: Logger;
  /** A private directory for binaries and layer files, removed by the caller. */
  workDir: string;
  /** Base images for `scratch`, one per platform. */
  scratch: (p: Platform) => Image;
  /** The checkout root, for compile-error annotations. */
  workspace?: string;
  /**
   * Per plan, the layers its repository already holds (see publish/previous.ts): a layer whose
   * diff ID is there is named by that descriptor instead of being compressed again.
   */
  previous?: readonly (Promise<PreviousImages | undefined> | undefined)[];
  /**
   * Upload a layer to a plan's repository while it is compressed (see Repository.uploadWhileWritten):
   * given the compressed bytes as they are made and, once they are all made, their digest. A
   * failure is logged and costs nothing else: publishing uploads what is not there.
   */
  uploadWhileWritten?: (repository: string, bytes: Readable, digest: Promise<string>) => Promise<void>;
  /**
   * docs/fan-out.md: this job is a build leg, whose images are entries of the index the merge job
   * writes: they are made as a one-job build makes an index's entries, even for one platform.
   */
  fanOutLeg?: boolean;
}

/** The family of an artifact follows its base; `scratch` is OCI (docs/image.md#layout). */
const familyOf = (plan: PackagePlan) => (plan.base === 'scratch' ? 'oci' : plan.base.family);

/**
 * Build every (package, platform) pair: Go builds in parallel, bounded by CPU count; then
 * each package's images are assembled with the provenance keys and combined into an index.
 */
export async function buildPackages(plans: readonly PackagePlan[], provenance: Provenance, deps: BuilderDeps): Promise<BuiltPackage[]> {
  const jobs = plans.flatMap((plan, pi) => plan.platforms.map((platform, i) => ({ plan, pi, platform, i })));
  // The kodata layers are written while Go builds run, not before: nothing waits for them until
  // the images are assembled. They are not uploaded as they are written: nothing goes to a
  // repository before a build of its package has succeeded (a compile error uploads nothing),
  // and the binaries' layers exist only then.
  const kodataWrites = Promise.all(
    plans.map(async (plan, pi) => {
      if (!plan.kodata.length) return undefined;
      const dir = join(deps.workDir, `pkg${pi}`);
      await mkdir(dir, { recursive: true });
      return layerFor(plan.kodata, join(dir, 'kodata.tar.gz'), mediaTypesOf(familyOf(plan)).layer, deps, pi);
    }),
  );
  // Each base image's file system, read once and only if a binary is dynamically linked.
  const fsOf = new Map<string, Promise<RootFs>>();
  const baseFs = (image: Image) => {
    if (!fsOf.has(image.digest)) fsOf.set(image.digest, RootFs.of(image));
    return fsOf.get(image.digest)!;
  };
  const binaryWrites = mapLimit(jobs, cpuCount(), async ({ plan, pi, platform, i }) => {
    const dir = join(deps.workDir, `pkg${pi}`, formatPlatform(platform).replaceAll('/', '-'));
    await mkdir(dir, { recursive: true });
    const binary = join(dir, 'app');
    const title = `Build ${plan.pkg.importPath} for ${formatPlatform(platform)}`;
    const started = Date.now();
    try {
      await deps.go.build({
        target: plan.buildTarget,
        output: binary,
        cwd: plan.buildDir,
        flags: plan.args[i]!.flags,
        ldflags: plan.args[i]!.ldflags,
        env: plan.args[i]!.env,
        platformEnv: goEnv(platform),
        workspace: deps.workspace,
      });
    } catch (err) {
      deps.logger.section(title, [`go build failed after ${Date.now() - started} ms`]);
      throw err;
    }
    // docs/cgo.md#interpreter: a dynamically linked binary needs its interpreter in the base,
    // checked before its layer is written or uploaded.
    const interpreter = await checkInterpreter(binary, plan, i, platform, baseFs);
    const size = (await stat(binary)).size;
    // `go version -m` runs while the layer is written; it is not needed before assembly.
    const [info, layer] = await allDone([
      deps.go.buildInfo(binary, plan.buildDir),
      layerFor(
        binaryEntries(appName(plan.pkg.importPath), size, () => createReadStream(binary, { highWaterMark: READ_CHUNK })),
        join(dir, 'app.tar.gz'),
        mediaTypesOf(familyOf(plan)).layer,
        deps,
        pi,
        plan.repository,
      ),
    ]);
    // Builds run in parallel: each one's lines are written as one group when it is done.
    deps.logger.section(title, [
      `go build ${plan.buildTarget} (${Object.entries({ ...goEnv(platform), ...cgoOf(plan.args[i]!.env) }).map(([k, v]) => `${k}=${v}`).join(' ')}) in ${plan.buildDir}`,
      `built ${appName(plan.pkg.importPath)} with ${info.goVersion}: ${formatBytes(size)} in ${Date.now() - started} ms`,
      ...(interpreter ? [`dynamically linked: its interpreter ${interpreter.path} is in the base (${interpreter.file})`] : []),
      `layer ${layer.digest} (${formatBytes(layer.size)} compressed${layer.reused ? ', already in the repository' : layer.stored ? ', uploaded as it was written' : ''})`,
    ]);
    return { binary, info, layer };
  });
  // A failed build is reported before a failed kodata layer; either way nothing is still
  // writing into the work directory when this returns (the caller removes it).
  const [binaries, kodataLayers] = await allDone([binaryWrites, kodataWrites]);

  return plans.map((plan, pi) => {
    const mine = jobs.map((j, k) => ({ j, b: binaries[k] })).filter(({ j }) => j.pi === pi);
    const goVersion = mine[0].b.info.goVersion;
    const keys = packageKeys(plan, provenance, goVersion);
    const base = plan.base;
    const built: BuiltPlatform[] = mine.map(({ j, b }) => {
      const baseImage = base === 'scratch' ? deps.scratch(j.platform) : base.images[j.i];
      const layers: { layer: Layer; comment: string }[] = [];
      const kodata = kodataLayers[pi];
      if (kodata) layers.push({ layer: kodata, comment: 'kodata' });
      layers.push({ layer: b.layer, comment: 'go binary' });
      const image = assembleImage({
        base: baseImage,
        platform: j.platform,
        layers,
        appName: appName(plan.pkg.importPath),
        importPath: plan.pkg.importPath,
        created: provenance.created,
        user: plan.user,
        labels: { ...keys, ...plan.labels },
        // One platform makes no index: the manifest is what tags name, so the index-level
        // annotations go on it too (the manifest-level ones win).
        annotations: { ...keys, ...baseKeys(plan, baseImage.digest), ...(mine.length === 1 && !deps.fanOutLeg ? plan.annotations.index : {}), ...plan.annotations.manifest },
      });
      return { platform: j.platform, image, binary: b.binary, buildInfo: b.info };
    });
    const artifact = combine(
      familyOf(plan),
      built.map((b) => b.image),
      indexAnnotations(plan, provenance, goVersion),
    );
    return { plan, artifact, platforms: built, goVersion };
  });
}

/** What the log shows of a cgo build's env: that cgo is on, and with which C compiler. */
const cgoOf = (env: Readonly<Record<string, string>>): Record<string, string> =>
  env.CGO_ENABLED === '1' ? { CGO_ENABLED: '1', ...(env.CC ? { CC: env.CC } : {}) } : {};

/**
 * The ELF interpreter of `binary` and where the base has it, or undefined for a static binary;
 * throws when the base lacks it (docs/cgo.md#interpreter).
 */
async function checkInterpreter(
  binary: string,
  plan: PackagePlan,
  i: number,
  platform: Platform,
  baseFs: (image: Image) => Promise<RootFs>,
): Promise<{ path: string; file: string } | undefined> {
  const path = await elfInterpreter(binary);
  if (path === undefined) return undefined;
  const base = plan.base === 'scratch' ? undefined : plan.base.images[i];
  const file = base && (await baseFs(base)).resolveFile(path);
  if (file) return { path, file };
  const which = plan.base === 'scratch' ? 'base image scratch (empty)' : `base image ${plan.base.name} (its ${formatPlatform(base!.platform)} image ${base!.digest})`;
  throw new InterpreterMissingError(
    `${formatPlatform(platform)}: ${plan.pkg.importPath} is dynamically linked (cgo) and needs its ELF interpreter ${path}, which ${which} does not have. ` +
      `Use a base image with glibc that has it, such as ${GLIBC_BASES.join(' or ')} (input "base-image"), or link statically.`,
  );
}

/** Small glibc bases with the dynamic loader (docs/cgo.md#interpreter). */
export const GLIBC_BASES = ['cgr.dev/chainguard/glibc-dynamic', 'gcr.io/distroless/base-debian12'] as const;

/** A dynamically linked binary whose base lacks its interpreter: it could not start. */
export class InterpreterMissingError extends Error {}

/** The docs/image.md#metadata keys of one package's images. */
export const packageKeys = (plan: PackagePlan, provenance: Provenance, goVersion: string) =>
  metadataKeys(provenance, {
    title: lastElement(plan.repository),
    goVersion,
    importPath: plan.pkg.importPath,
    modulePath: plan.pkg.modulePath,
  });

const baseKeys = (plan: PackagePlan, digest: string): Record<string, string> =>
  plan.base === 'scratch' ? {} : { [Key.BaseName]: plan.base.name, [Key.BaseDigest]: digest };

/**
 * The annotations of a package's index: the metadata keys, the base index's name and digest, the
 * user's index annotations. Also what docs/fan-out.md's merge job writes, with the Go version
 * the legs report.
 */
export function indexAnnotations(plan: PackagePlan, provenance: Provenance, goVersion: string): Record<string, string> {
  return { ...packageKeys(plan, provenance, goVersion), ...baseKeys(plan, plan.base === 'scratch' ? '' : plan.base.digest), ...plan.annotations.index };
}

/** The family of a package's images: it follows the base; `scratch` is OCI (docs/image.md#layout). */
export const familyOfPlan = familyOf;

/**
 * The layer of `entries`: the published one with the same diff ID when the repository has
 * one (no gzip), else written to `file`, and uploaded as it is written when it can be.
 */
async function layerFor(
  entries: readonly TarEntry[],
  file: string,
  mediaType: string,
  deps: BuilderDeps,
  pi: number,
  /** The repository to upload it to as it is written; none: publishing uploads it. */
  uploadTo?: string,
): Promise<Layer & { reused?: boolean }> {
  const known = (await deps.previous?.[pi])?.layers;
  if (known?.size) {
    const diffId = await tarDigest(entries);
    const d = known.get(diffId);
    if (d && d.mediaType === mediaType) return { ...reusedLayer(entries, file, { ...d, diffId }), reused: true };
  }
  const upload = deps.uploadWhileWritten;
  if (!upload || uploadTo === undefined) return writeLayer(entries, file, mediaType);
  // The upload reads what writeLayer copies into `bytes`, at its own pace (up to 1 MiB ahead).
  const bytes = new PassThrough({ highWaterMark: 1 << 20 });
  let digest!: { resolve: (d: string) => void; reject: (e: Error) => void };
  const made = new Promise<string>((resolve, reject) => (digest = { resolve, reject }));
  made.catch(() => undefined);
  const uploading = upload(uploadTo, bytes, made).then(
    () => true,
    (err: Error) => {
      deps.logger.debug(`uploading ${file} as it was written failed (publishing will upload it): ${err.message}`);
      return false;
    },
  );
  try {
    const layer = await writeLayer(entries, file, mediaType, bytes);
    digest.resolve(layer.digest);
    // uploadTo is the plan's repository, the one publishing will push to (engine.ts gives both
    // the same name), parsed as the dependency and the publisher's registry client parse it.
    return (await uploading) ? Object.freeze({ ...layer, stored: parseRepository(uploadTo) }) : layer;
  } catch (err) {
    digest.reject(err as Error);
    await uploading;
    throw err;
  }
}

/** `<name>` of `/ko-app/<name>`: the import path's last element (docs/image.md#layout). */
export const appName = (importPath: string) => lastElement(importPath);

export const lastElement = (path: string) => path.split('/').filter(Boolean).at(-1) ?? path;
