import { describe, expect, it } from '@jest/globals';
import { parseBuildInfo } from '../src/gobuild/go.js';
import { sha256 } from '../src/oci/digest.js';
import { MediaType, Key } from '../src/oci/spec.js';
import { EMPTY_JSON, referrersTag } from '../src/publish/referrers.js';
import { sbomReferrer } from '../src/sbom/referrer.js';
import { golangPurl, ociPurl, spdxDocument, spdxTime, type SpdxInput, type SpdxPackage } from '../src/sbom/spdx.js';
import { spdxProblems } from './support/spdx.js';

// `go version -m` output as Go 1.23 prints it: a plain dependency, a module replaced by
// another module (with the replacement's own sum), a directory replacement (no version, no
// sum), a +incompatible version and a path with capitals.
const GO_VERSION_M = [
  '/tmp/app: go1.23.5',
  '\tpath\texample.com/shop/cmd/shop',
  '\tmod\texample.com/shop\t(devel)\t',
  '\tdep\tgithub.com/BurntSushi/toml\tv1.4.0\th1:kuoIxZQy2WRRk1pttg9asf+WVv6tWQuBNVmK4+nh1NfQ=',
  '\tdep\tgithub.com/docker/docker\tv24.0.7+incompatible\th1:Wo6l37AuwP3JaMnZa226lzVXGA3F9Ig1seQen0cKYlM=',
  '\tdep\texample.com/greet\tv0.1.0',
  '\t=>\t./greet\t(devel)\t',
  '\tdep\tgolang.org/x/text\tv0.14.0\th1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=',
  '\t=>\tgithub.com/acme/text-fork\tv0.14.1-acme.1\th1:AAAAw1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=',
  '\tbuild\t-buildmode=exe',
  '\tbuild\t-trimpath=true',
  '\tbuild\tCGO_ENABLED=0',
  '\tbuild\tGOARCH=arm64',
  '\tbuild\tGOOS=linux',
  '\tbuild\tvcs=git',
  '\tbuild\tvcs.revision=0123456789abcdef0123456789abcdef01234567',
  '',
].join('\n');

const IMAGE_DIGEST = `sha256:${'ab'.repeat(32)}`;
const input = (over: Partial<SpdxInput> = {}): SpdxInput => ({
  buildInfo: parseBuildInfo(GO_VERSION_M),
  imageDigest: IMAGE_DIGEST,
  platform: { os: 'linux', architecture: 'arm64' },
  repository: 'ghcr.io/acme/shop',
  created: '2026-01-02T03:04:05Z',
  tool: 'ko-annotate-1.2.3',
  ...over,
});

const byName = (pkgs: SpdxPackage[], name: string) => {
  const p = pkgs.find((x) => x.name === name);
  if (!p) throw new Error(`no package ${name} in ${pkgs.map((x) => x.name).join(', ')}`);
  return p;
};
const purlOf = (p: SpdxPackage) => p.externalRefs.find((r) => r.referenceType === 'purl')?.referenceLocator;

