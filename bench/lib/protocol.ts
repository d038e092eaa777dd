/** Messages between the load tool's main thread and its player workers. */
import type { HistogramData } from './stats.js';

export interface PlayerPlan {
  /** global index 0..N-1 (sets the start time in the ramp) */
  readonly index: number;
  /** rtmp://host:port/app */
  readonly appUrl: string;
  readonly name: string;
  /** index of the stream (publisher) whose origin this player's lag refers to */
  readonly stream: number;
  /** ms after the ramp start at which this player connects */
  readonly startOffsetMs: number;
  /** play over HTTP-FLV from this URL instead of RTMP (--flv-url) */
  readonly flvUrl?: string;
}

export interface PublisherPlan {
  readonly stream: number;
  readonly appUrl: string;
  readonly name: string;
  readonly startOffsetMs: number;
}

export interface WorkerInit {
  readonly workerIndex: number;
  readonly mediaFile: string;
  readonly players: readonly PlayerPlan[];
  /** publishers hosted by this worker (publishers mode) */
  readonly publishers: readonly PublisherPlan[];
  /** origins (epoch ms of timestamp 0) of streams published elsewhere, by stream index */
  readonly origins: Readonly<Record<number, number>>;
  readonly chunkSize: number;
  readonly connectTimeoutMs: number;
  /** a video timestamp jump larger than this is counted as a drop episode */
  readonly gapThresholdMs: number;
  readonly tickMs: number;
}

export type ToWorker =
  | { readonly kind: 'start'; readonly rampStart: number }
  | { readonly kind: 'windowStart' }
  | { readonly kind: 'windowEnd' }
  | { readonly kind: 'stop' };

export interface Tick {
  readonly kind: 'tick';
  readonly workerIndex: number;
  readonly connected: number;
  readonly failed: number;
  readonly closed: number;
  readonly payloadBytes: number;
  readonly publishersUp: number;
}

/** One player's startup times (ms from the start of its TCP connect; NaN when not reached). */
export interface Startup {
  readonly connect: number;
  readonly play: number;
  readonly firstMedia: number;
  readonly firstKeyframe: number;
}

export interface WindowReport {
  readonly kind: 'window';
  readonly workerIndex: number;
  readonly durationMs: number;
  /** media payload bytes received by all players in the window */
  readonly payloadBytes: number;
  /** bytes off the sockets (chunk headers included) */
  readonly wireBytes: number;
  /** what real-time players should have received: the publishers' schedule over the window, per planned player */
  readonly expectedBytes: number;
  readonly planned: number;
  readonly connectedAtStart: number;
  readonly connectedAtEnd: number;
  readonly failed: number;
  readonly failures: Readonly<Record<string, number>>;
  /** lag of every audio/video message in the window, all players */
  readonly lag: HistogramData;
  /** per player: p99 and max of its lag in the window (players that got media) */
  readonly perPlayerLagP99: readonly number[];
  readonly perPlayerLagMax: readonly number[];
  readonly gapEpisodes: number;
  readonly gapFrames: number;
  readonly playersWithGaps: number;
  readonly startups: readonly Startup[];
  /** event-loop utilization of the worker during the window (0..1) */
  readonly elu: number;
  /** publishers hosted here (publishers mode) */
  readonly publishers: readonly PublisherReport[];
}

export interface PublisherReport {
  readonly stream: number;
  readonly up: boolean;
  readonly error: string | undefined;
  readonly messages: number;
  readonly maxLateMs: number;
  readonly late50: number;
  readonly maxWriteQueue: number;
}

export type FromWorker =
  | { readonly kind: 'ready'; readonly workerIndex: number }
  | Tick
  | WindowReport
  | { readonly kind: 'stopped'; readonly workerIndex: number }
  | { readonly kind: 'error'; readonly workerIndex: number; readonly message: string };
