import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  anonymous,
  chainCredentials,
  dockerConfigCredentials,
  repositoryCredentials,
  spawnHelper,
  targetCredentials,
  type HelperResult,
  type HelperRunner,
} from '../src/registry/credentials.js';
import { dockerConfigDir } from './support/docker-config.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ko-annotate-creds-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const configDir = (config: unknown) => dockerConfigDir(root, config);

/** A runner that records calls and answers from a table keyed by program and stdin. */
function fakeRunner(answers: Record<string, HelperResult>) {
  const calls: { program: string; args: readonly string[]; input: string }[] = [];
  const run: HelperRunner = async (program, args, input) => {
    calls.push({ program, args, input });
    return answers[`${program} ${input}`] ?? { code: 1, stdout: 'credentials not found in native keychain\n', stderr: '' };
  };
  return { run, calls };
}

const noHelper: HelperRunner = async () => {
  throw new Error('no helper expected');
};

describe('dockerConfigCredentials: auths', () => {
  it.each([
    ['host key', 'ghcr.io', 'ghcr.io'],
    ['https key', 'https://ghcr.io', 'ghcr.io'],
    ['key with a path', 'https://ghcr.io/v1/', 'ghcr.io'],
    ['host:port key', 'localhost:5000', 'localhost:5000'],
    ['http key with port', 'http://localhost:5000', 'localhost:5000'],
    ['docker login key for Docker Hub', 'https://index.docker.io/v1/', 'docker.io'],
    ['docker.io key', 'docker.io', 'docker.io'],
    ['registry-1 key for Docker Hub', 'registry-1.docker.io', 'docker.io'],
    ['upper-case key', 'GHCR.IO', 'ghcr.io'],
  ])('%s (%s) answers for %s', async (_name, key, host) => {
    const dir = await configDir({ auths: { [key]: { auth: b64('alice:s3cr:et') } } });
    const creds = dockerConfigCredentials({ configDir: dir, env: {}, runHelper: noHelper });
    expect(await creds(host)).toEqual({ username: 'alice', password: 's3cr:et' });
    expect(await creds('quay.io')).toBeUndefined();
  });

  it('also asks for Docker Hub under its aliases', async () => {
    const dir = await configDir({ auths: { 'https://index.docker.io/v1/': { auth: b64('bob:pw') } } });
    const creds = dockerConfigCredentials({ configDir: dir, env: {}, runHelper: noHelper });
    expect(await creds('index.docker.io')).toEqual({ username: 'bob', password: 'pw' });
  });

  it('reads username/password, identitytoken and registrytoken fields', async () => {
    const dir = await configDir({
      auths: {
        'a.io': { username: 'u', password: 'p' },
        'b.io': { auth: b64('<token>:'), identitytoken: 'refresh-me' },
        'c.io': { registrytoken: 'bearer-me' },
        'd.io': {},
      },
    });
    const creds = dockerConfigCredentials({ configDir: dir, env: {}, runHelper: noHelper });
    expect(await creds('a.io')).toEqual({ username: 'u', password: 'p' });
    expect(await creds('b.io')).toEqual({ username: '<token>', password: '', identityToken: 'refresh-me' });
    expect(await creds('c.io')).toEqual({ registryToken: 'bearer-me' });
    expect(await creds('d.io')).toBeUndefined();
  });

  it('finds the config through DOCKER_CONFIG, then HOME/.docker', async () => {
    const dir = await configDir({ auths: { 'ghcr.io': { auth: b64('x:y') } } });
    expect(await dockerConfigCredentials({ env: { DOCKER_CONFIG: dir }, runHelper: noHelper })('ghcr.io')).toEqual({ username: 'x', password: 'y' });
    const home = join(root, 'home');
    await mkdir(join(home, '.docker'), { recursive: true });
    await writeFile(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { 'ghcr.io': { auth: b64('h:z') } } }));
    expect(await dockerConfigCredentials({ env: { HOME: home }, runHelper: noHelper })('ghcr.io')).toEqual({ username: 'h', password: 'z' });
  });

  it('treats a missing config as no credentials and a broken one as an error naming the file', async () => {
    expect(await dockerConfigCredentials({ configDir: join(root, 'nowhere'), env: {}, runHelper: noHelper })('ghcr.io')).toBeUndefined();
    const dir = await configDir('{not json');
    await expect(dockerConfigCredentials({ configDir: dir, env: {}, runHelper: noHelper })('ghcr.io')).rejects.toThrow(`Docker config ${join(dir, 'config.json')} is not valid JSON`);
  });

  it('never quotes a malformed auth value', async () => {
    const dir = await configDir({ auths: { 'ghcr.io': { auth: b64('no-colon-secret') } } });
    const err = (await dockerConfigCredentials({ configDir: dir, env: {}, runHelper: noHelper })('ghcr.io').catch((e) => e)) as Error;
    expect(err.message).toMatch(/the "auth" of ghcr.io is not base64 of user:password/);
    expect(err.message).not.toContain('no-colon-secret');
    expect(err.message).not.toContain(b64('no-colon-secret'));
  });
});