describe('spdxDocument', () => {
  const { document: doc, bytes, digest } = spdxDocument(input());

  it('is an SPDX 2.3 document created at the build time by ko-annotate', () => {
    expect(doc).toMatchObject({
      spdxVersion: 'SPDX-2.3',
      dataLicense: 'CC0-1.0',
      SPDXID: 'SPDXRef-DOCUMENT',
      name: `ghcr.io/acme/shop@${IMAGE_DIGEST}`,
      creationInfo: { created: '2026-01-02T03:04:05Z', creators: ['Tool: ko-annotate-1.2.3'] },
    });
    expect(doc.documentNamespace).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(digest).toBe(sha256(bytes));
    expect(JSON.parse(bytes.toString('utf8'))).toEqual(doc);
  });

  it('validates against the SPDX 2.3 JSON schema, and its relationships name existing elements', () => {
    expect(spdxProblems(doc)).toEqual([]);
  });

  it('describes the image as a container package with an oci purl and its manifest digest as SHA256', () => {
    const image = doc.packages[0];
    expect(image).toMatchObject({
      SPDXID: 'SPDXRef-Image',
      name: 'ghcr.io/acme/shop',
      versionInfo: IMAGE_DIGEST,
      primaryPackagePurpose: 'CONTAINER',
      checksums: [{ algorithm: 'SHA256', checksumValue: 'ab'.repeat(32) }],
      comment: 'platform linux/arm64',
    });
    expect(purlOf(image)).toBe(`pkg:oci/shop@sha256%3A${'ab'.repeat(32)}?arch=arm64&repository_url=ghcr.io/acme/shop`);
  });

  it('lists the main module as the application, without the (devel) pseudo-version', () => {
    const main = byName(doc.packages, 'example.com/shop');
    expect(main.primaryPackagePurpose).toBe('APPLICATION');
    expect(main.versionInfo).toBeUndefined();
    expect(purlOf(main)).toBe('pkg:golang/example.com/shop');
    expect(main.comment).toBe('main module of example.com/shop/cmd/shop (vcs.revision 0123456789abcdef0123456789abcdef01234567)');
  });

  it('lists every dependency as a pkg:golang purl, keeping case and percent-encoding the version', () => {
    expect(purlOf(byName(doc.packages, 'github.com/BurntSushi/toml'))).toBe('pkg:golang/github.com/BurntSushi/toml@v1.4.0');
    expect(purlOf(byName(doc.packages, 'github.com/docker/docker'))).toBe('pkg:golang/github.com/docker/docker@v24.0.7%2Bincompatible');
    expect(byName(doc.packages, 'github.com/docker/docker').versionInfo).toBe('v24.0.7+incompatible');
  });

  it('names a module replacement by the replacement path and version, and says what it replaces', () => {
    const fork = byName(doc.packages, 'github.com/acme/text-fork');
    expect(fork.versionInfo).toBe('v0.14.1-acme.1');
    expect(purlOf(fork)).toBe('pkg:golang/github.com/acme/text-fork@v0.14.1-acme.1');
    expect(fork.comment).toBe('replaces golang.org/x/text v0.14.0 (replace golang.org/x/text v0.14.0 => github.com/acme/text-fork v0.14.1-acme.1)');
    expect(doc.packages.some((p) => p.name === 'golang.org/x/text')).toBe(false);
    // The sum is the replacement's, from the `=>` line.
    expect(fork.annotations?.[0].comment).toBe('go.sum: github.com/acme/text-fork v0.14.1-acme.1 h1:AAAAw1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=');
  });

  it('keeps the required path of a directory replacement and gives it no version', () => {
    const greet = byName(doc.packages, 'example.com/greet');
    expect(greet.versionInfo).toBeUndefined();
    expect(purlOf(greet)).toBe('pkg:golang/example.com/greet');
    expect(greet.comment).toBe('replaced by the local directory ./greet (replace example.com/greet v0.1.0 => ./greet): built from source, no module version');
    expect(greet.annotations).toBeUndefined();
  });

  it('puts h1: sums in annotations as go.sum lines, never in checksums (SPDX has no h1 algorithm)', () => {
    const toml = byName(doc.packages, 'github.com/BurntSushi/toml');
    expect(toml.checksums).toBeUndefined();
    expect(toml.annotations).toEqual([
      {
        annotationDate: '2026-01-02T03:04:05Z',
        annotationType: 'OTHER',
        annotator: 'Tool: ko-annotate-1.2.3',
        comment: 'go.sum: github.com/BurntSushi/toml v1.4.0 h1:kuoIxZQy2WRRk1pttg9asf+WVv6tWQuBNVmK4+nh1NfQ=',
      },
    ]);
    expect(doc.packages.filter((p) => p.checksums).map((p) => p.SPDXID)).toEqual(['SPDXRef-Image']);
  });

  it('lists the Go standard library at the toolchain version', () => {
    const std = byName(doc.packages, 'stdlib');
    expect(std.versionInfo).toBe('go1.23.5');
    expect(purlOf(std)).toBe('pkg:golang/stdlib@1.23.5');
  });

  it('relates document DESCRIBES image CONTAINS main module DEPENDS_ON each module and stdlib', () => {
    const main = byName(doc.packages, 'example.com/shop').SPDXID;
    const id = (name: string) => byName(doc.packages, name).SPDXID;
    expect(doc.relationships).toEqual([
      { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: 'SPDXRef-Image' },
      { spdxElementId: 'SPDXRef-Image', relationshipType: 'CONTAINS', relatedSpdxElement: main },
      ...['example.com/greet', 'github.com/BurntSushi/toml', 'github.com/acme/text-fork', 'github.com/docker/docker', 'stdlib'].map((n) => ({
        spdxElementId: main,
        relationshipType: 'DEPENDS_ON',
        relatedSpdxElement: id(n),
      })),
    ]);
  });

  it('orders packages image, main module, modules by name, stdlib', () => {
    expect(doc.packages.map((p) => p.name)).toEqual([
      'ghcr.io/acme/shop',
      'example.com/shop',
      'example.com/greet',
      'github.com/BurntSushi/toml',
      'github.com/acme/text-fork',
      'github.com/docker/docker',
      'stdlib',
    ]);
  });
});

