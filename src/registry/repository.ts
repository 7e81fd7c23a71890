import { createHash } from 'node:crypto';
import { pipeline, Transform, type Readable } from 'node:stream';
import { isDigest, sha256 } from '../oci/digest.js';
import type { BlobOrigin } from '../oci/layer.js';
import { isIndexMediaType, isManifestMediaType, manifestAccept, MediaType, type Descriptor, type Index } from '../oci/spec.js';
import type { ContentSource, RawManifest } from '../oci/store.js';
import type { Registry, RegistryRequest } from './client.js';
import { describeFailure, describeOperation, type Operation, type RegistryError } from './errors.js';
import { discard, readLimited, REDIRECTS, type HttpResponse } from './http.js';
import { checkDigest, checkReference } from './reference.js';
import { isTransientNetworkError } from './retry.js';
import { Uploads, type ProgressListener } from './upload.js';

/** Manifests are small; the OCI spec asks registries to accept at least 4 MiB. */
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

/**
 * One repository: reads for base images and validation (a ContentSource), and the push
 * protocol's steps for the publisher.
 */
export class Repository implements ContentSource {
  readonly name: string;
  readonly origin: BlobOrigin;
  /** @internal The scope of every request of a push, and of an upload's. */
  readonly pushScopes: readonly string[];
  private readonly readScopes: readonly string[];
  private readonly uploads: Uploads;

  constructor(
    readonly registry: Registry,
    readonly repository: string,
    private readonly access: 'pull' | 'push',
  ) {
    this.name = registry.where(repository);
    this.origin = { registry: registry.host, repository };
    this.pushScopes = [`repository:${repository}:pull,push`];
    this.readScopes = access === 'push' ? this.pushScopes : [`repository:${repository}:pull`];
    this.uploads = new Uploads(this);
  }

  /** This repository with push-scoped reads, as the publisher wants it (see Registry.repository). */
  forPush(): Repository {
    return this.access === 'push' ? this : new Repository(this.registry, this.repository, 'push');
  }

  async getManifest(reference: string): Promise<RawManifest> {
    checkReference(reference);
    const op: Operation = { action: `pull manifest ${reference}`, preposition: 'from' };
    const { res, bytes } = await this.readWhole(op, { method: 'GET', url: this.url(`manifests/${reference}`), scopes: this.readScopes, headers: { Accept: manifestAccept } }, async (res) => {
      if (res.status !== 200) throw await this.errorFrom(op, res);
      return { res, bytes: await readLimited(res, MAX_MANIFEST_BYTES, `${op.action} from ${this.name}`) };
    });
    const digest = sha256(bytes);
    if (isDigest(reference) && digest !== reference) {
      throw new Error(`${op.action} from ${this.name}: the registry served bytes that hash to ${digest}`);
    }
    const claimed = res.headers.get('docker-content-digest');
    if (claimed?.startsWith('sha256:') && claimed !== digest) {
      throw new Error(`${op.action} from ${this.name}: Docker-Content-Digest says ${claimed} but the bytes hash to ${digest}`);
    }
    return { bytes, digest, mediaType: manifestMediaType(res.headers.get('content-type'), bytes) };
  }

  /** The manifest's descriptor, or undefined if the registry does not have it. */
  async headManifest(reference: string): Promise<Descriptor | undefined> {
    checkReference(reference);
    const op: Operation = { action: `check manifest ${reference}`, preposition: 'in' };
    const res = await this.send(op, { method: 'HEAD', url: this.url(`manifests/${reference}`), scopes: this.readScopes, headers: { Accept: manifestAccept } });
    if (res.status === 404) {
      await discard(res);
      return undefined;
    }
    if (res.status !== 200) throw await this.errorFrom(op, res);
    await discard(res);
    const claimed = res.headers.get('docker-content-digest');
    const size = Number(res.headers.get('content-length'));
    const mediaType = mediaTypeOf(res.headers.get('content-type'));
    if (claimed && isDigest(claimed) && Number.isFinite(size) && size > 0 && mediaType && (isManifestMediaType(mediaType) || isIndexMediaType(mediaType))) {
      if (isDigest(reference) && claimed !== reference) {
        throw new Error(`${op.action} in ${this.name}: the registry answered for ${claimed}`);
      }
      return { mediaType, digest: claimed, size };
    }
    // Some registries leave these headers off a HEAD; the manifest itself is the answer.
    const raw = await this.getManifest(reference);
    return { mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length };
  }

