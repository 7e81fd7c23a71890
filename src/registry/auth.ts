import { once } from '../oci/digest.js';
import type { RegistryRequest, RequestBody } from './client.js';
import type { CredentialProvider, Credentials } from './credentials.js';
import { RegistryError, type Operation } from './errors.js';
import { discard, readText, type HttpResponse } from './http.js';
import { isLoopbackHost } from './reference.js';

/**
 * Authentication to one registry: the challenge of its 401 (RFC 9110 §11.6.1), basic
 * credentials, or bearer tokens from the token realm (distribution's token authentication spec),
 * cached per scope set. As go-containerregistry's `transport` does for `remote`, it sits under the
 * registry's requests; the Repository operations never see it.
 */

/** See RegistryOptions.refusals: by host and scope set, what the realm answered. */
export type TokenRefusals = Map<string, RegistryError['init']>;

/** What authentication needs of the registry it signs requests for. */
export interface AuthTransport {
  /** The name credentials are looked up by. */
  readonly host: string;
  /** The registry's own origin: the only one Authorization is sent to, but the token realm. */
  readonly baseUrl: string;
  /** One request as it is, with `auth` as its Authorization: no retry, redirect nor challenge. */
  rawSend(method: string, url: URL, headers: Record<string, string> | undefined, body: RequestBody | undefined, auth: string | undefined): Promise<HttpResponse>;
  errorFrom(op: Operation, repository: string | undefined, res: HttpResponse, stage?: string): Promise<RegistryError>;
}

export interface AuthOptions {
  credentials: CredentialProvider;
  /** For token lifetimes. */
  now: () => number;
  /** The OAuth2 `client_id` of a refresh-token exchange. */
  userAgent: string;
  refusals: TokenRefusals;
}

interface Challenge {
  scheme: 'bearer' | 'basic';
  realm?: string;
  service?: string;
  scope?: string;
}

interface CachedToken {
  scopes: ScopeSet;
  token: string;
  expiresAt: number;
}

/**
 * One challenge per registry, learned from its first 401; bearer tokens cached per scope set, one
 * request per scope set at a time, and refusals shared by the clients of a run (TokenRefusals).
 * Credentials are only ever sent to the registry's own origin, and to its token realm, which
 * receives the basic credentials because that is what the token protocol asks of it; it must be
 * HTTPS unless it is on loopback.
 */
export class Authenticator {
  private challenge?: Challenge;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pendingTokens = new Map<string, Promise<CachedToken>>();
  private readonly credentials: () => Promise<Credentials | undefined>;

  constructor(
    private readonly transport: AuthTransport,
    private readonly opts: AuthOptions,
  ) {
    this.credentials = once(() => opts.credentials(transport.host));
  }

  /**
   * Send with whatever authorization we already know the registry wants; on a 401, learn its
   * challenge, get credentials or a token for it, and send once more. A second 401 is final:
   * the same credentials would be refused again, so it is never retried.
   */
  async send(op: Operation, req: RegistryRequest, method: string, url: URL, body: RequestBody | undefined): Promise<HttpResponse> {
    const { transport } = this;
    const toRegistry = url.origin === transport.baseUrl;
    const auth = toRegistry ? await this.authorization(op, req, req.scopes, false) : undefined;
    const res = await transport.rawSend(method, url, req.headers, body, auth);
    if (res.status !== 401 || !toRegistry) return res;

    const challenge = pickChallenge(res.headers.get('www-authenticate'));
    if (!challenge) throw await transport.errorFrom(op, req.repository, res);
    const { scope, ...learned } = challenge;
    const changed = !this.challenge || this.challenge.scheme !== learned.scheme || this.challenge.realm !== learned.realm;
    this.challenge = learned;
    if (auth && learned.scheme === 'basic' && !changed) throw await transport.errorFrom(op, req.repository, res);
    // The registry may name a scope we did not think of (an extra action); ask for both.
    const scopes = scope ? [...req.scopes, ...scope.split(' ').filter((s) => s !== '')] : req.scopes;
    let retryAuth: string | undefined;
    try {
      retryAuth = await this.authorization(op, req, scopes, auth !== undefined);
    } catch (err) {
      await discard(res);
      throw err;
    }
    if (!retryAuth) throw await transport.errorFrom(op, req.repository, res);
    await discard(res);
    const again = await transport.rawSend(method, url, req.headers, body, retryAuth);
    if (again.status === 401) throw await transport.errorFrom(op, req.repository, again);
    return again;
  }

