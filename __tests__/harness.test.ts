// Proves the test harness itself: real registries with ghcr-like token auth, basic auth and
// none; base images that read back with skopeo; umoci unpacking; stop() freeing everything.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '../src/oci/digest.js';
import { MediaType, manifestAccept, type Index, type Manifest } from '../src/oci/spec.js';
import {
  BASE_ENV,
  BASE_LABELS,
  BASE_USER,
  buildBaseLayout,
  credentialsOf,
  pushBaseImage,
  skopeoInspectRaw,
  umociUnpack,
  type BaseVariant,
} from './support/base-images.js';
import { parseScope, startRegistry, type TestRegistry } from './support/registry.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** Parse `Bearer realm="…",service="…",scope="…"` (quoted values may contain commas). */
function parseChallenge(header: string | null): { scheme: string; params: Record<string, string> } {
  expect(header).toBeTruthy();
  const [scheme] = header!.split(' ', 1);
  const params: Record<string, string> = {};
  for (const m of header!.slice(scheme.length).matchAll(/(\w+)="([^"]*)"/g)) params[m[1]] = m[2];
  return { scheme, params };
}

/** Follow a registry's Bearer challenge the way a client does: one token request, with optional credentials. */
async function tokenFor(challenge: string | null, scope: string, auth?: string): Promise<Response> {
  const { scheme, params } = parseChallenge(challenge);
  expect(scheme).toBe('Bearer');
  const url = new URL(params.realm);
  url.searchParams.set('service', params.service);
  url.searchParams.set('scope', scope);
  return fetch(url, { headers: auth ? { authorization: auth } : {} });
}

async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (ok) await new Promise<void>((resolve) => server.close(() => resolve()));
  return ok;
}

const processAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('token registry (like ghcr.io)', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'token' });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('listens on 127.0.0.1 and challenges with a Bearer realm on loopback', async () => {
    expect(reg.host).toMatch(/^127\.0\.0\.1:\d+$/);
    const res = await fetch(`http://${reg.host}/v2/`);
    expect(res.status).toBe(401);
    const { params } = parseChallenge(res.headers.get('www-authenticate'));
    expect(new URL(params.realm).hostname).toBe('127.0.0.1');
    expect(params.service).toBe(reg.host);
  });

  it('refuses a wrong password with 401 and records the request', async () => {
    const before = reg.tokenRequests.length;
    const ch = (await fetch(`http://${reg.host}/v2/`)).headers.get('www-authenticate');
    const res = await tokenFor(ch, 'repository:owner/app:pull,push', basic(reg.username, 'wrong'));
    expect(res.status).toBe(401);
    expect(reg.tokenRequests.slice(before)).toEqual([
      expect.objectContaining({ method: 'GET', authenticated: false, status: 401, granted: [], scopes: ['repository:owner/app:pull,push'] }),
    ]);
  });

  it('grants a valid user what was asked, and the registry honours it', async () => {
    const ch = (await fetch(`http://${reg.host}/v2/owner/app/blobs/uploads/`, { method: 'POST' })).headers.get('www-authenticate');
    // distribution lists the actions in no fixed order (push,pull or pull,push).
    const [type, name, actions] = parseChallenge(ch).params.scope.split(':');
    expect([type, name, actions.split(',').sort()]).toEqual(['repository', 'owner/app', ['pull', 'push']]);
    const res = await tokenFor(ch, 'repository:owner/app:pull,push', basic(reg.username, reg.password));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { token: string; access_token: string; expires_in: number };
    expect(body.access_token).toBe(body.token);
    const [header, claims] = body.token.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
    expect(header).toMatchObject({ alg: 'RS256', typ: 'JWT' });
    expect(header.x5c).toHaveLength(1);
    expect(claims).toMatchObject({ sub: reg.username, aud: reg.host, access: [{ type: 'repository', name: 'owner/app', actions: ['pull', 'push'] }] });
    expect(claims.exp).toBeGreaterThan(claims.iat);

    const upload = await fetch(`http://${reg.host}/v2/owner/app/blobs/uploads/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${body.token}` },
    });
    await upload.arrayBuffer();
    expect(upload.status).toBe(202);
  });

  it('also serves the OAuth2 POST form (password grant, then refresh token)', async () => {
    const ch = (await fetch(`http://${reg.host}/v2/`)).headers.get('www-authenticate');
    const { realm, service } = parseChallenge(ch).params;
    const form = (f: Record<string, string>) =>
      fetch(realm, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(f) });
    const first = await form({
      grant_type: 'password', username: reg.username, password: reg.password, service,
      scope: 'repository:owner/app:pull repository:owner/other:pull', client_id: 'harness', access_type: 'offline',
    });
    expect(first.status).toBe(200);
    const { refresh_token } = (await first.json()) as { refresh_token: string };
    expect(refresh_token).toBeTruthy();
    const second = await form({ grant_type: 'refresh_token', refresh_token, service, scope: 'repository:owner/app:push', client_id: 'harness' });
    expect(second.status).toBe(200);
    expect((await form({ grant_type: 'password', username: reg.username, password: 'nope', service })).status).toBe(401);
    const posts = reg.tokenRequests.filter((r) => r.method === 'POST');
    expect(posts.map((r) => [r.grantType, r.authenticated, r.scopes.length])).toEqual([
      ['password', true, 2],
      ['refresh_token', true, 1],
      ['password', false, 0],
    ]);
  });

  it('lets anonymous clients pull under public/ only, and never push', async () => {
    const pushed = await pushBaseImage(reg, 'oci-image');
    const priv = await pushBaseImage(reg, 'oci-image', { repository: 'owner/private-base' });
    const before = reg.tokenRequests.length;

    // A plain client: GET, read the challenge, get an anonymous token, GET again.
    const url = `http://${reg.host}/v2/${pushed.repository}/manifests/${pushed.tag}`;
    const first = await fetch(url, { headers: { accept: manifestAccept } });
    expect(first.status).toBe(401);
    const ch = first.headers.get('www-authenticate');
    const scope = parseChallenge(ch).params.scope;
    expect(scope).toBe(`repository:${pushed.repository}:pull`);
    const tok = (await (await tokenFor(ch, scope)).json()) as { token: string };
    const second = await fetch(url, { headers: { accept: manifestAccept, authorization: `Bearer ${tok.token}` } });
    expect(second.status).toBe(200);
    const bytes = Buffer.from(await second.arrayBuffer());
    expect(sha256(bytes)).toBe(pushed.digest);
    expect(second.headers.get('docker-content-digest')).toBe(pushed.digest);
    expect(second.headers.get('content-type')).toBe(MediaType.OciManifest);

    // Anonymous pull outside public/: the token carries no access, the registry says no.
    const privUrl = `http://${reg.host}/v2/${priv.repository}/manifests/${priv.tag}`;
    const privCh = (await fetch(privUrl)).headers.get('www-authenticate');
    const privTok = (await (await tokenFor(privCh, `repository:${priv.repository}:pull`)).json()) as { token: string };
    const denied = await fetch(privUrl, { headers: { authorization: `Bearer ${privTok.token}` } });
    await denied.arrayBuffer();
    expect(denied.status).toBe(401);

    // Anonymous push, even to public/: token without push, upload refused.
    const upCh = (await fetch(`http://${reg.host}/v2/${pushed.repository}/blobs/uploads/`, { method: 'POST' })).headers.get('www-authenticate');
    const upTok = (await (await tokenFor(upCh, `repository:${pushed.repository}:pull,push`)).json()) as { token: string };
    const up = await fetch(`http://${reg.host}/v2/${pushed.repository}/blobs/uploads/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${upTok.token}` },
    });
    await up.arrayBuffer();
    expect(up.status).toBe(401);
    expect(parseChallenge(up.headers.get('www-authenticate')).params.error).toBe('insufficient_scope');

    expect(reg.tokenRequests.slice(before).map((r) => [r.authenticated, r.scopes, r.granted])).toEqual([
      [false, [`repository:${pushed.repository}:pull`], [{ type: 'repository', name: pushed.repository, actions: ['pull'] }]],
      [false, [`repository:${priv.repository}:pull`], []],
      [false, [`repository:${pushed.repository}:pull,push`], [{ type: 'repository', name: pushed.repository, actions: ['pull'] }]],
    ]);

    // The same through skopeo: anonymous read of public/ works, of private does not.
    expect(sha256(await skopeoInspectRaw(pushed.reference))).toBe(pushed.digest);
    await expect(skopeoInspectRaw(priv.reference)).rejects.toThrow(/skopeo inspect/);
    await expect(skopeoInspectRaw(priv.reference, { username: reg.username, password: 'wrong' })).rejects.toThrow(/skopeo inspect/);
  });

  it.each<[BaseVariant, string, string[]]>([
    ['oci-index', MediaType.OciIndex, [MediaType.OciManifest]],
    ['docker-list', MediaType.DockerManifestList, [MediaType.DockerManifest]],
    ['oci-image', MediaType.OciManifest, []],
  ])('base variant %s reads back byte for byte with skopeo inspect --raw', async (variant, topType, childTypes) => {
    const pushed = await pushBaseImage(reg, variant, { repository: `owner/${variant}`, tag: 'v1' });
    const creds = credentialsOf(reg);
    const raw = await skopeoInspectRaw(pushed.reference, creds);
    expect(sha256(raw)).toBe(pushed.digest);
    expect(sha256(await skopeoInspectRaw(`${reg.host}/owner/${variant}@${pushed.digest}`, creds))).toBe(pushed.digest);
    const doc = JSON.parse(raw.toString()) as { mediaType: string };
    expect(doc.mediaType).toBe(topType);
    if (topType === MediaType.OciManifest) {
      const m = doc as Manifest;
      expect(m.config.mediaType).toBe(MediaType.OciConfig);
      expect(m.layers.map((l) => l.mediaType)).toEqual([MediaType.OciLayerGzip]);
      expect(pushed.platforms).toEqual([{ platform: 'linux/amd64', digest: pushed.digest }]);
      return;
    }
    const index = doc as Index;
    const platforms = index.manifests.map((d) => [d.platform?.os, d.platform?.architecture, d.platform?.variant].filter(Boolean).join('/'));
    expect(platforms).toEqual(['linux/amd64', 'linux/arm64', 'linux/arm/v7', 'unknown/unknown']);
    expect(index.manifests.slice(0, 3).map((d) => d.mediaType)).toEqual(childTypes.concat(childTypes, childTypes));
    // The attestation is an OCI manifest in both variants, as BuildKit writes it.
    expect(index.manifests[3]).toMatchObject({ mediaType: MediaType.OciManifest, annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } });
    expect(pushed.platforms.map((p) => p.digest)).toEqual(index.manifests.slice(0, 3).map((d) => d.digest));
    const family = variant === 'docker-list' ? { config: MediaType.DockerConfig, layer: MediaType.DockerLayerGzip } : { config: MediaType.OciConfig, layer: MediaType.OciLayerGzip };
    for (const d of index.manifests.slice(0, 3)) {
      const child = await skopeoInspectRaw(`${reg.host}/owner/${variant}@${d.digest}`, creds);
      expect(sha256(child)).toBe(d.digest);
      const m = JSON.parse(child.toString()) as Manifest;
      expect(m.mediaType).toBe(d.mediaType);
      expect(m.config.mediaType).toBe(family.config);
      expect(m.layers.map((l) => l.mediaType)).toEqual([family.layer]);
    }
  });
});