  /** The blob, streamed; the stream fails at its end if the bytes do not match the digest. */
  async getBlob(digest: string): Promise<Readable> {
    checkDigest(digest);
    const op: Operation = { action: `pull blob ${digest}`, preposition: 'from' };
    const res = await this.send(op, { method: 'GET', url: this.url(`blobs/${digest}`), scopes: this.readScopes });
    if (res.status !== 200) throw await this.errorFrom(op, res);
    const hash = createHash('sha256');
    const where = this.name;
    const verify = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        cb(null, chunk);
      },
      flush(cb) {
        const got = `sha256:${hash.digest('hex')}`;
        cb(got === digest ? null : new Error(`pull blob ${digest} from ${where}: the bytes received hash to ${got}`));
      },
    });
    // pipeline destroys the download if the reader stops early, and passes its errors on.
    return pipeline(res.body, verify, () => {});
  }

  async hasBlob(digest: string): Promise<boolean> {
    checkDigest(digest);
    const op: Operation = { action: `check blob ${digest}`, preposition: 'in' };
    // A redirect means the registry has the blob and sends readers to its storage; following
    // it would HEAD a presigned GET URL, which S3-style storage answers with 403.
    const res = await this.send(op, { method: 'HEAD', url: this.url(`blobs/${digest}`), scopes: this.readScopes, followRedirects: false });
    await discard(res);
    if (res.status === 200 || REDIRECTS.has(res.status)) return true;
    if (res.status === 404) return false;
    throw await this.errorFrom(op, res);
  }

  /** Cross-repository mount; true only when mounted (see Uploads.mount in upload.ts). */
  mountBlob(digest: string, fromRepository: string): Promise<boolean> {
    return this.uploads.mount(digest, fromRepository);
  }

  /** Upload a blob whose digest and size are known (see Uploads.upload in upload.ts: its protocols and fallbacks). */
  uploadBlob(digest: string, size: number, open: () => Promise<Readable>, onProgress?: ProgressListener): Promise<void> {
    return this.uploads.upload(digest, size, open, onProgress);
  }

  /** Upload a blob while it is being made, in one attempt (see Uploads.uploadWhileWritten in upload.ts). */
  uploadWhileWritten(source: Readable, digest: Promise<string>): Promise<void> {
    return this.uploads.uploadWhileWritten(source, digest);
  }

  /** PUT a manifest or index; returns its digest (the sha256 of exactly these bytes). */
  async putManifest(reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    return (await this.pushManifest(reference, bytes, mediaType)).digest;
  }

  /**
   * PUT a manifest and report what the registry said of it: its digest, and the `OCI-Subject`
   * header that a registry which processed the manifest's `subject` answers with (distribution
   * spec, "Pushing Manifests with Subject"); null when it did not.
   */
  async pushManifest(reference: string, bytes: Buffer, mediaType: string): Promise<{ digest: string; subject: string | null }> {
    checkReference(reference);
    const digest = sha256(bytes);
    if (isDigest(reference) && reference !== digest) throw new Error(`push manifest to ${this.name}: bytes hash to ${digest}, not ${reference}`);
    const op: Operation = { action: `push manifest ${reference}`, preposition: 'to' };
    const res = await this.send(op, { method: 'PUT', url: this.url(`manifests/${reference}`), scopes: this.pushScopes, headers: { 'Content-Type': mediaType }, body: bytes });
    if (res.status < 200 || res.status > 299) throw await this.errorFrom(op, res);
    await discard(res);
    // Not every registry sends Docker-Content-Digest; when one does, it must agree.
    const claimed = res.headers.get('docker-content-digest');
    if (claimed?.startsWith('sha256:') && claimed !== digest) {
      throw new Error(`${op.action} to ${this.name}: the registry stored ${claimed}, expected ${digest}`);
    }
    return { digest, subject: res.headers.get('oci-subject') };
  }

  /**
   * The referrers API (distribution spec, "Listing Referrers"): the index of manifests whose
   * `subject` is `digest`, or undefined when the registry lacks the API — it answers 404
   * (distribution 2.8 does), or something that is not an index.
   */
  async referrers(digest: string): Promise<Index | undefined> {
    const op: Operation = { action: `list referrers of ${digest}`, preposition: 'in' };
    return this.readWhole(op, { method: 'GET', url: this.url(`referrers/${digest}`), scopes: this.readScopes, headers: { Accept: MediaType.OciIndex } }, async (res) => {
      if (res.status === 404) {
        await discard(res);
        return undefined;
      }
      if (res.status !== 200) throw await this.errorFrom(op, res);
      try {
        const doc = JSON.parse((await readLimited(res, MAX_MANIFEST_BYTES, `${op.action} in ${this.name}`)).toString('utf8')) as Index;
        return Array.isArray(doc.manifests) ? doc : undefined;
      } catch {
        return undefined;
      }
    });
  }

  /** Every tag, following `Link` pagination; `[]` when the repository does not exist yet. */
  async listTags(): Promise<string[]> {
    const op: Operation = { action: 'list tags', preposition: 'of' };
    const tags: string[] = [];
    const seen = new Set<string>();
    let url: URL | undefined = this.url('tags/list');
    while (url) {
      if (seen.has(url.href) || seen.size >= 10_000) throw new Error(`list tags of ${this.name}: the registry's pagination does not end`);
      seen.add(url.href);
      const pageUrl: URL = url;
      const page = await this.readWhole(op, { method: 'GET', url: pageUrl, scopes: this.readScopes }, async (res) => {
        // distribution answers NAME_UNKNOWN with 404 for a repository nobody pushed to yet.
        if (res.status === 404 && seen.size === 1) {
          await discard(res);
          return undefined;
        }
        if (res.status !== 200) throw await this.errorFrom(op, res);
        const text = (await readLimited(res, MAX_MANIFEST_BYTES, `list tags of ${this.name}`)).toString('utf8');
        let doc: { tags?: string[] | null };
        try {
          doc = JSON.parse(text) as typeof doc;
        } catch {
          throw new Error(`list tags of ${this.name}: the answer is not JSON (${JSON.stringify(text.slice(0, 100))})`);
        }
        return { tags: doc.tags ?? [], next: nextLink(res.headers.get('link'), pageUrl, this.registry.baseUrl, this.name) };
      });
      if (!page) return [];
      tags.push(...page.tags);
      url = page.next;
    }
    return tags;
  }

  /**
   * Send and read the whole body as one retried step: a connection cut mid-body is as
   * transient as one cut before the headers (docs/reliability.md), and only a new request recovers it.
   */
  private readWhole<T>(op: Operation, req: Omit<RegistryRequest, 'repository' | 'retry'>, read: (res: HttpResponse) => Promise<T>): Promise<T> {
    const what = describeOperation(op, this.registry.host, this.repository);
    const once = async () => {
      const res = await this.send(op, { ...req, retry: false });
      try {
        return await read(res);
      } catch (err) {
        throw isTransientNetworkError(err) ? new Error(`${what}: ${describeFailure(err)}`, { cause: err }) : err;
      }
    };
    return this.registry.retried(what, once);
  }

  /** @internal A request about this repository (Registry.send). */
  send(op: Operation, req: Omit<RegistryRequest, 'repository'>): Promise<HttpResponse> {
    return this.registry.send(op, { ...req, repository: this.repository });
  }

  /** @internal `/v2/<name>/<path>` on the registry. */
  url(path: string): URL {
    return new URL(`${this.registry.baseUrl}/v2/${this.repository}/${path}`);
  }

  /** @internal A RegistryError from a response about this repository, consuming its body. */
  errorFrom(op: Operation, res: HttpResponse): Promise<RegistryError> {
    return this.registry.errorFrom(op, this.repository, res);
  }
}

