/**
 * Gives memory back after a crowd of players left. V8 collects old objects
 * only when allocation pushes it to, and a server that goes quiet allocates
 * little: without this, the connections' objects (and the heap pages under
 * them) stay until the next busy period. The server's housekeeping calls
 * check() with the connection count. When at least half of the peak (and at
 * least `minGone` connections) are gone, a collection is due; it runs once the
 * departures have settled (a check that sees no further drop), or after
 * `maxWaitMs` of a steady trickle, so that the objects of the ones still
 * leaving are not kept alive by a collection that came too early. At most
 * once per `minIntervalMs`.
 */
export interface ReclaimOptions {
  readonly minGone: number;
  readonly minIntervalMs: number;
  readonly maxWaitMs: number;
}

export const DEFAULT_RECLAIM_OPTIONS: ReclaimOptions = { minGone: 64, minIntervalMs: 10_000, maxWaitMs: 5_000 };

export class MemoryReclaimer {
  private peak = 0;
  private lastRun = Number.NEGATIVE_INFINITY;
  private last = 0;
  /** when the collection became due (NaN: not due) */
  private dueSince = Number.NaN;

  constructor(
    private readonly collect: () => void,
    private readonly options: ReclaimOptions = DEFAULT_RECLAIM_OPTIONS,
  ) {}

  /** Returns how many connections had left when it collected, or 0. */
  check(connections: number, now: number): number {
    const previous = this.last;
    this.last = connections;
    if (connections > this.peak) {
      this.peak = connections;
      this.dueSince = Number.NaN;
      return 0;
    }
    const gone = this.peak - connections;
    if (Number.isNaN(this.dueSince)) {
      if (gone < this.options.minGone || connections * 2 > this.peak || now - this.lastRun < this.options.minIntervalMs) return 0;
      this.dueSince = now;
      return 0;
    }
    if (connections < previous && now - this.dueSince < this.options.maxWaitMs) return 0;
    this.dueSince = Number.NaN;
    this.peak = connections;
    this.lastRun = now;
    this.collect();
    return gone;
  }
}
