// Base images for tests, built with the project's own OCI helpers, written to OCI layouts and
// pushed to a TestRegistry with skopeo (a tool that is not ours, so a bug in our writer cannot
// hide itself). Also: `skopeo inspect --raw` and `umoci unpack` for reading results back.
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { digestHex, sha256 } from '../../src/oci/digest.js';
import { encodeJson } from '../../src/oci/json.js';
import { descriptorOf, imagesOf, indexFromDocument, makeImage, makeIndex, type Artifact, type Image, type ImageIndex } from '../../src/oci/image.js';
import { fileLayer, writeLayer, type Layer, type TarEntry } from '../../src/oci/layer.js';
import { LayoutWriter } from '../../src/oci/layout.js';
import { formatPlatform } from '../../src/oci/platform.js';
import { Key, mediaTypesOf, type ImageConfig, type Index, type MediaFamily, type Platform } from '../../src/oci/spec.js';
import type { TestRegistry } from './registry.js';

const run = promisify(execFile);

/**
 * - `oci-index`: OCI index of linux/amd64, linux/arm64, linux/arm/v7 and an `unknown/unknown`
 *   attestation manifest (as BuildKit writes them).
 * - `docker-list`: the same in Docker media types (manifest list of schema2 manifests; the
 *   attestation entry stays an OCI manifest, as BuildKit writes it).
 * - `oci-image`: one OCI manifest, linux/amd64.
 */
export type BaseVariant = 'oci-index' | 'docker-list' | 'oci-image';
export const BASE_VARIANTS: readonly BaseVariant[] = ['oci-index', 'docker-list', 'oci-image'];

export const BASE_PLATFORMS: readonly Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
];
export const BASE_USER = '65532';
export const BASE_SSL_CERT_FILE = '/etc/ssl/certs/ca.txt';
export const BASE_ENV: readonly string[] = [
  'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  `SSL_CERT_FILE=${BASE_SSL_CERT_FILE}`,
];
/** `org.opencontainers.image.*` ones describe the base and must not survive into our images. */
export const BASE_LABELS: Readonly<Record<string, string>> = {
  [Key.Title]: 'base',
  [Key.Source]: 'https://example.invalid/base',
  'com.example.base': 'yes',
};
/** A Cmd that the build must clear (docs/image.md#layout). */
export const BASE_CMD: readonly string[] = ['/bin/base-cmd'];
export const BASE_CREATED = '2024-01-02T03:04:05Z';

/** BuildKit's attestation manifests: in-toto statements, marked by these descriptor annotations. */
const InToto = {
  LayerMediaType: 'application/vnd.in-toto+json',
  ReferenceType: 'vnd.docker.reference.type',
  ReferenceDigest: 'vnd.docker.reference.digest',
  AttestationManifest: 'attestation-manifest',
} as const;

export interface BaseLayout {
  /** The OCI layout directory; the artifact is named `tag` in its index.json. */
  dir: string;
  tag: string;
  artifact: Artifact;
  digest: string;
  mediaType: string;
  /** The platform images (never the attestation), in index order. */
  platforms: { platform: string; digest: string }[];
}

/** Build a base image variant into the OCI layout `dir` (created if missing). */
export async function buildBaseLayout(variant: BaseVariant, dir: string, tag = 'latest'): Promise<BaseLayout> {
  const family: MediaFamily = variant === 'docker-list' ? 'docker' : 'oci';
  // Layers are written straight into the layout's blobs, so the returned artifact's layers
  // stay re-openable for as long as the layout exists.
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const platforms = variant === 'oci-image' ? BASE_PLATFORMS.slice(0, 1) : BASE_PLATFORMS;
  const images: Image[] = [];
  for (const [i, p] of platforms.entries()) {
    const partial = join(blobs, `.partial-layer-${i}`);
    const written = await writeLayer(baseEntries(p), partial, mediaTypesOf(family).layer);
    const final = join(blobs, digestHex(written.digest));
    await rename(partial, final);
    const layer = fileLayer(final, { mediaType: written.mediaType, digest: written.digest, diffId: written.diffId, size: written.size });
    images.push(makeImage({ family, config: baseConfig(p), layers: [layer] }));
  }
  const artifact: Artifact = variant === 'oci-image' ? images[0] : await withAttestation(family, images, blobs);
  return writeBaseLayout(dir, tag, artifact, images);
}

