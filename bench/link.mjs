// A TCP forwarder that makes a registry on 127.0.0.1 look like one across a network link: every
// byte in either direction waits for its share of `mbit` megabits per second (one shared budget
// per direction, as one uplink is shared by concurrent uploads) and each connection's first
// byte waits `rttMs` (the round trip a new connection costs). Used by bench/run.mjs when
// BENCH_LINK_MBIT is set, to compare tools when the upload, not the CPU, is the slow part.
import { connect, createServer } from 'node:net';

/** Start the link in front of `target` (`host:port`); resolves { host, close }. */
export async function startLink(target, { mbit, rttMs = 0 }) {
  const [targetHost, targetPort] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const bytesPerMs = (mbit * 1e6) / 8 / 1000;
  const budget = () => ({ freeAt: 0 });
  const up = budget();
  const down = budget();
  const sockets = new Set();

  /** Forward `from` → `to`, each chunk released when the direction's link has carried the ones before it. */
  const pace = (from, to, dir) => {
    let queue = Promise.resolve();
    from.on('data', (chunk) => {
      from.pause();
      const now = performance.now();
      const start = Math.max(now, dir.freeAt);
      dir.freeAt = start + chunk.length / bytesPerMs;
      const wait = dir.freeAt - now;
      queue = queue.then(
        () =>
          new Promise((resolve) =>
            setTimeout(() => {
              if (!to.destroyed) to.write(chunk);
              from.resume();
              resolve();
            }, wait),
          ),
      );
    });
    from.on('end', () => void queue.then(() => to.end()));
    from.on('error', () => to.destroy());
  };

  const server = createServer((client) => {
    const upstream = connect(targetPort, targetHost);
    sockets.add(client).add(upstream);
    for (const s of [client, upstream]) s.on('close', () => sockets.delete(s));
    const ready = new Promise((r) => setTimeout(r, rttMs));
    client.pause();
    void ready.then(() => {
      client.resume();
      pace(client, upstream, up);
      pace(upstream, client, down);
    });
    upstream.on('error', () => client.destroy());
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    host: `127.0.0.1:${server.address().port}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
