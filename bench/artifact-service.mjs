// For `npm run bench`'s fan-out case: the test suite's loopback stand-in of the artifact service
// (__tests__/support/artifact-service.ts, loaded with Node 24's type stripping), run as a child
// process. argv: `<run>:<job>` pairs; prints one JSON line `{ url, tokens: { "<run>:<job>": token } }`
// and serves until its stdin closes.
const { startArtifactService } = await import(new URL('../__tests__/support/artifact-service.ts', import.meta.url).href);
const service = await startArtifactService();
const tokens = Object.fromEntries(process.argv.slice(2).map((pair) => [pair, service.tokenFor(...pair.split(':'))]));
process.stdout.write(`${JSON.stringify({ url: service.url, tokens })}\n`);
process.stdin.resume();
process.stdin.on('end', () => service.stop().then(() => process.exit(0)));