describe('basic-auth registry', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'basic' });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('asks for Basic credentials and accepts only the right ones', async () => {
    const anon = await fetch(`http://${reg.host}/v2/`);
    expect(anon.status).toBe(401);
    expect(parseChallenge(anon.headers.get('www-authenticate')).scheme).toBe('Basic');
    const wrong = await fetch(`http://${reg.host}/v2/`, { headers: { authorization: basic(reg.username, 'wrong') } });
    expect(wrong.status).toBe(401);
    const right = await fetch(`http://${reg.host}/v2/`, { headers: { authorization: basic(reg.username, reg.password) } });
    expect(right.status).toBe(200);
    expect(reg.tokenRequests).toEqual([]);
  });

  it('takes a push with credentials and refuses a read without', async () => {
    const pushed = await pushBaseImage(reg, 'oci-index');
    expect(sha256(await skopeoInspectRaw(pushed.reference, credentialsOf(reg)))).toBe(pushed.digest);
    await expect(skopeoInspectRaw(pushed.reference)).rejects.toThrow(/skopeo inspect/);
  });
});

describe('open registry', () => {
  it('needs no credentials', async () => {
    const reg = await startRegistry({ auth: 'none' });
    try {
      expect(reg.username).toBe('');
      expect((await fetch(`http://${reg.host}/v2/`)).status).toBe(200);
      const pushed = await pushBaseImage(reg, 'docker-list');
      expect(sha256(await skopeoInspectRaw(pushed.reference))).toBe(pushed.digest);
      // Deletion is enabled, as tests of cleanup paths need it.
      const del = await fetch(`http://${reg.host}/v2/${pushed.repository}/manifests/${pushed.digest}`, { method: 'DELETE' });
      expect(del.status).toBe(202);
    } finally {
      await reg.stop();
    }
  });
});