/** Writes a base's artifact into the layout at `dir` under `tag` and describes it. */
async function writeBaseLayout(dir: string, tag: string, artifact: Artifact, images: readonly Image[]): Promise<BaseLayout> {
  const writer = new LayoutWriter(dir);
  await writer.putContent(artifact);
  await writer.putName(artifact, tag);
  return {
    dir,
    tag,
    artifact,
    digest: artifact.digest,
    mediaType: artifact.mediaType,
    platforms: images.map((img) => ({ platform: formatPlatform(img.platform), digest: img.digest })),
  };
}

function baseEntries(p: Platform): TarEntry[] {
  const file = (path: string, text: string, mode = 0o644): TarEntry => {
    const bytes = Buffer.from(text);
    return { type: 'file', path, mode, size: bytes.length, open: () => Readable.from([bytes]) };
  };
  return [
    { type: 'directory', path: 'etc', mode: 0o755 },
    file('etc/passwd', 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n'),
    file('etc/group', 'root:x:0:\nnonroot:x:65532:\n'),
    // Differs per platform, so each platform's layer (and manifest) has its own digest.
    file('etc/base-platform', `${formatPlatform(p)}\n`),
    { type: 'directory', path: 'etc/ssl', mode: 0o755 },
    { type: 'directory', path: 'etc/ssl/certs', mode: 0o755 },
    file(BASE_SSL_CERT_FILE.slice(1), 'not a real CA bundle: ko-annotate test base\n'),
    { type: 'directory', path: 'home', mode: 0o755 },
    { type: 'directory', path: 'home/nonroot', mode: 0o755 },
    { type: 'directory', path: 'tmp', mode: 0o1777 },
  ];
}

function baseConfig(p: Platform): ImageConfig {
  return {
    created: BASE_CREATED,
    architecture: p.architecture,
    os: p.os,
    ...(p.variant ? { variant: p.variant } : {}),
    config: {
      User: BASE_USER,
      Env: [...BASE_ENV],
      Cmd: [...BASE_CMD],
      WorkingDir: '/',
      Labels: { ...BASE_LABELS },
    },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [{ created: BASE_CREATED, created_by: 'ko-annotate test base layer' }],
  };
}

/**
 * An index of `images` plus an `unknown/unknown` attestation manifest for the first one, as
 * BuildKit pushes. makeIndex takes platforms from configs and never writes descriptor
 * annotations, so this index is assembled here.
 */
async function withAttestation(family: MediaFamily, images: readonly Image[], blobs: string): Promise<ImageIndex> {
  const subject = images[0];
  const statement = encodeJson({
    _type: 'https://in-toto.io/Statement/v0.1',
    predicateType: 'https://spdx.dev/Document',
    subject: [{ name: 'pkg:docker/base', digest: { sha256: subject.digest.slice('sha256:'.length) } }],
    predicate: { spdxVersion: 'SPDX-2.3', name: 'base', packages: [] },
  });
  const statementFile = join(blobs, digestHex(sha256(statement)));
  await writeFile(statementFile, statement);
  // Uncompressed, so its diff ID is its digest.
  const layer: Layer = fileLayer(statementFile, {
    mediaType: InToto.LayerMediaType,
    digest: sha256(statement),
    diffId: sha256(statement),
    size: statement.length,
  });
  // BuildKit writes attestation manifests in OCI types whatever the list's types (and skopeo
  // refuses a schema2 manifest with an in-toto layer), so a Docker list here is mixed too.
  const attestation = makeImage({
    family: 'oci',
    config: { architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [] } },
    layers: [layer],
  });
  const plain = makeIndex(family, images);
  const index: Index = {
    ...plain.index,
    manifests: [
      ...plain.index.manifests,
      {
        ...descriptorOf(attestation),
        platform: { architecture: 'unknown', os: 'unknown' },
        annotations: { [InToto.ReferenceDigest]: subject.digest, [InToto.ReferenceType]: InToto.AttestationManifest },
      },
    ],
  };
  return indexFromDocument(family, index, [...images, attestation]);
}

// ---------------------------------------------------------------------------------------
// Pushing and reading back with skopeo

export interface Credentials {
  username: string;
  password: string;
}

export interface PushedBase {
  /** `host/repository:tag`. */
  reference: string;
  /** Digest of the top-level index or manifest (skopeo pushes it byte for byte). */
  digest: string;
  mediaType: string;
  repository: string;
  tag: string;
  platforms: { platform: string; digest: string }[];
}

/**
 * Build `variant` and push it to `registry` as `repository:tag` (default
 * `public/base-<variant>:latest`, pullable anonymously from a token registry) with the
 * registry's own credentials.
 */
