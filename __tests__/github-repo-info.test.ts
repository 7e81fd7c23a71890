import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readContext } from '../src/github/context.js';
import { repoInfo } from '../src/github/repo-info.js';
import { MemoryLogger } from '../src/log.js';
import { Key } from '../src/oci/spec.js';
import { loadEvent } from './support/events.js';

const TOKEN = 'ghs_test0123456789';

/** A stand-in for GITHUB_API_URL on loopback: each test sets how it answers. */
interface Reply {
  status: number;
  body?: unknown;
  delayMs?: number;
}
let server: Server;
let apiUrl: string;
let reply: Reply;
let requests: { method: string; url: string; headers: IncomingHttpHeaders }[];

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const send = () => {
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body ?? {}));
    };
    if (reply.delayMs) setTimeout(send, reply.delayMs).unref();
    else send();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // A GHES-style API root with a path, to check the URL is joined and not replaced.
  apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v3/`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  requests = [];
  reply = { status: 200, body: {} };
});

/** The schedule run has no repository in its payload, so it needs the API. */
const scheduleCtx = () => {
  const { env, payload } = loadEvent('schedule-main');
  return readContext({ ...env, GITHUB_API_URL: apiUrl }, payload);
};
const pushCtx = (edit?: (repo: Record<string, unknown>) => void) => {
  const { env, payload } = loadEvent('push-branch-main');
  const p = structuredClone(payload) as { repository: Record<string, unknown> };
  edit?.(p.repository);
  return readContext({ ...env, GITHUB_API_URL: apiUrl }, p);
};
const deps = (logger = new MemoryLogger()) => ({ token: TOKEN, logger, timeoutMs: 500 });

describe('repoInfo from the payload', () => {
  it('takes description and license from the payload without calling the API', async () => {
    const logger = new MemoryLogger();
    expect(await repoInfo(pushCtx(), deps(logger))).toEqual({
      description: 'A tiny Go service that says hello, shipped as an OCI image',
      license: 'Apache-2.0',
    });
    expect(requests).toHaveLength(0);
    expect(logger.lines).toEqual([]);
  });

  it('trusts a payload that says there is none', async () => {
    const ctx = pushCtx((r) => {
      r.description = null;
      r.license = null;
    });
    expect(await repoInfo(ctx, deps())).toEqual({});
    expect(requests).toHaveLength(0);
  });

  it('drops NOASSERTION', async () => {
    const ctx = pushCtx((r) => {
      r.license = { key: 'other', name: 'Other', spdx_id: 'NOASSERTION', url: null, node_id: 'MDc6TGljZW5zZTA=' };
    });
    expect(await repoInfo(ctx, deps())).toEqual({ description: 'A tiny Go service that says hello, shipped as an OCI image' });
  });

  it('cuts a 600-character description to 512 with a warning', async () => {
    const ctx = pushCtx((r) => {
      r.description = 'd'.repeat(600);
    });
    const logger = new MemoryLogger();
    const info = await repoInfo(ctx, deps(logger));
    expect(info.description).toBe('d'.repeat(512));
    expect(logger.lines).toEqual([
      `warning: the repository description has 600 characters; ${Key.Description} keeps the first 512`,
    ]);
  });

  it('counts characters, not UTF-16 units, and keeps a 512-character description whole', async () => {
    const emoji = '🐹'.repeat(600);
    const logger = new MemoryLogger();
    const cut = await repoInfo(pushCtx((r) => (r.description = emoji)), deps(logger));
    expect(Array.from(cut.description!)).toHaveLength(512);
    expect(cut.description).toBe('🐹'.repeat(512));

    const exact = new MemoryLogger();
    expect((await repoInfo(pushCtx((r) => (r.description = 'e'.repeat(512))), deps(exact))).description).toHaveLength(512);
    expect(exact.lines).toEqual([]);
  });
});

describe('repoInfo from the API', () => {
  it('asks GET /repos/{owner}/{repo} once with the token, through Octokit', async () => {
    reply = { status: 200, body: { full_name: 'Octo-Org/Hello-World', description: 'From the API', license: { spdx_id: 'MIT' } } };
    expect(await repoInfo(scheduleCtx(), deps())).toEqual({ description: 'From the API', license: 'MIT' });
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({
      method: 'GET',
      url: '/api/v3/repos/Octo-Org/Hello-World',
      headers: { authorization: `token ${TOKEN}`, accept: 'application/vnd.github+json' },
    });
  });

  it('sends no Authorization header without a token', async () => {
    reply = { status: 200, body: { description: 'public', license: null } };
    expect(await repoInfo(scheduleCtx(), { ...deps(), token: '' })).toEqual({ description: 'public' });
    expect(requests[0]!.headers.authorization).toBeUndefined();
  });

  it('applies the same rules to API answers: cut to 512, NOASSERTION dropped', async () => {
    reply = { status: 200, body: { description: 'x'.repeat(600), license: { spdx_id: 'NOASSERTION' } } };
    const logger = new MemoryLogger();
    expect(await repoInfo(scheduleCtx(), deps(logger))).toEqual({ description: 'x'.repeat(512) });
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatch(/^warning: the repository description has 600 characters/);
  });

  it.each([
    ['404', { status: 404, body: { message: 'Not Found' } }, /HTTP 404/],
    ['500', { status: 500, body: 'oops' }, /HTTP 500/],
    ['not JSON', { status: 200, body: '<html>' }, /could not read repository details/],
    ['a timeout', { status: 200, body: {}, delayMs: 2000 }, /no answer within 0.5 s/],
  ])('a failed call (%s) is a warning and returns nothing', async (_what, r, message) => {
    reply = r;
    const logger = new MemoryLogger();
    await expect(repoInfo(scheduleCtx(), deps(logger))).resolves.toEqual({});
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatch(/^warning: could not read repository details from http:\/\/127\.0\.0\.1:\d+\/api\/v3\/repos\/Octo-Org\/Hello-World/);
    expect(logger.lines[0]).toMatch(message);
    expect(logger.lines[0]).toContain(`the image gets no ${Key.Description} or ${Key.Licenses}`);
    expect(logger.lines[0]).not.toContain(TOKEN);
  });

  it('a refused connection is a warning too', async () => {
    // A port that was just free: listen, note it, close.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const { env, payload } = loadEvent('schedule-main');
    const ctx = readContext({ ...env, GITHUB_API_URL: `http://127.0.0.1:${port}` }, payload);
    const logger = new MemoryLogger();
    await expect(repoInfo(ctx, deps(logger))).resolves.toEqual({});
    expect(logger.lines[0]).toBe(
      `warning: could not read repository details from http://127.0.0.1:${port}/repos/Octo-Org/Hello-World: fetch failed (ECONNREFUSED); ` +
        `the image gets no ${Key.Description} or ${Key.Licenses}`,
    );
  });
});
