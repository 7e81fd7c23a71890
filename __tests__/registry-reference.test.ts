import { describe, expect, it } from '@jest/globals';
import { apiHost, formatReference, isLoopbackHost, parseReference, parseRepository } from '../src/registry/reference.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseReference', () => {
  it.each([
    ['alpine', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['alpine:3.19', { registry: 'docker.io', repository: 'library/alpine', tag: '3.19' }],
    ['docker.io/alpine', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['index.docker.io/library/alpine', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['user/app', { registry: 'docker.io', repository: 'user/app', tag: 'latest' }],
    ['cgr.dev/chainguard/static:latest', { registry: 'cgr.dev', repository: 'chainguard/static', tag: 'latest' }],
    ['ghcr.io/o/r/app@' + D, { registry: 'ghcr.io', repository: 'o/r/app', digest: D }],
    ['ghcr.io/o/app:v1@' + D, { registry: 'ghcr.io', repository: 'o/app', tag: 'v1', digest: D }],
    ['localhost/app', { registry: 'localhost', repository: 'app', tag: 'latest' }],
    ['localhost:5000/app:1.0', { registry: 'localhost:5000', repository: 'app', tag: '1.0' }],
    ['127.0.0.1:5000/a/b', { registry: '127.0.0.1:5000', repository: 'a/b', tag: 'latest' }],
    ['[::1]:5000/app', { registry: '[::1]:5000', repository: 'app', tag: 'latest' }],
    ['Registry.Example.com/app', { registry: 'registry.example.com', repository: 'app', tag: 'latest' }],
    ['r.io/a_b/c__d/e-f/g--h/i.j', { registry: 'r.io', repository: 'a_b/c__d/e-f/g--h/i.j', tag: 'latest' }],
  ])('%s', (input, want) => {
    expect(parseReference(input)).toEqual(want);
  });

  it.each([
    ['', /empty/],
    [' alpine', /surrounding spaces/],
    ['ghcr.io/Owner/app', /"Owner" must be lower-case/],
    ['ghcr.io/o/app:-bad', /tag "-bad" is not valid/],
    ['ghcr.io/o/app@sha256:abc', /"sha256:abc" is not a sha256 digest/],
    ['ghcr.io/o/a..b', /path component "a..b"/],
    ['ghcr.io/o//app', /path component ""/],
    ['ghcr.io/', /has no repository path/],
    ['bad_host.io/app', /"bad_host.io" is not a valid registry host/],
    [`ghcr.io/o/app:${'x'.repeat(129)}`, /is not valid/],
  ])('rejects %j, quoting the value', (input, message) => {
    expect(() => parseReference(input)).toThrow(message);
    if (input) expect(() => parseReference(input)).toThrow(JSON.stringify(input));
  });

  it('round-trips through formatReference', () => {
    for (const s of ['ghcr.io/o/app:v1', `ghcr.io/o/app@${D}`, `localhost:5000/app:x@${D}`]) {
      expect(formatReference(parseReference(s))).toBe(s);
    }
    expect(formatReference(parseReference('alpine'))).toBe('docker.io/library/alpine:latest');
  });
});

describe('parseRepository', () => {
  it.each([
    ['ghcr.io/owner/repo', { registry: 'ghcr.io', repository: 'owner/repo' }],
    ['localhost:5000/app', { registry: 'localhost:5000', repository: 'app' }],
    ['127.0.0.1:5000/a/b/c', { registry: '127.0.0.1:5000', repository: 'a/b/c' }],
    ['docker.io/app', { registry: 'docker.io', repository: 'library/app' }],
  ])('%s', (input, want) => {
    expect(parseRepository(input)).toEqual(want);
  });

  it.each([
    ['ghcr.io/Owner/Repo', /must be lower-case \(try "ghcr.io\/owner\/repo"\)/],
    ['ghcr.io/o/my app', /contains spaces/],
    ['ghcr.io/o/../x', /contains "\.\."/],
    ['ghcr.io/o/app:v1', /must not include a tag/],
    [`ghcr.io/o/app@${D}`, /must not include a digest/],
    ['owner/app', /has no registry host; write it as host\[:port\]\/path, e.g. ghcr.io\/owner\/app/],
    ['localhost:5000', /has no path after the host/],
    ['ghcr.io/', /has no path after the host/],
    ['', /empty/],
  ])('rejects %j', (input, message) => {
    expect(() => parseRepository(input)).toThrow(message);
  });
});

describe('hosts', () => {
  it.each([
    ['localhost', true],
    ['localhost:5000', true],
    ['127.0.0.1', true],
    ['127.0.0.1:32768', true],
    ['[::1]', true],
    ['[::1]:5000', true],
    ['LOCALHOST:5000', true],
    ['ghcr.io', false],
    ['localhost.example.com', false],
    ['127.0.0.2:5000', false],
    ['[::2]:5000', false],
    ['10.0.0.1:5000', false],
  ])('isLoopbackHost(%s) = %s', (host, want) => {
    expect(isLoopbackHost(host)).toBe(want);
  });

  it('maps Docker Hub to its API host', () => {
    expect(apiHost('docker.io')).toBe('registry-1.docker.io');
    expect(apiHost('index.docker.io')).toBe('registry-1.docker.io');
    expect(apiHost('ghcr.io')).toBe('ghcr.io');
  });
});