const mediaTypeOf = (contentType: string | null): string | undefined => contentType?.split(';')[0].trim() || undefined;

/**
 * The served Content-Type, unless a registry sent a generic one (`application/json`,
 * `text/plain`); then the document's own `mediaType`, or its shape.
 */
function manifestMediaType(contentType: string | null, bytes: Buffer): string {
  const served = mediaTypeOf(contentType);
  if (served && (isManifestMediaType(served) || isIndexMediaType(served) || served.startsWith('application/vnd.'))) return served;
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown; manifests?: unknown };
    if (typeof doc.mediaType === 'string' && doc.mediaType) return doc.mediaType;
    return Array.isArray(doc.manifests) ? MediaType.OciIndex : MediaType.OciManifest;
  } catch {
    return served ?? MediaType.OciManifest;
  }
}

/**
 * `Link: </v2/app/tags/list?last=x&n=100>; rel="next"`. A next page on another origin is not
 * followed (the registry's credentials are not sent elsewhere), and not dropped either: a list
 * cut short could make a release's floating tags move backward (docs/tags.md).
 */
function nextLink(header: string | null, current: URL, origin: string, name: string): URL | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const m = /<([^>]*)>\s*;(.*)/.exec(part.trim());
    if (m && /rel="?next"?/i.test(m[2])) {
      const next = new URL(m[1], current);
      if (next.origin !== origin) throw new Error(`list tags of ${name}: the next page is on another origin (${next.origin}); not following it`);
      return next;
    }
  }
  return undefined;
}
