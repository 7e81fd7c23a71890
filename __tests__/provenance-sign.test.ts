// Signing against a Sigstore instance on loopback (support/sigstore.ts): both shapes, Rekor
// (public-good's) and a timestamp authority only (GitHub's), each bundle verified with
// @sigstore/verify against the instance's trusted root, its identity and issuer.
import { afterEach, describe, expect, test } from '@jest/globals';
import { requestIdToken } from '../src/provenance/oidc.js';
import { signStatement } from '../src/provenance/sigstore.js';
import { slsaPredicate, SLSA_PROVENANCE_V1, statement, subject, workflowClaims } from '../src/provenance/statement.js';
import { RetryPolicy } from '../src/registry/retry.js';
import { SERVER_URL, startSigstore, type TestSigstore } from './support/sigstore.js';

let sigstore: TestSigstore | undefined;
afterEach(async () => {
  await sigstore?.stop();
  sigstore = undefined;
});

const DIGEST = `sha256:${'ab'.repeat(32)}`;

async function signWith(s: TestSigstore, retry = new RetryPolicy({ baseDelayMs: 10 })) {
  const masked: string[] = [];
  const token = () => requestIdToken('sigstore', { env: s.env, mask: (m) => masked.push(m) });
  const jwt = await token();
  const claims = workflowClaims(jwt);
  const st = statement([subject('127.0.0.1:5000/Octo-Org/hello', DIGEST)], SLSA_PROVENANCE_V1, slsaPredicate(claims, SERVER_URL));
  const endpoints = { fulcio: s.fulcioUrl, rekor: s.rekorUrl, tsa: s.tsaUrl };
  const bundle = await signStatement(Buffer.from(JSON.stringify(st)), 'provenance', { endpoints, token, retry });
  return { bundle, masked, st };
}

describe.each([
  ['Rekor (public-good)', { rekor: true, tsa: false }],
  ['timestamp authority only (GitHub)', { rekor: false, tsa: true }],
  ['Rekor and a timestamp authority', { rekor: true, tsa: true }],
])('signing with %s', (_, shape) => {
  test('the bundle verifies against the trusted root, with the workflow identity and GitHub issuer', async () => {
    sigstore = await startSigstore(shape);
    const { bundle, masked, st } = await signWith(sigstore);
    const payload = JSON.parse(sigstore.verify(bundle).toString('utf8'));
    expect(payload).toEqual(st);
    expect(payload.subject).toEqual([{ name: '127.0.0.1:5000/octo-org/hello', digest: { sha256: 'ab'.repeat(32) } }]);
    const b = bundle as { mediaType: string; verificationMaterial: { tlogEntries: unknown[]; timestampVerificationData?: { rfc3161Timestamps: unknown[] } } };
    expect(b.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(b.verificationMaterial.tlogEntries ?? []).toHaveLength(shape.rekor ? 1 : 0);
    expect(b.verificationMaterial.timestampVerificationData?.rfc3161Timestamps ?? []).toHaveLength(shape.tsa ? 1 : 0);
    // A different identity or issuer does not verify.
    expect(() => sigstore!.verify(bundle, { identity: `${SERVER_URL}/someone/else/.github/workflows/x.yml@refs/heads/main` })).toThrow();
    expect(() => sigstore!.verify(bundle, { issuer: 'https://accounts.example.com' })).toThrow();
    // The OIDC token went to Fulcio alone, and was masked first.
    expect(masked).toEqual(sigstore.issued);
    expect(sigstore.issued.length).toBeGreaterThan(0);
    for (const jwt of sigstore.issued) {
      const carriers = sigstore.requests.filter((r) => r.body.includes(jwt.split('.')[1]) || JSON.stringify(r.headers).includes(jwt));
      expect(carriers.map((r) => r.service)).toEqual(carriers.length ? ['fulcio'] : []);
    }
  });
});

test('the predicate is GitHub\'s: workflow, run, commit and builder from the token', async () => {
  sigstore = await startSigstore();
  const { st } = await signWith(sigstore);
  const c = sigstore.claims;
  expect(st.predicate).toEqual({
    buildDefinition: {
      buildType: 'https://actions.github.io/buildtypes/workflow/v1',
      externalParameters: { workflow: { ref: c.ref, repository: `${SERVER_URL}/${c.repository}`, path: '.github/workflows/release.yml' } },
      internalParameters: { github: { event_name: 'push', repository_id: c.repository_id, repository_owner_id: c.repository_owner_id, runner_environment: 'github-hosted' } },
      resolvedDependencies: [{ uri: `git+${SERVER_URL}/${c.repository}@${c.ref}`, digest: { gitCommit: c.sha } }],
    },
    runDetails: {
      builder: { id: `${SERVER_URL}/${c.job_workflow_ref}` },
      metadata: { invocationId: `${SERVER_URL}/${c.repository}/actions/runs/4242/attempts/2` },
    },
  });
});

test('Rekor answering 502 is retried: the bundle of the attempt that got through verifies', async () => {
  sigstore = await startSigstore({ rekorFailures: 1 });
  const { bundle } = await signWith(sigstore);
  expect(() => sigstore!.verify(bundle)).not.toThrow();
  expect(sigstore.requests.filter((r) => r.service === 'rekor').map((r) => r.status)).toEqual([502, 201]);
});

test('Fulcio answering 503 is retried; down for good, signing gives up at the deadline', async () => {
  sigstore = await startSigstore({ fulcioFailures: 2 });
  const { bundle } = await signWith(sigstore);
  expect(() => sigstore!.verify(bundle)).not.toThrow();
  expect(sigstore.requests.filter((r) => r.service === 'fulcio').map((r) => r.status)).toEqual([503, 503, 201]);
  await sigstore.stop();

  sigstore = await startSigstore({ fulcioStatus: 503 });
  const started = Date.now();
  await expect(signWith(sigstore, new RetryPolicy({ baseDelayMs: 50, maxAttempts: 100, deadline: Date.now() + 1500 }))).rejects.toThrow(
    /^sign provenance with Sigstore \(http:\/\/127\.0\.0\.1:\d+\/fulcio\): error creating signing certificate - \(503\) .*time budget ran out/,
  );
  expect(Date.now() - started).toBeLessThan(5000);
});