describe('dockerConfigCredentials: helpers', () => {
  it('runs the credHelpers entry for the host with the server on stdin, not argv', async () => {
    const dir = await configDir({ credHelpers: { 'ghcr.io': 'gh', 'https://index.docker.io/v1/': 'hub' }, auths: { 'ghcr.io': { auth: b64('file:ignored') } } });
    const { run, calls } = fakeRunner({
      'docker-credential-gh ghcr.io': { code: 0, stdout: JSON.stringify({ ServerURL: 'ghcr.io', Username: 'helper', Secret: 'from-helper' }), stderr: '' },
      'docker-credential-hub https://index.docker.io/v1/': { code: 0, stdout: JSON.stringify({ Username: '<token>', Secret: 'idtoken' }), stderr: '' },
    });
    const creds = dockerConfigCredentials({ configDir: dir, env: {}, runHelper: run });
    expect(await creds('ghcr.io')).toEqual({ username: 'helper', password: 'from-helper' });
    expect(await creds('docker.io')).toEqual({ identityToken: 'idtoken' });
    expect(calls).toEqual([
      { program: 'docker-credential-gh', args: ['get'], input: 'ghcr.io' },
      { program: 'docker-credential-hub', args: ['get'], input: 'https://index.docker.io/v1/' },
    ]);
  });

  it('uses credsStore for every host, falling back to auths when the store has nothing', async () => {
    const dir = await configDir({ credsStore: 'desktop', auths: { 'quay.io': { auth: b64('q:file') } } });
    const { run, calls } = fakeRunner({
      'docker-credential-desktop ghcr.io': { code: 0, stdout: JSON.stringify({ Username: 'd', Secret: 'store' }), stderr: '' },
    });
    const creds = dockerConfigCredentials({ configDir: dir, env: {}, runHelper: run });
    expect(await creds('ghcr.io')).toEqual({ username: 'd', password: 'store' });
    expect(await creds('quay.io')).toEqual({ username: 'q', password: 'file' });
    expect(await creds('example.com')).toBeUndefined();
    expect(calls.map((c) => c.input)).toEqual(['ghcr.io', 'quay.io', 'example.com']);
  });

  it('reports a failing helper by name and host, without its input', async () => {
    const dir = await configDir({ credHelpers: { 'ghcr.io': 'broken' } });
    const { run } = fakeRunner({ 'docker-credential-broken ghcr.io': { code: 3, stdout: '', stderr: 'keychain locked\nmore' } });
    await expect(dockerConfigCredentials({ configDir: dir, env: {}, runHelper: run })('ghcr.io')).rejects.toThrow(
      'credential helper docker-credential-broken failed for ghcr.io (exit code 3): keychain locked',
    );
  });

  it('spawnHelper passes the server on stdin to a real helper program', async () => {
    const script = join(root, 'docker-credential-echo');
    // Prints the server it read from stdin and its argument count, as a helper's JSON.
    await writeFile(script, '#!/bin/sh\nread server\nprintf \'{"Username":"argc-%s","Secret":"%s"}\' "$#" "$server"\n');
    await chmod(script, 0o755);
    const dir = await configDir({ credHelpers: { 'ghcr.io': 'echo' } });
    const run: HelperRunner = (program, args, input) => spawnHelper(join(root, program), args, `${input}\n`);
    expect(await dockerConfigCredentials({ configDir: dir, env: {}, runHelper: run })('ghcr.io')).toEqual({ username: 'argc-1', password: 'ghcr.io' });
    await expect(spawnHelper(join(root, 'docker-credential-missing'), ['get'], '')).rejects.toThrow(/ENOENT/);
  });
});

