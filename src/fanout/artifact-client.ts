// The entry of dist/artifact/index.js, the toolkit's artifact client bundled on its own (see
// scripts/build.sh): it brings the Azure blob client, which would triple the action's bundle and
// its start-up for every run, though only fan-out jobs load it (fanout/handoff.ts).
export { DefaultArtifactClient } from '@actions/artifact';