export async function pushBaseImage(
  registry: TestRegistry,
  variant: BaseVariant,
  opts: { repository?: string; tag?: string } = {},
): Promise<PushedBase> {
  const repository = opts.repository ?? `public/base-${variant}`;
  const tag = opts.tag ?? 'latest';
  const dir = await mkdtemp(join(tmpdir(), 'ko-annotate-base-layout-'));
  try {
    const layout = await buildBaseLayout(variant, join(dir, 'oci'), tag);
    const reference = `${registry.host}/${repository}:${tag}`;
    let source = `oci:${layout.dir}:${tag}`;
    if (layout.artifact.family === 'docker') {
      // skopeo's oci: transport only resolves index.json entries of OCI media types, so Docker
      // types travel through its dir: transport, which takes manifests of any type as they are.
      source = `dir:${await writeDirTransport(layout.artifact, join(dir, 'dir'))}`;
    }
    await skopeoCopyToRegistry(source, reference, credentialsOf(registry));
    return { reference, digest: layout.digest, mediaType: layout.mediaType, repository, tag, platforms: layout.platforms };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * containers/image's `dir:` format (version 1.1): `manifest.json` is the top-level manifest,
 * `<hex>.manifest.json` each instance of a list, and every other blob is a file named `<hex>`.
 */
async function writeDirTransport(a: Artifact, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'version'), 'Directory Transport Version: 1.1\n');
  await writeFile(join(dir, 'manifest.json'), a.bytes);
  for (const img of imagesOf(a)) {
    if (a.kind === 'index') await writeFile(join(dir, `${digestHex(img.digest)}.manifest.json`), img.bytes);
    await writeFile(join(dir, digestHex(img.configDigest)), img.configBytes);
    for (const layer of img.layers) {
      await pipeline(await layer.open(), createWriteStream(join(dir, digestHex(layer.digest))));
    }
  }
  return dir;
}

export const credentialsOf = (r: TestRegistry): Credentials | undefined =>
  r.auth === 'none' ? undefined : { username: r.username, password: r.password };

/**
 * `skopeo copy --all --preserve-digests` from any skopeo source (`oci:dir:tag`) to
 * `docker://<dest>` over plain HTTP. Credentials go in an auth file, never on argv.
 */
export async function skopeoCopyToRegistry(source: string, dest: string, creds?: Credentials): Promise<void> {
  await withSkopeoFiles(dest, creds, async (files) => {
    const args = ['copy', '--quiet', '--all', '--preserve-digests', '--policy', files.policy, '--dest-tls-verify=false'];
    if (files.authfile) args.push('--dest-authfile', files.authfile);
    else args.push('--dest-no-creds');
    args.push(source, dockerRef(dest));
    await skopeo(args);
  });
}

/** The manifest or index bytes exactly as the registry serves them (`skopeo inspect --raw`). */
export async function skopeoInspectRaw(ref: string, creds?: Credentials): Promise<Buffer> {
  return withSkopeoFiles(ref, creds, async (files) => {
    const args = ['inspect', '--raw', '--tls-verify=false'];
    if (files.authfile) args.push('--authfile', files.authfile);
    else args.push('--no-creds');
    args.push(dockerRef(ref));
    return skopeo(args);
  });
}

const dockerRef = (ref: string) => (ref.startsWith('docker://') ? ref : `docker://${ref}`);