describe('targetCredentials and chainCredentials', () => {
  it('gives the inputs to the target host only', async () => {
    const target = targetCredentials('ghcr.io', 'octocat', 'ghs_token');
    expect(await target('ghcr.io')).toEqual({ username: 'octocat', password: 'ghs_token' });
    expect(await target('GHCR.IO')).toEqual({ username: 'octocat', password: 'ghs_token' });
    expect(await target('cgr.dev')).toBeUndefined();
    expect(await target('ghcr.io.evil.example')).toBeUndefined();
    expect(await targetCredentials('ghcr.io', 'octocat', '')('ghcr.io')).toBeUndefined();
  });

  it('asks each provider in turn', async () => {
    const dir = await configDir({ auths: { 'cgr.dev': { auth: b64('c:d') }, 'ghcr.io': { auth: b64('file:ghcr') } } });
    const chain = chainCredentials(targetCredentials('ghcr.io', 'octocat', 'input-token'), dockerConfigCredentials({ configDir: dir, env: {}, runHelper: noHelper }), anonymous);
    expect(await chain('ghcr.io')).toEqual({ username: 'octocat', password: 'input-token' });
    expect(await chain('cgr.dev')).toEqual({ username: 'c', password: 'd' });
    expect(await chain('quay.io')).toBeUndefined();
  });
});

describe('repositoryCredentials (docs/publishing.md#credentials: the inputs, else the Docker config)', () => {
  const config = () =>
    configDir({ auths: { 'https://index.docker.io/v1/': { auth: b64('hubuser:dckr_pat') }, 'ghcr.io': { auth: b64('file:ghcr') } } }).then((dir) =>
      dockerConfigCredentials({ configDir: dir, env: {}, runHelper: noHelper }),
    );

  it('gives a token the user chose to the target before the Docker config', async () => {
    const creds = repositoryCredentials('docker.io', 'me', 'dckr_pat_input', await config());
    expect(await creds('registry-1.docker.io')).toEqual({ username: 'me', password: 'dckr_pat_input' });
  });

  it('lets docker/login-action’s entry for another registry win over the default github.token', async () => {
    const creds = repositoryCredentials('docker.io', 'octocat', 'ghs_default', await config());
    expect(await creds('registry-1.docker.io')).toEqual({ username: 'hubuser', password: 'dckr_pat' });
    // Without an entry for that registry the inputs are still offered, as before.
    expect(await repositoryCredentials('quay.io', 'octocat', 'ghs_default', await config())('quay.io')).toEqual({ username: 'octocat', password: 'ghs_default' });
  });

  it('keeps the default github.token first for ghcr.io, whose token it is', async () => {
    const creds = repositoryCredentials('ghcr.io', 'octocat', 'ghs_default', await config());
    expect(await creds('ghcr.io')).toEqual({ username: 'octocat', password: 'ghs_default' });
    // Other hosts get the Docker config only, never the inputs.
    expect(await creds('registry-1.docker.io')).toEqual({ username: 'hubuser', password: 'dckr_pat' });
  });
});