  private async authorization(op: Operation, req: RegistryRequest, scopes: readonly string[], fresh: boolean): Promise<string | undefined> {
    const challenge = this.challenge;
    if (!challenge) return undefined;
    const creds = await this.credentials();
    if (creds?.registryToken) return `Bearer ${creds.registryToken}`;
    if (challenge.scheme === 'basic') return creds?.password !== undefined ? basicAuth(creds) : undefined;
    const token = await this.token(op, req, challenge, scopes, creds, fresh);
    return `Bearer ${token}`;
  }

  private async token(op: Operation, req: RegistryRequest, challenge: Challenge, scopes: readonly string[], creds: Credentials | undefined, fresh: boolean): Promise<string> {
    const wanted = parseScopes(scopes);
    const key = scopeKey(wanted);
    if (!fresh) {
      const now = this.opts.now();
      for (const t of this.tokens.values()) if (t.expiresAt > now && covers(t.scopes, wanted)) return t.token;
    } else {
      this.tokens.delete(key);
    }
    const refused = this.opts.refusals.get(`${this.transport.host} ${key}`);
    if (refused) throw new RegistryError({ ...refused, operation: op, repository: req.repository, text: `${refused.text ?? ''} (refused earlier in this run; not asked again)`.trim() });
    let pending = this.pendingTokens.get(key);
    if (!pending) {
      pending = this.fetchToken(op, req, challenge, wanted, creds).finally(() => this.pendingTokens.delete(key));
      this.pendingTokens.set(key, pending);
    }
    const t = await pending;
    this.tokens.set(key, t);
    return t.token;
  }

  /**
   * The token endpoint of the distribution token spec: GET realm?service&scope with basic
   * credentials (or none, for anonymous pulls), or the OAuth2 POST with a refresh token when
   * the login left an identity token.
   */
  private async fetchToken(op: Operation, req: RegistryRequest, challenge: Challenge, scopes: ScopeSet, creds: Credentials | undefined): Promise<CachedToken> {
    const { transport } = this;
    const fail = (init: { stage?: string; status?: number; text: string; cause?: unknown }) =>
      new RegistryError({ operation: op, host: transport.host, repository: req.repository, ...init });
    if (!challenge.realm) throw fail({ status: 401, text: 'bearer challenge without a realm' });
    let realm: URL;
    try {
      realm = new URL(challenge.realm);
    } catch (err) {
      throw fail({ status: 401, text: `bearer realm ${JSON.stringify(challenge.realm)} is not a URL`, cause: err });
    }
    const stage = `token request to ${realm.host}`;
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && isLoopbackHost(realm.host))) {
      throw fail({ stage, text: `refusing to send credentials to a non-HTTPS token realm ${realm.origin}` });
    }
    const scopeList = scopeStrings(scopes);
    const headers: Record<string, string> = {};
    let method: 'GET' | 'POST' = 'GET';
    let body: Buffer | undefined;
    if (creds?.identityToken) {
      method = 'POST';
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: this.opts.userAgent });
      if (challenge.service) form.set('service', challenge.service);
      if (scopeList.length) form.set('scope', scopeList.join(' '));
      body = Buffer.from(form.toString());
    } else {
      if (challenge.service) realm.searchParams.set('service', challenge.service);
      for (const s of scopeList) realm.searchParams.append('scope', s);
    }
    const auth = !creds?.identityToken && creds?.password !== undefined ? basicAuth(creds) : undefined;
    const requested = this.opts.now();
    const res = await transport.rawSend(method, realm, headers, body, auth);
    if (res.status !== 200) {
      const err = await transport.errorFrom(op, req.repository, res, stage);
      if (res.status === 401 || (res.status === 403 && !err.retryable)) this.opts.refusals.set(`${transport.host} ${scopeKey(scopes)}`, err.init);
      throw err;
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(await readText(res, 1024 * 1024)) as typeof doc;
    } catch (err) {
      throw fail({ stage, text: 'the token response is not JSON', cause: err });
    }
    const token = typeof doc.token === 'string' && doc.token ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : '';
    if (!token) throw fail({ stage, text: 'the token response has no token' });
    // The token spec: a missing or shorter lifetime than 60 seconds means 60 seconds.
    const lifetime = Math.max(60, typeof doc.expires_in === 'number' ? doc.expires_in : 60) * 1000;
    // Renew a little early so that a token does not expire between sending and arriving.
    return { scopes, token, expiresAt: requested + lifetime - Math.min(30_000, lifetime / 10) };
  }
}

