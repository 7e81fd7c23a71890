// A TCP forwarder that makes a registry on 127.0.0.1 look like one across a network link: every
// byte in either direction waits for its share of `mbit` megabits per second (one shared budget
// per direction, as one uplink is shared by concurrent uploads) and then arrives half a round
// trip (`rttMs` / 2) later, so that every request and its answer cost a round trip as they do
// on a real network; a new connection's first byte also waits `rttMs` (its handshake). Used by
// bench/run.mjs when BENCH_LINK_MBIT is set, to compare tools when the network, not the CPU,
// is the slow part, as it is from a runner to GHCR.
import { connect, createServer } from 'node:net';

/** Start the link in front of `target` (`host:port`); resolves { host, close }. */
export async function startLink(target, { mbit, rttMs = 0 }) {
  const [targetHost, targetPort] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const bytesPerMs = (mbit * 1e6) / 8 / 1000;
  const budget = () => ({ freeAt: 0 });
  const up = budget();
  const down = budget();
  const sockets = new Set();

  /**
   * Forward `from` → `to`: the sender waits while the direction's link carries each chunk (after
   * the ones before it), and the chunk arrives half a round trip after it was carried, in order.
   */
  const pace = (from, to, dir) => {
    const inFlight = []; // { chunk, at }, in the order sent; `at` only grows
    let timer;
    let ended = false;
    const deliver = () => {
      timer = undefined;
      while (inFlight.length && inFlight[0].at <= performance.now()) {
        const { chunk } = inFlight.shift();
        if (!to.destroyed) to.write(chunk);
      }
      if (inFlight.length) timer = setTimeout(deliver, Math.max(0, inFlight[0].at - performance.now()));
      else if (ended) to.end();
    };
    from.on('data', (chunk) => {
      from.pause();
      const now = performance.now();
      dir.freeAt = Math.max(now, dir.freeAt) + chunk.length / bytesPerMs;
      setTimeout(() => from.resume(), dir.freeAt - now);
      inFlight.push({ chunk, at: dir.freeAt + rttMs / 2 });
      timer ??= setTimeout(deliver, inFlight[0].at - now);
    });
    from.on('end', () => {
      ended = true;
      if (!inFlight.length && !timer) to.end();
    });
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
