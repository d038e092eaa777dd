/**
 * Small statistics helpers for the load tool: a log-bucketed histogram
 * (constant memory, mergeable across workers, ~1% relative error), exact
 * percentiles of small arrays, and number formatting.
 */

/** Values below this land in bucket 0 (ms). */
const HIST_MIN = 0.01;
/** Bucket i (i >= 1) covers [HIST_MIN * RATIO^(i-1), HIST_MIN * RATIO^i). */
const HIST_RATIO = 1.02;
const LOG_RATIO = Math.log(HIST_RATIO);
/** 0.01 ms .. ~4e6 ms */
export const HIST_BUCKETS = 1000;

export interface HistogramData {
  counts: number[];
  count: number;
  sum: number;
  max: number;
}

/** Log-bucketed histogram of non-negative values (milliseconds here). */
export class Histogram {
  counts: Uint32Array;
  count = 0;
  sum = 0;
  max = 0;

  constructor(buckets = HIST_BUCKETS) {
    this.counts = new Uint32Array(buckets);
  }

  static bucketOf(v: number, buckets = HIST_BUCKETS): number {
    if (!(v >= HIST_MIN)) return 0;
    const b = 1 + Math.floor(Math.log(v / HIST_MIN) / LOG_RATIO);
    return b < buckets ? b : buckets - 1;
  }

  /** A representative value of bucket b (its geometric middle). */
  static valueOf(b: number): number {
    if (b <= 0) return HIST_MIN / 2;
    return HIST_MIN * Math.pow(HIST_RATIO, b - 0.5);
  }

  add(v: number): void {
    if (v < 0) v = 0;
    this.addBucket(Histogram.bucketOf(v, this.counts.length), v);
  }

  /** add() with the bucket already computed (one log() for several histograms of the same size) */
  addBucket(b: number, v: number): void {
    this.counts[b]!++;
    this.count++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.max = 0;
  }

  merge(d: HistogramData): void {
    const n = Math.min(d.counts.length, this.counts.length);
    for (let i = 0; i < n; i++) this.counts[i]! += d.counts[i]!;
    this.count += d.count;
    this.sum += d.sum;
    if (d.max > this.max) this.max = d.max;
  }

  /** p in [0, 100]; the exact max for p = 100; NaN when empty. */
  percentile(p: number): number {
    if (this.count === 0) return NaN;
    if (p >= 100) return this.max;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(Histogram.valueOf(i), this.max);
    }
    return this.max;
  }

  get mean(): number {
    return this.count === 0 ? NaN : this.sum / this.count;
  }

  toData(): HistogramData {
    return { counts: Array.from(this.counts), count: this.count, sum: this.sum, max: this.max };
  }
}

/** Exact percentile (nearest rank) of an unsorted array; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1]!;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    p50: percentile(values, 50),
    p95: percentile(values, 95),
    p99: percentile(values, 99),
    max: values.length === 0 ? NaN : values.reduce((a, b) => (b > a ? b : a), -Infinity),
  };
}

/** Rounds for JSON: finite numbers to `digits` decimals, NaN/Infinity to null. */
export function round(v: number, digits = 3): number | null {
  if (!Number.isFinite(v)) return null;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** Formats a number for the human summary ("n/a" for non-finite). */
export function fmt(v: number | null | undefined, digits = 2): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return 'n/a';
  return v.toFixed(digits);
}

/** The wall clock with sub-millisecond resolution, comparable across worker threads (epoch ms). */
export function clock(): number {
  return performance.timeOrigin + performance.now();
}
