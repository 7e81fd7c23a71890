// The entry of dist/sigstore/index.js, sigstore-js bundled on its own (see scripts/build.sh): with
// its HTTP client it is most of what the action would otherwise parse at every start, though only
// runs that sign load it (provenance/sigstore.ts).
export { DSSEBundleBuilder, FulcioSigner, RekorWitness, TSAWitness } from '@sigstore/sign';
export { bundleToJSON } from '@sigstore/bundle';