async function skopeo(args: string[]): Promise<Buffer> {
  try {
    const { stdout } = await run('skopeo', args, { encoding: 'buffer', maxBuffer: 64 << 20, timeout: 120_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`skopeo ${args.filter((a) => !a.startsWith('/')).join(' ')} failed: ${e.stderr?.toString().trim() || e.message}`, { cause: err });
  }
}

/** A private dir with an accept-anything signature policy and, given credentials, an auth file. */
async function withSkopeoFiles<T>(ref: string, creds: Credentials | undefined, f: (files: { policy: string; authfile?: string }) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'ko-annotate-skopeo-'));
  try {
    const policy = join(dir, 'policy.json');
    await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    let authfile: string | undefined;
    if (creds) {
      authfile = join(dir, 'auth.json');
      const host = ref.replace(/^docker:\/\//, '').split('/')[0];
      const auth = Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
      await writeFile(authfile, JSON.stringify({ auths: { [host]: { auth } } }), { mode: 0o600 });
      await chmod(authfile, 0o600);
    }
    return await f({ policy, authfile });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Unpack `layoutDir:tag` with umoci so that `rootfsDir` (which must not exist yet) holds the
 * image's file system; returns the runtime config umoci generated from the image config.
 * umoci reads OCI media types only, and for a multi-platform index picks nothing: name a
 * single-platform manifest.
 */
export async function umociUnpack(layoutDir: string, tag: string, rootfsDir: string): Promise<Record<string, unknown>> {
  // Next to rootfsDir, so that moving the rootfs there is a rename on one file system.
  const work = await mkdtemp(join(dirname(rootfsDir), '.umoci-'));
  try {
    const bundle = join(work, 'bundle');
    const args = ['unpack', '--image', `${layoutDir}:${tag}`, bundle];
    // As root umoci keeps owners; otherwise it must be told to map them to the caller.
    if (process.getuid?.() !== 0) args.splice(1, 0, '--rootless');
    try {
      await run('umoci', args, { maxBuffer: 16 << 20, timeout: 120_000 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`umoci ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
    }
    await rename(join(bundle, 'rootfs'), rootfsDir);
    return JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as Record<string, unknown>;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------
// A glibc base from this machine's C library, for cgo binaries (docs/cgo.md#interpreter)

/**
 * Where this machine keeps the dynamic loader and libc per platform: its own (Debian's
 * x86_64 glibc) and Debian's libc6-arm64-cross. `interpreter` is what a binary's PT_INTERP
 * names; in the image it is a symbolic link, as in Debian, so the check must follow it.
 */
export const GLIBC_PLATFORMS = [
  {
    platform: { os: 'linux', architecture: 'amd64' },
    hostLibDir: '/lib/x86_64-linux-gnu',
    libDir: 'usr/lib/x86_64-linux-gnu',
    loader: 'ld-linux-x86-64.so.2',
    interpreter: '/lib64/ld-linux-x86-64.so.2',
  },
  {
    platform: { os: 'linux', architecture: 'arm64' },
    hostLibDir: '/usr/aarch64-linux-gnu/lib',
    libDir: 'usr/lib/aarch64-linux-gnu',
    loader: 'ld-linux-aarch64.so.1',
    interpreter: '/lib/ld-linux-aarch64.so.1',
  },
] as const satisfies readonly { platform: Platform; hostLibDir: string; libDir: string; loader: string; interpreter: string }[];

/**
 * An OCI index of linux/amd64 and linux/arm64 images holding glibc's loader and libc.so.6
 * (copied from this machine), laid out as Debian does since /usr was merged: the files in
 * /usr/lib/<triplet>, `/lib` → `usr/lib`, and the interpreter's path a link to the loader.
 * Each platform's base layers plus a second layer with the C library.
 */
export async function buildGlibcBaseLayout(dir: string, tag = 'glibc'): Promise<BaseLayout> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const images: Image[] = [];
  for (const [i, g] of GLIBC_PLATFORMS.entries()) {
    const host = async (name: string): Promise<TarEntry> => {
      const bytes = await readFile(join(g.hostLibDir, name)); // the real file behind any link
      return { type: 'file', path: `${g.libDir}/${name}`, mode: 0o755, size: bytes.length, open: () => Readable.from([bytes]) };
    };
    const libc: TarEntry[] = [
      { type: 'directory', path: 'usr', mode: 0o755 },
      { type: 'directory', path: 'usr/lib', mode: 0o755 },
      { type: 'directory', path: g.libDir, mode: 0o755 },
      await host(g.loader),
      await host('libc.so.6'),
      { type: 'symlink', path: 'lib', target: 'usr/lib' },
      ...(g.interpreter.startsWith('/lib64/')
        ? [{ type: 'directory', path: 'lib64', mode: 0o755 } as const, { type: 'symlink', path: g.interpreter.slice(1), target: `/${g.libDir.slice(4)}/${g.loader}` } as const]
        : [{ type: 'symlink', path: `usr${g.interpreter}`, target: `${g.libDir.split('/').at(-1)}/${g.loader}` } as const]),
    ];
    const layers: Layer[] = [];
    for (const [j, entries] of [baseEntries(g.platform), libc].entries()) {
      const partial = join(blobs, `.partial-glibc-${i}-${j}`);
      const written = await writeLayer(entries, partial, mediaTypesOf('oci').layer);
      const final = join(blobs, digestHex(written.digest));
      await rename(partial, final);
      layers.push(fileLayer(final, { mediaType: written.mediaType, digest: written.digest, diffId: written.diffId, size: written.size }));
    }
    const config = baseConfig(g.platform);
    config.history = [...(config.history ?? []), { created: BASE_CREATED, created_by: `glibc from this machine's ${g.hostLibDir}` }];
    images.push(makeImage({ family: 'oci', config, layers }));
  }
  const artifact = makeIndex('oci', images);
  return writeBaseLayout(dir, tag, artifact, images);
}
