import { childEnv, GoToolchain } from './gobuild/go.js';
import { execRunner } from './exec.js';
import { kodataEntries } from './gobuild/kodata.js';
import type { EngineDeps } from './engine.js';
import type { Logger } from './log.js';
import { LayoutSource, parseLayoutReference } from './oci/layout.js';
import { previousImages } from './publish/previous.js';
import { RegistryPublisher } from './publish/registry.js';
import type { TokenRefusals } from './registry/auth.js';
import { Registry, type RegistryOptions } from './registry/client.js';
import { dockerConfigCredentials, helperRunner, repositoryCredentials, type CredentialProvider } from './registry/credentials.js';
import { parseReference, parseRepository } from './registry/reference.js';
import { RetryPolicy } from './registry/retry.js';
import type { UploadFallbacks } from './registry/upload.js';
import { toolkitArtifactStore } from './fanout/handoff.js';
import { attach, type Attestor } from './publish/attachments.js';
import { makeAttestor, type AttestorOptions } from './provenance/attestor.js';

export interface WiringOptions {
  logger: Logger;
  env: Record<string, string | undefined>;
  /** The target repository's host gets these credentials, and no other host (docs/publishing.md#credentials). */
  username?: string;
  token?: string;
  /** The `github-token` input: no child process sees it either. */
  githubToken?: string;
  /** A function when it is known only later (the job's git queries may name it): read at the first registry request. */
  targetRepository?: string | (() => string | undefined);
  /** The publish phase's time budget (the `timeout` input); it starts when publishing does. */
  timeoutMs?: number;
  /** Aborted when the step is cancelled: Go is killed and registry requests stop (src/cancel.ts). */
  signal?: AbortSignal;
  /** Provenance on (docs/provenance.md): how to sign. Asked once, when the first package is attached. */
  provenance?: () => Omit<AttestorOptions, 'retry' | 'logger'> | undefined;
}

/** The real dependencies: Go from PATH, registries over HTTP(S), the file system for kodata. */
export function realDeps(o: WiringOptions): EngineDeps {
  // What every child process gets: Go and the Docker credential helpers alike.
  const children = childEnv(o.env, [o.token ?? '', o.githubToken ?? ''].filter(Boolean));
  const go = new GoToolchain(execRunner(o.signal), children, o.env.KO_ANNOTATE_GO ?? 'go');
  const dockerConfig = dockerConfigCredentials({ env: o.env, runHelper: helperRunner(children) });
  // Asked once per registry client (see Registry), by then the target is known.
  const credentials: CredentialProvider = (host) => {
    const repository = typeof o.targetRepository === 'function' ? o.targetRepository() : o.targetRepository;
    const target = repository ? parseRepository(repository).registry : undefined;
    return (target && (o.username || o.token) ? repositoryCredentials(target, o.username, o.token, dockerConfig) : dockerConfig)(host);
  };
  // Base images are read with the default bounded retries; publishing gets its own registry
  // clients whose retry policy carries the deadline, which starts when the first target is
  // asked for: the engine does that only after every build is done (README.md#inputs `timeout`).
  // Credentials a token realm refused are not offered again for the same scopes by any client.
  const refusals: TokenRefusals = new Map();
  // An upload protocol a registry refused is not tried again by any client either.
  const uploadFallbacks: UploadFallbacks = new Map();
  /** One client per host, made on first use with `options()`. */
  const perHost = (options: () => Partial<RegistryOptions>) => {
    const clients = new Map<string, Registry>();
    return (host: string) => {
      let client = clients.get(host);
      if (!client) clients.set(host, (client = new Registry(host, { credentials, logger: o.logger, refusals, uploadFallbacks, ...options() })));
      return client;
    };
  };
  let publishRetry: RetryPolicy | undefined;
  // Base images' clients read manifests before the builds and stream base layers into the
  // uploads while publishing: those reads are bounded by the publish deadline once it has
  // started, or a base registry that stops answering would hold the run past its `timeout`.
  const registry = perHost(() => ({ retry: new RetryPolicy({ deadline: () => publishRetry?.deadline, signal: o.signal }) }));
  const publishRetryPolicy = () => (publishRetry ??= new RetryPolicy({ deadline: o.timeoutMs === undefined ? undefined : Date.now() + o.timeoutMs, signal: o.signal }));
  const publishRegistry = perHost(() => ({ retry: publishRetryPolicy() }));
  // Signing is part of the publish phase: the same policy and deadline (README.md#inputs `timeout`).
  let attestor: Attestor | undefined | null = null;
  const attestorOf = (): Attestor | undefined => {
    if (attestor === null) {
      const p = o.provenance?.();
      attestor = p ? makeAttestor({ ...p, logger: o.logger, retry: publishRetryPolicy }) : undefined;
    }
    return attestor;
  };
  // Registry clients for the build phase: one attempt per request, and a request that moves
  // no bytes for 5 s is given up.
  const buildPhase = perHost(() => ({ retry: new RetryPolicy({ maxAttempts: 1, signal: o.signal }), requestTimeoutMs: 5000 }));
  /** `host/path` as a repository on `clients`' client for its host. */
  const repositoryOn = (clients: (host: string) => Registry, name: string, access?: 'push') => {
    const r = parseRepository(name);
    return clients(r.registry).repository(r.repository, { access });
  };
  return {
    go,
    logger: o.logger,
    async openBase(reference) {
      if (reference.startsWith('oci:')) {
        // `oci:<dir>[:<ref.name>]` names an OCI image layout, as skopeo's transport does.
        const { dir, reference: name } = parseLayoutReference(reference.slice('oci:'.length));
        return { source: new LayoutSource(dir), reference: name };
      }
      const ref = parseReference(reference);
      return { source: registry(ref.registry).repository(ref.repository), reference: ref.digest ?? ref.tag ?? 'latest' };
    },
    registryTarget: (repository, logger = o.logger) => new RegistryPublisher(repositoryOn(publishRegistry, repository, 'push'), { logger }),
    // Both run while Go builds, so not on the publish clients (their deadline has not started),
    // and without retries: what fails here is done (compressed, uploaded) the usual way.
    // Pull access: this runs while Go builds, and a failed build must not have asked to push.
    previousImages: (repository, tags, builder) => previousImages(repositoryOn(buildPhase, repository), tags, builder),
    uploadWhileWritten: (repository, bytes, digest) => repositoryOn(buildPhase, repository, 'push').uploadWhileWritten(bytes, digest),
    kodata: (packageDir, repoRoot) => kodataEntries({ packageDir, repoRoot }),
    // docs/fan-out.md: the toolkit's artifact client is loaded only when a fan-out job first uses it.
    // The merge job signs what it publishes, on the same attestor and deadline (docs/fan-out.md).
    fanOut: { artifacts: toolkitArtifactStore(), repository: (name) => repositoryOn(publishRegistry, name, 'push'), attestor: attestorOf },
    // docs/provenance.md#storage: referrers go to the same publish-side registry client as the image.
    // A fan-out build leg signs nothing: it publishes no index (docs/fan-out.md).
    attach: (built, where, published, logger = o.logger, imagesUp) =>
      attach(built, { ...where, attestor: where.push && !where.deferTags ? attestorOf() : undefined }, { logger, repository: (name) => repositoryOn(publishRegistry, name, 'push') }, published, imagesUp),
  };
}