describe('determinism', () => {
  it('gives identical bytes for the same input, whatever the order of the build info', () => {
    const a = spdxDocument(input());
    const shuffled = parseBuildInfo(GO_VERSION_M);
    shuffled.deps.reverse();
    const b = spdxDocument(input({ buildInfo: shuffled }));
    expect(b.bytes.equals(a.bytes)).toBe(true);
    expect(b.digest).toBe(a.digest);
  });

  it('derives the namespace from the image: another digest or repository, another namespace', () => {
    const ns = (over: Partial<SpdxInput>) => spdxDocument(input(over)).document.documentNamespace;
    expect(ns({})).toBe(ns({}));
    expect(ns({ imageDigest: `sha256:${'cd'.repeat(32)}` })).not.toBe(ns({}));
    expect(ns({ repository: 'ghcr.io/acme/other' })).not.toBe(ns({}));
  });

  it('normalizes the created time to SPDX form and refuses a non-date', () => {
    expect(spdxTime('2026-01-02T03:04:05Z')).toBe('2026-01-02T03:04:05Z');
    expect(spdxTime('2026-01-02T04:04:05.250+01:00')).toBe('2026-01-02T03:04:05Z');
    expect(() => spdxDocument(input({ created: 'yesterday' }))).toThrow('SBOM: created time "yesterday" is not an RFC 3339 date');
  });
});

describe('the schema check is not vacuous', () => {
  const good = () => structuredClone(spdxDocument(input()).document) as unknown as Record<string, unknown> & { packages: Record<string, unknown>[] };
  it.each([
    ['a package without downloadLocation', (d: ReturnType<typeof good>) => delete d.packages[1].downloadLocation, "must have required property 'downloadLocation'"],
    ['an invented checksum algorithm', (d: ReturnType<typeof good>) => (d.packages[0].checksums = [{ algorithm: 'H1', checksumValue: 'ab' }]), 'must be equal to one of the allowed values'],
    ['an SPDX ID with a slash', (d: ReturnType<typeof good>) => (d.packages[1].SPDXID = 'SPDXRef-a/b'), 'must match pattern'],
    ['fractional seconds in created', (d: ReturnType<typeof good>) => ((d.creationInfo as { created: string }).created = '2026-01-02T03:04:05.1Z'), 'must match pattern'],
    ['a relationship to a missing element', (d: ReturnType<typeof good>) => ((d.relationships as { relatedSpdxElement: string }[])[0].relatedSpdxElement = 'SPDXRef-Nope'), 'SPDXRef-Nope names no element'],
  ])('rejects %s', (_what, spoil, message) => {
    const d = good();
    spoil(d);
    expect(spdxProblems(d).join('\n')).toContain(message);
  });
});

describe('purls', () => {
  it('encodes oci digests and sorts qualifiers', () => {
    expect(ociPurl('Hello', 'sha256:00', { repository_url: '127.0.0.1:5000/acme/hello', arch: 'amd64' })).toBe(
      'pkg:oci/hello@sha256%3A00?arch=amd64&repository_url=127.0.0.1:5000/acme/hello',
    );
  });
  it('leaves the version off when there is none', () => {
    expect(golangPurl('example.com/a', undefined)).toBe('pkg:golang/example.com/a');
    expect(golangPurl('gopkg.in/yaml.v3', 'v3.0.1')).toBe('pkg:golang/gopkg.in/yaml.v3@v3.0.1');
  });
});

describe('sbomReferrer', () => {
  const subject = { mediaType: MediaType.OciManifest, digest: IMAGE_DIGEST, size: 1234, platform: { os: 'linux', architecture: 'arm64' } };
  const sbom = spdxDocument(input()).bytes;
  const r = sbomReferrer({ subject, sbom, created: '2026-01-02T03:04:05Z' });

  it('is an OCI image manifest with artifactType, the empty config, the document as its one layer, and the image as subject', () => {
    expect(JSON.parse(r.bytes.toString('utf8'))).toEqual({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      artifactType: MediaType.SpdxJson,
      config: { mediaType: MediaType.OciEmpty, digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 },
      layers: [{ mediaType: MediaType.SpdxJson, digest: sha256(sbom), size: sbom.length, annotations: { [Key.Title]: 'sbom.spdx.json' } }],
      subject: { mediaType: MediaType.OciManifest, digest: IMAGE_DIGEST, size: 1234 },
      annotations: { [Key.Created]: '2026-01-02T03:04:05Z' },
    });
    expect(r.digest).toBe(sha256(r.bytes));
    expect(r.config.bytes.equals(EMPTY_JSON)).toBe(true);
    expect(r.layer.bytes.equals(sbom)).toBe(true);
  });

  it('lists itself in a referrers index with its artifactType and annotations', () => {
    expect(r.entry).toEqual({
      mediaType: MediaType.OciManifest,
      digest: r.digest,
      size: r.size,
      artifactType: MediaType.SpdxJson,
      annotations: { [Key.Created]: '2026-01-02T03:04:05Z' },
    });
    expect(referrersTag(IMAGE_DIGEST)).toBe(`sha256-${'ab'.repeat(32)}`);
  });
});
