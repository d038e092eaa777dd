/**
 * Gives memory back after a crowd of players left. V8 collects old objects
 * only when allocation pushes it to, and a server that goes quiet allocates
 * little: without this, the connections' objects (and the heap pages under
 * them) stay until the next busy period. The server's housekeeping calls
 * check() with the connection count; when at least half of the peak (and at
 * least `minGone` connections) are gone, it runs one full collection, at most
 * once per `minIntervalMs`.
 */
export interface ReclaimOptions {
  readonly minGone: number;
  readonly minIntervalMs: number;
}

export const DEFAULT_RECLAIM_OPTIONS: ReclaimOptions = { minGone: 64, minIntervalMs: 10_000 };

export class MemoryReclaimer {
  private peak = 0;
  private lastRun = Number.NEGATIVE_INFINITY;
  runs = 0;

  constructor(
    private readonly collect: () => void,
    private readonly options: ReclaimOptions = DEFAULT_RECLAIM_OPTIONS,
  ) {}

  /** Returns how many connections had left when it collected, or 0. */
  check(connections: number, now: number): number {
    if (connections > this.peak) this.peak = connections;
    const gone = this.peak - connections;
    if (gone < this.options.minGone || connections * 2 > this.peak || now - this.lastRun < this.options.minIntervalMs) return 0;
    this.peak = connections;
    this.lastRun = now;
    this.runs++;
    this.collect();
    return gone;
  }
}
