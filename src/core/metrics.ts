/**
 * A tiny counter registry any layer may increment (outputs, muxers, recorders,
 * players) without importing each other: `/metrics` (src/http/metrics.ts)
 * writes every counter registered here as Prometheus text. Counters only go
 * up; a series is one set of label values. Names follow Prometheus rules
 * (`[a-zA-Z_:][a-zA-Z0-9_:]*`, counters end in `_total`); label values are
 * escaped when written.
 */

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export type Labels = Readonly<Record<string, string>>;

export class Counter {
  /** series by their label values joined with \u0000 */
  private readonly series = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  /** Adds n (default 1; must be >= 0) to the series of these labels (each of labelNames, nothing else). */
  inc(labels: Labels = {}, n = 1): void {
    if (!(n >= 0)) return;
    let key = '';
    for (let i = 0; i < this.labelNames.length; i++) key += (i === 0 ? '' : '\u0000') + (labels[this.labelNames[i]!] ?? '');
    const s = this.series.get(key);
    if (s !== undefined) s.value += n;
    else {
      const own: Record<string, string> = {};
      for (const l of this.labelNames) own[l] = labels[l] ?? '';
      this.series.set(key, { labels: own, value: n });
    }
  }

  /** The value of one series (0 when never incremented). */
  get(labels: Labels = {}): number {
    const key = this.labelNames.map((l) => labels[l] ?? '').join('\u0000');
    return this.series.get(key)?.value ?? 0;
  }

  *entries(): Iterable<{ labels: Labels; value: number }> {
    yield* this.series.values();
  }
}

export class MetricsRegistry {
  private readonly counters = new Map<string, Counter>();

  /** The counter of this name, made on first use; a second call with the same name returns the same counter. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    const have = this.counters.get(name);
    if (have !== undefined) return have;
    if (!NAME.test(name)) throw new TypeError(`bad metric name ${JSON.stringify(name)}`);
    for (const l of labelNames) if (!LABEL.test(l) || l.startsWith('__')) throw new TypeError(`bad label name ${JSON.stringify(l)}`);
    const c = new Counter(name, help, labelNames);
    this.counters.set(name, c);
    return c;
  }

  list(): readonly Counter[] {
    return [...this.counters.values()];
  }
}

/** The process's registry: what `/metrics` writes. */
export const metrics = new MetricsRegistry();

/**
 * The counters outputs share (one name each, so that HLS, DASH, recording and
 * players count the same way): `output` is the output's kind (`hls`, `dash`,
 * `record`, `http-flv`...), `app` the application.
 */
export const outputErrors = metrics.counter('rtmp_output_errors_total', 'Muxer and recorder errors (failed writes, overruns), by output kind and application.', ['output', 'app']);
export const droppedFrames = metrics.counter('rtmp_player_dropped_frames_total', 'Frames live players did not get (too slow: dropped to the next keyframe), by protocol and application; counted when the player leaves.', ['protocol', 'app']);

/**
 * Bytes of connections that have closed, by protocol and direction (`in`,
 * `out`): not written as such; `/metrics` adds them to the bytes of the open
 * connections to make the monotonic `rtmp_bytes_{in,out}_total`.
 */
export const closedConnectionBytes = new Counter('rtmp_closed_connection_bytes', 'bytes of closed connections', ['protocol', 'direction']);
