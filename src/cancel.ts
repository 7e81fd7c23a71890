/** What `cancelOnSignals` needs of the process (docs/architecture.md#dependencies: a test passes an EventEmitter). */
export interface SignalSource {
  on(event: NodeJS.Signals, listener: () => void): unknown;
  off(event: NodeJS.Signals, listener: () => void): unknown;
  kill(pid: number, signal: NodeJS.Signals): unknown;
  readonly pid: number;
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * Aborted when the step is cancelled. The runner sends SIGINT, then SIGTERM about 7.5 s later,
 * and kills what is left 2.5 s after that; a terminal's Ctrl-C sends SIGINT. Node's default is
 * to exit at once, which left the work directory in the temp dir and the `go build` children
 * running as orphans: the first signal aborts instead, so that the run stops its builds and
 * uploads and removes what it wrote; a second one exits at once, as the default would.
 */
export function cancelOnSignals(proc: SignalSource = process): AbortSignal {
  const controller = new AbortController();
  const listeners = SIGNALS.map((sig) => {
    const listener = () => {
      if (!controller.signal.aborted) return controller.abort(new Error(`cancelled by ${sig}: the builds and uploads were stopped`));
      for (const [i, s] of SIGNALS.entries()) proc.off(s, listeners[i]);
      proc.kill(proc.pid, sig);
    };
    return listener;
  });
  for (const [i, s] of SIGNALS.entries()) proc.on(s, listeners[i]);
  return controller.signal;
}
