import { isDigest } from '../oci/digest.js';

/** An image reference, split as the distribution grammar (reference.go's grammar) splits it. */
export interface Reference {
  /** The registry as named in references: `docker.io`, `ghcr.io`, `127.0.0.1:5000`. */
  readonly registry: string;
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

/** A push target: `host[:port]/path`. */
export interface RepositoryName {
  readonly registry: string;
  readonly repository: string;
}

export const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_API = 'registry-1.docker.io';
// `docker login` and old configs name Docker Hub by these; they all mean docker.io.
const DOCKER_HUB_ALIASES = new Set([DOCKER_HUB, 'index.docker.io', DOCKER_HUB_API]);

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DOMAIN_LABEL = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';
const HOST = new RegExp(`^(?:${DOMAIN_LABEL}(?:\\.${DOMAIN_LABEL})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]{1,5})?$`);
// reference.go's NameTotalLengthMax.
const MAX_NAME = 255;

export const isValidTag = (s: string): boolean => TAG.test(s);

/** Throws unless `digest` is a sha256 digest: what a blob request names. */
export function checkDigest(digest: string): void {
  if (!isDigest(digest)) throw new Error(`${JSON.stringify(digest)} is not a sha256 digest`);
}

/** Throws unless `reference` is a tag or a sha256 digest: what a manifest request names. */
export function checkReference(reference: string): void {
  if (!isDigest(reference) && !isValidTag(reference)) throw new Error(`${JSON.stringify(reference)} is neither a tag nor a sha256 digest`);
}

/**
 * Parse `[host[:port]/]path[:tag][@sha256:…]`. The first element is a host only if it has
 * a `.` or `:` or is `localhost` (as the Docker CLI decides); otherwise the name is on Docker
 * Hub, where one-element names live under `library/`. A name with neither tag nor digest
 * means `:latest`.
 */
export function parseReference(s: string): Reference {
  const quoted = JSON.stringify(s);
  if (s.trim() !== s || s === '') throw new Error(`image reference ${quoted} is empty or has surrounding spaces`);
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw new Error(`image reference ${quoted}: ${JSON.stringify(digest)} is not a sha256 digest (sha256: and 64 lower-case hex digits)`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new Error(`image reference ${quoted}: tag ${JSON.stringify(tag)} is not valid (letters, digits, _ . -, at most 128, not starting with . or -)`);
  }
  const { registry, repository } = splitName(rest, `image reference ${quoted}`, false);
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
}

/**
 * Parse a push target, `host[:port]/path`. The host is required: a target defaulting to
 * Docker Hub would surprise more people than it helps. Tags and digests are not allowed.
 */
export function parseRepository(s: string): RepositoryName {
  const quoted = JSON.stringify(s);
  if (s === '' || /\s/.test(s)) throw new Error(`repository ${quoted} is empty or contains spaces`);
  if (s.includes('@')) throw new Error(`repository ${quoted} must not include a digest; give host/path only`);
  if (s.includes('..')) throw new Error(`repository ${quoted} contains ".."`);
  if (s !== s.toLowerCase()) throw new Error(`repository ${quoted} must be lower-case (try ${JSON.stringify(s.toLowerCase())})`);
  const slash = s.indexOf('/');
  const first = slash < 0 ? s : s.slice(0, slash);
  if (!looksLikeHost(first)) {
    throw new Error(`repository ${quoted} has no registry host; write it as host[:port]/path, e.g. ghcr.io/${s}`);
  }
  if (slash < 0 || slash === s.length - 1) throw new Error(`repository ${quoted} has no path after the host`);
  if (s.lastIndexOf(':') > s.lastIndexOf('/')) throw new Error(`repository ${quoted} must not include a tag; tags are set separately`);
  return splitName(s, `repository ${quoted}`, true);
}

export const formatReference = (r: Reference): string =>
  `${r.registry}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;

/** docker.io's aliases become docker.io; other hosts are lower-cased (DNS names are case-insensitive). */
export function canonicalRegistry(host: string): string {
  const h = host.toLowerCase();
  return DOCKER_HUB_ALIASES.has(h) ? DOCKER_HUB : h;
}

/** Where a registry's API is served: Docker Hub's name is not its API host. */
export const apiHost = (registry: string): string => (canonicalRegistry(registry) === DOCKER_HUB ? DOCKER_HUB_API : registry);

/** Loopback registries are spoken to over plain HTTP, everything else over HTTPS (docs/publishing.md). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  const name = h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.split(':')[0];
  return name === 'localhost' || name === '127.0.0.1' || name === '[::1]';
}

function looksLikeHost(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost';
}

function splitName(name: string, what: string, requireHost: boolean): RepositoryName {
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  let registry: string;
  let path: string;
  if (slash >= 0 && looksLikeHost(first)) {
    if (!HOST.test(first)) throw new Error(`${what}: ${JSON.stringify(first)} is not a valid registry host[:port]`);
    registry = canonicalRegistry(first);
    path = name.slice(slash + 1);
  } else {
    if (requireHost) throw new Error(`${what} has no registry host`);
    registry = DOCKER_HUB;
    path = name;
  }
  if (path === '') throw new Error(`${what} has no repository path`);
  for (const c of path.split('/')) {
    if (!COMPONENT.test(c)) {
      const why = c !== c.toLowerCase() ? 'must be lower-case' : 'may only contain a-z, 0-9 and single separators (. _ __ -) between them';
      throw new Error(`${what}: path component ${JSON.stringify(c)} ${why}`);
    }
  }
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  if (registry.length + 1 + path.length > MAX_NAME) throw new Error(`${what}: name is longer than ${MAX_NAME} characters`);
  return { registry, repository: path };
}