// --- WWW-Authenticate (RFC 9110 §11.6.1) ---

/** Parse the challenges of a WWW-Authenticate header: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`. */
export function parseWwwAuthenticate(header: string): { scheme: string; params: Record<string, string> }[] {
  const out: { scheme: string; params: Record<string, string> }[] = [];
  const token = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;
  const token68 = /[A-Za-z0-9._~+/-]+=*/y;
  let i = 0;
  const skip = () => {
    while (i < header.length && /[\s,]/.test(header[i])) i++;
  };
  while (i < header.length) {
    skip();
    token.lastIndex = i;
    const m = token.exec(header);
    if (!m) break;
    i = token.lastIndex;
    let j = i;
    while (j < header.length && header[j] === ' ') j++;
    if (header[j] === '=' && out.length > 0) {
      i = j + 1;
      while (header[i] === ' ') i++;
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < header.length && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < header.length) i++;
          value += header[i++];
        }
        i++;
      } else {
        token.lastIndex = i;
        const v = token.exec(header);
        value = v ? v[0] : '';
        i = v ? token.lastIndex : i;
      }
      out[out.length - 1].params[m[0].toLowerCase()] = value;
    } else {
      out.push({ scheme: m[0].toLowerCase(), params: {} });
      // `Negotiate YII…==`: a challenge's token68 (RFC 9110 §11.3) is not a parameter, and its
      // `=` padding must not swallow the challenges after it.
      token68.lastIndex = j;
      if (token68.exec(header) && /^\s*(,|$)/.test(header.slice(token68.lastIndex))) i = token68.lastIndex;
    }
  }
  return out;
}

function pickChallenge(header: string | null): Challenge | undefined {
  const all = parseWwwAuthenticate(header ?? '');
  const bearer = all.find((c) => c.scheme === 'bearer');
  if (bearer) return { scheme: 'bearer', realm: bearer.params.realm, service: bearer.params.service, scope: bearer.params.scope };
  return all.some((c) => c.scheme === 'basic') ? { scheme: 'basic' } : undefined;
}

// --- scopes: `repository:<name>:pull,push` ---

type ScopeSet = Map<string, Set<string>>;

function parseScopes(scopes: readonly string[]): ScopeSet {
  const set: ScopeSet = new Map();
  for (const s of scopes) {
    const colon = s.lastIndexOf(':');
    const resource = colon > 0 ? s.slice(0, colon) : s;
    const actions = colon > 0 ? s.slice(colon + 1).split(',') : [];
    const have = set.get(resource) ?? new Set<string>();
    for (const a of actions) if (a) have.add(a);
    set.set(resource, have);
  }
  return set;
}

const scopeStrings = (set: ScopeSet): string[] =>
  [...set.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([r, a]) => `${r}:${[...a].sort().join(',')}`);

const scopeKey = (set: ScopeSet): string => scopeStrings(set).join(' ');

function covers(have: ScopeSet, want: ScopeSet): boolean {
  for (const [resource, actions] of want) {
    const got = have.get(resource);
    if (!got) return false;
    for (const a of actions) if (!got.has(a)) return false;
  }
  return true;
}

function basicAuth(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`).toString('base64')}`;
}
