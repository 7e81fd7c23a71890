// in-toto statements for docs/provenance.md: SLSA v1 build provenance as GitHub's own
// attestations build it (the GitHub Actions workflow build type), and SPDX documents.
// Pure: every value comes from the OIDC token's claims and the runner's server URL.

/** in-toto Statement v1 (github.com/in-toto/attestation spec/v1/statement.md). */
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
/** The DSSE payload type of an in-toto statement. */
export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
export const SPDX_DOCUMENT_V23 = 'https://spdx.dev/Document/v2.3';
/** slsa-framework/github-actions-buildtypes workflow/v1. */
export const GITHUB_WORKFLOW_BUILD_TYPE = 'https://actions.github.io/buildtypes/workflow/v1';

export interface Subject {
  /** `<registry>/<repository>`, lower case, no tag. */
  name: string;
  digest: { sha256: string };
}

export interface Statement {
  _type: typeof STATEMENT_TYPE;
  subject: Subject[];
  predicateType: string;
  predicate: unknown;
}

/** The claims of the runner's OIDC token that the predicate reads. */
export interface WorkflowClaims {
  repository: string;
  repository_id: string;
  repository_owner_id: string;
  job_workflow_ref: string;
  workflow_ref: string;
  ref: string;
  sha: string;
  run_id: string;
  run_attempt: string;
  runner_environment: string;
  event_name: string;
}

const REQUIRED: readonly (keyof WorkflowClaims)[] = [
  'repository',
  'repository_id',
  'repository_owner_id',
  'job_workflow_ref',
  'workflow_ref',
  'ref',
  'sha',
  'run_id',
  'run_attempt',
  'runner_environment',
  'event_name',
];

/**
 * The claims of a JWT (its payload, not verified: Fulcio verifies the token, and the predicate
 * must say what the token that signs it says). Throws naming the claims a workflow token lacks.
 */
export function workflowClaims(jwt: string): WorkflowClaims {
  const parts = jwt.split('.');
  let claims: Record<string, unknown>;
  try {
    if (parts.length !== 3) throw new Error('not three parts');
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new Error('the OIDC token from the runner is not a JWT', { cause: err });
  }
  const missing = REQUIRED.filter((k) => typeof claims[k] !== 'string' || claims[k] === '');
  if (missing.length) throw new Error(`the OIDC token from the runner lacks the claims ${missing.join(', ')} of a GitHub Actions workflow token`);
  return Object.fromEntries(REQUIRED.map((k) => [k, claims[k]])) as unknown as WorkflowClaims;
}

/** `sha256:<hex>` as an in-toto digest set. */
export const subject = (name: string, digest: string): Subject => ({ name: name.toLowerCase(), digest: { sha256: digest.replace(/^sha256:/, '') } });

/**
 * The SLSA v1 predicate as GitHub's attestations build it (actions/attest-build-provenance):
 * the workflow as external parameters, the run's GitHub facts as internal ones, the commit as
 * the one resolved dependency, the job's workflow as the builder, the run attempt as invocation.
 */
export function slsaPredicate(claims: WorkflowClaims, serverUrl: string) {
  // `owner/repo/.github/workflows/x.yml@refs/heads/main` → `.github/workflows/x.yml`
  const [path] = claims.workflow_ref.replace(`${claims.repository}/`, '').split('@');
  return {
    buildDefinition: {
      buildType: GITHUB_WORKFLOW_BUILD_TYPE,
      externalParameters: { workflow: { ref: claims.ref, repository: `${serverUrl}/${claims.repository}`, path } },
      internalParameters: {
        github: {
          event_name: claims.event_name,
          repository_id: claims.repository_id,
          repository_owner_id: claims.repository_owner_id,
          runner_environment: claims.runner_environment,
        },
      },
      resolvedDependencies: [{ uri: `git+${serverUrl}/${claims.repository}@${claims.ref}`, digest: { gitCommit: claims.sha } }],
    },
    runDetails: {
      builder: { id: `${serverUrl}/${claims.job_workflow_ref}` },
      metadata: { invocationId: `${serverUrl}/${claims.repository}/actions/runs/${claims.run_id}/attempts/${claims.run_attempt}` },
    },
  };
}

export const statement = (subjects: Subject[], predicateType: string, predicate: unknown): Statement => ({
  _type: STATEMENT_TYPE,
  subject: subjects,
  predicateType,
  predicate,
});