describe('stop()', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ko-annotate-harness-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each(['token', 'none'] as const)('frees the port and ends the process (%s)', async (auth) => {
    const reg = await startRegistry({ auth });
    const port = Number(reg.host.split(':')[1]);
    let realmPort: number | undefined;
    if (auth === 'token') {
      realmPort = Number(new URL(parseChallenge((await fetch(`http://${reg.host}/v2/`)).headers.get('www-authenticate')).params.realm).port);
      expect(realmPort).toBeGreaterThan(0);
      expect(await portIsFree(realmPort)).toBe(false);
    }
    expect(await portIsFree(port)).toBe(false);
    expect(processAlive(reg.pid)).toBe(true);
    await reg.stop();
    expect(processAlive(reg.pid)).toBe(false);
    expect(await portIsFree(port)).toBe(true);
    if (auth === 'token') expect(await portIsFree(realmPort!)).toBe(true);
    await reg.stop(); // idempotent
  });

  it('kills the registry when the process that started it dies without stop()', async () => {
    // A child node process starts a registry, prints its pid, and is SIGKILLed. registry.ts
    // imports only node: modules, so a plain transpile makes it runnable there.
    const { spawn } = await import('node:child_process');
    const ts = (await import('typescript')).default;
    const source = await readFile(new URL('./support/registry.ts', import.meta.url), 'utf8');
    const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } }).outputText;
    const moduleFile = join(dir, 'registry.mjs');
    await writeFile(moduleFile, js);
    const code = `
      const { startRegistry } = await import(${JSON.stringify(moduleFile)});
      const r = await startRegistry({ auth: 'none' });
      console.log(JSON.stringify({ pid: r.pid, host: r.host }));
      setInterval(() => {}, 1000);
    `;
    // Its temp dir cannot be removed by a killed process; keep it under ours.
    const env = { ...process.env, TMPDIR: dir };
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'], env });
    const info = await new Promise<{ pid: number; host: string }>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line) resolve(JSON.parse(line));
      });
      child.once('exit', (c) => reject(new Error(`child exited ${c}: ${out}`)));
    });
    expect(processAlive(info.pid)).toBe(true);
    child.kill('SIGKILL');
    const deadline = Date.now() + 5_000;
    while (processAlive(info.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(processAlive(info.pid)).toBe(false);
  });
});

describe('base layouts and umoci', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ko-annotate-harness-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('builds deterministically and unpacks with umoci to the expected file system and config', async () => {
    const a = await buildBaseLayout('oci-image', join(dir, 'a'), 'base');
    const b = await buildBaseLayout('oci-image', join(dir, 'b'), 'base');
    expect(a.digest).toBe(b.digest);
    const rootfs = join(dir, 'rootfs');
    const runtime = (await umociUnpack(a.dir, 'base', rootfs)) as { process: { env: string[]; user: { uid: number } } };
    expect(await readFile(join(rootfs, 'etc/passwd'), 'utf8')).toContain('nonroot:x:65532:');
    await access(join(rootfs, 'etc/ssl/certs/ca.txt'));
    expect(runtime.process.user.uid).toBe(Number(BASE_USER));
    expect(runtime.process.env).toEqual(expect.arrayContaining([...BASE_ENV]));
    expect(a.artifact.kind === 'image' && a.artifact.config.config?.Labels).toEqual(BASE_LABELS);
  });

  it('parses scopes as the token spec writes them', () => {
    expect(parseScope('repository:owner/app:pull,push')).toEqual({ type: 'repository', name: 'owner/app', actions: ['pull', 'push'] });
    expect(parseScope('repository(plugin):owner/app:pull')).toEqual({ type: 'repository', name: 'owner/app', actions: ['pull'] });
    expect(parseScope('registry:catalog:*')).toEqual({ type: 'registry', name: 'catalog', actions: ['*'] });
    expect(parseScope('nonsense')).toBeUndefined();
  });
});
