import { describeError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { emptyArray } from '../core/queue.js';
import type { MediaFrame } from './frame.js';
import { FrameKind } from './frame.js';
import { ReaderPolicy, type StreamInfo, type StreamReader } from './reader.js';

/**
 * Where a complete reader's frames go: a recorder, an HLS/DASH muxer. Frames
 * arrive in batches, asynchronously, in stream order. A batch is every frame
 * that arrived while the previous one was being written, so a recorder writes
 * one batch with one write (e.g. `fs.writev` of the frames' shared FLV tags).
 */
export interface BatchSink {
  /**
   * Takes the next frames, in order. Return a promise to hold the next batch
   * until it settles (a rejection cuts the reader off with its message);
   * return nothing when the batch is done on return. The array is the
   * reader's and is reused once the batch is done: copy it to keep it.
   */
  writeBatch(frames: readonly MediaFrame[]): Promise<void> | void;
  /**
   * The end: no frame follows, every accepted frame was given to writeBatch
   * and is done. `reason` says why it was cut off (buffer overrun, a failed
   * write), undefined for a normal finish(). Called once; the sink finalizes
   * its output here, and its owner unsubscribes the reader from the hub.
   */
  close(reason: string | undefined): void;
  /** the stream got a publisher; in order with the frames (after every frame before it was written) */
  onStreamStart?(info: StreamInfo): void;
  /** the publisher left; in order with the frames */
  onStreamStop?(info: StreamInfo): void;
}

export interface CompleteReaderLimits {
  /** payload bytes buffered or being written; one frame more and the reader is cut off */
  readonly maxBufferedBytes: number;
  /** frames buffered or being written; one more and the reader is cut off */
  readonly maxBufferedFrames: number;
}

/**
 * The defaults bound one recorder's memory to 16 MiB. The bound must hold a
 * whole cached GOP (the reader starts with it) plus what arrives during the
 * slowest write.
 */
export const DEFAULT_COMPLETE_READER_LIMITS: CompleteReaderLimits = { maxBufferedBytes: 16 * 1024 * 1024, maxBufferedFrames: 16 * 1024 };

const State = {
  /** taking frames */
  Open: 0,
  /** no new frames: writing what was accepted, then close(reason) */
  Ending: 1,
  /** close() called */
  Closed: 2,
} as const;
type State = (typeof State)[keyof typeof State];

const EventKind = { Start: 0, Stop: 1 } as const;
type EventKind = (typeof EventKind)[keyof typeof EventKind];

/**
 * Readers with frames to write, drained together in one microtask: a batch
 * of publisher reads that reaches many complete readers (a muxer per
 * stream) schedules one microtask, not one per reader. Node's
 * queueMicrotask() also makes an AsyncResource and a bound function per
 * call (~0.7 of 5 MB/s of the hls50 server's allocation, 2026-12-07); a
 * resolved promise's then() makes one reaction. Same timing as before: the
 * drains run in the microtask checkpoint after the code that pushed the
 * frames, in the order the readers were scheduled; a reader scheduled by
 * another's drain runs in the same pass.
 */
const drainTasks: (() => void)[] = [];
let drainsScheduled = false;
const resolved = Promise.resolve();

function scheduleDrain(task: () => void): void {
  drainTasks.push(task);
  if (drainsScheduled) return;
  drainsScheduled = true;
  void resolved.then(runDrains);
}

function runDrains(): void {
  // readers scheduled during the pass join it (drainsScheduled stays true until it ends)
  for (let i = 0; i < drainTasks.length; i++) {
    try {
      drainTasks[i]!();
    } catch (e) {
      // a drain does not throw (sink failures end that reader); if one does, it is reported as an uncaught
      // exception, as it was from its own microtask, and the other readers still drain
      queueMicrotask(() => {
        throw e;
      });
    }
  }
  emptyArray(drainTasks);
  drainsScheduled = false;
}

/** A stream event held in order with the frames: delivered once `at` frames were written. */
interface PendingEvent {
  readonly kind: EventKind;
  readonly info: StreamInfo;
  readonly at: number;
}

/**
 * The complete policy: every frame from the reader's start point on, in
 * order, none dropped. Frames wait in a bounded buffer of the reader's own and
 * go to the sink asynchronously, in batches, as fast as the sink takes them;
 * the publisher and the other readers never wait for it. When the buffer would
 * pass its bound (the sink is too slow for the stream), or the sink fails, the
 * reader is cut off: one log line with the reason, the frames it accepted are
 * still written, then `sink.close(reason)` so the output finalizes a valid
 * file ending at the cut. Nothing of this throws into the fan-out.
 *
 * Start point: at attach, the stream's metadata and codec headers, then the
 * cached GOP when the stream has one (a recording that begins with the
 * picture the viewers see, and a muxer that can cut its first segment at
 * once); without a GOP cache the reader starts at the next keyframe. Video
 * (re)starts on a keyframe, and in a stream with video no audio precedes it
 * (frames before the start point are counted in `skipped`). After a publisher
 * reconnect, the same: the new codec headers, then the next keyframe.
 */
export class CompleteReader implements StreamReader {
  readonly policy = ReaderPolicy.Complete;
  attached = false;
  hasVideo = false;
  /** frames not delivered because the reader had been cut off */
  dropped = 0;
  /** frames before the start point (see the class comment) */
  skipped = 0;
  /** frames accepted / bytes of their payloads */
  framesIn = 0;
  bytesIn = 0;
  /** frames the sink finished */
  framesWritten = 0;
  batches = 0;
  /** why the reader was cut off (undefined while it is not) */
  cutOffReason: string | undefined = undefined;

  private state: State = State.Open;
  private videoStarted = false;
  private queue: MediaFrame[] = [];
  /** the batch being written (then emptied and reused as the next queue) */
  private batch: MediaFrame[] = [];
  private bufferedBytes = 0;
  private batchBytes = 0;
  private writing = false;
  private scheduled = false;
  private events: PendingEvent[] = [];
  private readonly maxBufferedBytes: number;
  private readonly maxBufferedFrames: number;

  private readonly drainTask = (): void => {
    this.scheduled = false;
    this.drain();
  };

  private readonly batchDone = (): void => {
    this.endBatch();
    this.drain();
  };

  private readonly batchFailed = (e: unknown): void => {
    this.endBatch();
    this.fail(e);
  };

  constructor(
    readonly sink: BatchSink,
    limits: CompleteReaderLimits = DEFAULT_COMPLETE_READER_LIMITS,
    /** where the cut-off is logged (one line) */
    private readonly log?: Logger,
  ) {
    this.maxBufferedBytes = limits.maxBufferedBytes;
    this.maxBufferedFrames = limits.maxBufferedFrames;
  }

  /** frames accepted and not yet written (buffered or in the batch being written) */
  get bufferedFrames(): number {
    return this.queue.length + this.batch.length;
  }

  get isCutOff(): boolean {
    return this.cutOffReason !== undefined;
  }

  get isClosed(): boolean {
    return this.state === State.Closed;
  }

  restart(hasVideo: boolean): void {
    this.hasVideo = hasVideo;
    this.videoStarted = false;
  }

  push(frame: MediaFrame): void {
    if (this.state !== State.Open) {
      this.dropped++;
      return;
    }
    if (frame.kind === FrameKind.Video) {
      if (!this.videoStarted && !frame.isSequenceHeader) {
        if (!frame.isKeyframe) {
          this.skipped++;
          return;
        }
        this.videoStarted = true;
      }
    } else if (frame.kind === FrameKind.Audio && this.hasVideo && !this.videoStarted && !frame.isSequenceHeader) {
      this.skipped++;
      return;
    }
    this.accept(frame);
  }

  send(frame: MediaFrame): void {
    if (this.state !== State.Open) {
      this.dropped++;
      return;
    }
    if (frame.kind === FrameKind.Video && frame.isKeyframe) this.videoStarted = true;
    this.accept(frame);
  }

  cork(): void {}

  uncork(): void {}

  streamStarted(info: StreamInfo): void {
    this.event(EventKind.Start, info);
  }

  streamStopped(info: StreamInfo): void {
    this.event(EventKind.Stop, info);
  }

  /** The owner is done with it (e.g. record stopped): the accepted frames are written, then sink.close(undefined). */
  finish(): void {
    if (this.state !== State.Open) return;
    this.state = State.Ending;
    this.schedule();
  }

  private accept(frame: MediaFrame): void {
    const bytes = this.bufferedBytes + this.batchBytes + frame.payload.length;
    const frames = this.queue.length + this.batch.length + 1;
    if (bytes > this.maxBufferedBytes || frames > this.maxBufferedFrames) {
      this.dropped++;
      this.cutOff(
        bytes > this.maxBufferedBytes
          ? `buffer full: ${bytes} bytes would pass the bound of ${this.maxBufferedBytes} (the output is slower than the stream)`
          : `buffer full: ${frames} frames would pass the bound of ${this.maxBufferedFrames} (the output is slower than the stream)`,
      );
      return;
    }
    this.queue.push(frame);
    this.bufferedBytes += frame.payload.length;
    this.framesIn++;
    this.bytesIn += frame.payload.length;
    this.schedule();
  }

  private event(kind: EventKind, info: StreamInfo): void {
    if (this.state === State.Closed) return;
    this.events.push({ kind, info, at: this.framesIn });
    this.schedule();
  }

  /** Stops taking frames; the log line and the close happen later, outside the fan-out. */
  private cutOff(reason: string): void {
    if (this.state !== State.Open) return;
    this.state = State.Ending;
    this.cutOffReason = reason;
    this.schedule();
  }

  /** The sink failed: what is buffered is not written (the output is broken), the sink is closed. */
  private fail(e: unknown): void {
    const d = describeError(e);
    if (this.state === State.Open) this.cutOff(`the output failed: ${d.message}`);
    else if (this.cutOffReason === undefined) this.cutOffReason = `the output failed: ${d.message}`;
    this.dropped += this.queue.length;
    this.queue.length = 0;
    this.bufferedBytes = 0;
    this.events.length = 0;
    this.close();
  }

  private schedule(): void {
    if (this.scheduled || this.writing || this.state === State.Closed) return;
    this.scheduled = true;
    scheduleDrain(this.drainTask);
  }

  /** Writes the next batch (events in order between them); closes once ending and empty. */
  private drain(): void {
    while (!this.writing && this.state !== State.Closed) {
      this.deliverEvents();
      if (this.isClosed) return; // an event handler failed
      const queue = this.queue;
      if (queue.length === 0) {
        if (this.state === State.Ending) this.close();
        return;
      }
      // a pending event splits the batch: the frames before it go first (rare: publisher start/stop)
      const next = this.events[0];
      const cut = next === undefined ? queue.length : next.at - this.framesWritten;
      let batch: MediaFrame[];
      if (cut >= queue.length) {
        batch = queue;
        this.queue = this.batch;
      } else {
        batch = queue.splice(0, cut);
      }
      this.batch = batch;
      let bytes = 0;
      for (let i = 0; i < batch.length; i++) bytes += batch[i]!.payload.length;
      this.batchBytes = bytes;
      this.bufferedBytes -= bytes;
      this.writing = true;
      this.batches++;
      let pending: Promise<void> | void;
      try {
        pending = this.sink.writeBatch(batch);
      } catch (e) {
        this.batchFailed(e);
        return;
      }
      if (pending !== undefined) {
        pending.then(this.batchDone, this.batchFailed);
        return;
      }
      this.endBatch();
    }
  }

  private endBatch(): void {
    this.framesWritten += this.batch.length;
    emptyArray(this.batch);
    this.batchBytes = 0;
    this.writing = false;
  }

  private deliverEvents(): void {
    const events = this.events;
    while (events.length > 0 && events[0]!.at <= this.framesWritten) {
      const ev = events.shift()!;
      try {
        switch (ev.kind) {
          case EventKind.Start:
            this.sink.onStreamStart?.(ev.info);
            break;
          case EventKind.Stop:
            this.sink.onStreamStop?.(ev.info);
            break;
          default: {
            const never: never = ev.kind;
            throw new TypeError(`unknown stream event ${String(never)}`);
          }
        }
      } catch (e) {
        this.fail(e);
        return;
      }
    }
  }

  private close(): void {
    if (this.state === State.Closed) return;
    this.state = State.Closed;
    this.events.length = 0;
    if (this.cutOffReason !== undefined) {
      this.log?.warn({ policy: this.policy, written: this.framesWritten, dropped: this.dropped }, `complete reader cut off: ${this.cutOffReason}`);
    }
    try {
      this.sink.close(this.cutOffReason);
    } catch (e) {
      this.log?.error({ policy: this.policy, ...describeError(e) }, 'complete reader: the sink failed to close');
    }
  }
}
