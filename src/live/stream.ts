import { ErrorCode, describeError, serverError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { releaseEncodings } from '../core/encoding.js';
import { headroomOf } from '../core/payload-arena.js';
import { emptyArray } from '../core/queue.js';
import { FrameFlag, FrameKind, MediaFrame, frameFlags } from './frame.js';
import type { StreamInfo, StreamReader } from './reader.js';

/** frames pushed outside a batch whose encodings wait to be let go (see releaseSpare) */
const MAX_SPARE_FRAMES = 64;

export interface PublisherInfo {
  /** connection id or another unique tag, for logs and stats */
  readonly id: string;
  readonly remote: string;
  /** asks the publisher's transport to stop (drop_idle_publisher, control API) */
  stop(reason: string): void;
}

export interface StreamOptions {
  /** keep the frames since the last keyframe so a new reader starts at once */
  readonly gopCache: boolean;
  /** a GOP larger than this is not cached (the reader waits for the next keyframe) */
  readonly maxGopBytes: number;
  /**
   * 0: held frames are delivered when the publisher's read ends (no added
   * latency). Above 0: they are held up to this many ms and leave together,
   * fewer system calls per player for up to that much latency.
   */
  readonly flushWindow?: number;
}

/**
 * Delivers a stream's held frames: the hub's flusher brackets the flush in its
 * output batch (the server's write group), so the flush's writes to all the
 * readers leave together, one system call per reader.
 */
export interface FlushScheduler {
  /** flushes one stream now (at the end of a publisher read, or flush_window's timer) */
  flushNow(stream: LiveStream): void;
}

export const DEFAULT_STREAM_OPTIONS: StreamOptions = { gopCache: true, maxGopBytes: 32 * 1024 * 1024 };

export interface StreamStats {
  bytesIn: number;
  framesIn: number;
  videoFrames: number;
  audioFrames: number;
  publishedAt: number;
  /** Date.now() of the last audio/video frame (drop_idle_publisher) */
  lastMediaAt: number;
  /** drops summed over readers that have left */
  droppedByGoneReaders: number;
  /** deliveries of a frame to a reader that threw (e.g. a frame too large to encode): the frame was skipped for that reader */
  undeliverable: number;
}

/**
 * One live stream (application + name): its publisher, the cached metadata,
 * codec headers and GOP, and its readers. Knows nothing of RTMP or files.
 */
export class LiveStream implements StreamInfo {
  publisher: PublisherInfo | undefined = undefined;
  metadata: MediaFrame | undefined = undefined;
  videoHeader: MediaFrame | undefined = undefined;
  audioHeader: MediaFrame | undefined = undefined;
  hasVideo = false;
  hasAudio = false;
  readonly readers = new Set<StreamReader>();
  readonly stats: StreamStats = { bytesIn: 0, framesIn: 0, videoFrames: 0, audioFrames: 0, publishedAt: 0, lastMediaAt: 0, droppedByGoneReaders: 0, undeliverable: 0 };

  private gop: MediaFrame[] = [];
  private gopBytes = 0;
  private gopValid = false;
  /**
   * timestamp mapping: out = raw + offset, clamped to stay monotonic per kind;
   * the offset is re-based at a discontinuity (see mapTimestamp)
   */
  private offset = 0;
  /** the publisher's timestamp of the previous audio / video frame of this session (-1: none yet), and when it came */
  private lastRawAudio = -1;
  private lastRawAudioAt = 0;
  private lastRawVideo = -1;
  private lastRawVideoAt = 0;
  private sessionStarted = false;
  private everPublished = false;
  private lastOut = 0;
  private lastAudioOut = 0;
  private lastVideoOut = 0;
  private batchDepth = 0;
  /** frames of the current batch, not delivered yet */
  private held: MediaFrame[] = [];
  private spare: MediaFrame[] = [];
  /** frames in `spare` whose encodings are still to be let go (a counter: a new stream's empty array is never read) */
  private spareCount = 0;
  private flushPending = false;
  /**
   * `held` has frames. Tested instead of the array itself: a new stream's empty
   * arrays have another V8 hidden class (elements kind) than arrays that held
   * frames, and the hot path reading them would be thrown out of optimized code
   * each time a stream starts.
   */
  private holding = false;
  /** whether undeliverable() has logged for this stream */
  private undeliverableLogged = false;

  constructor(
    readonly app: string,
    readonly name: string,
    readonly options: StreamOptions = DEFAULT_STREAM_OPTIONS,
    /** without one, a batch is flushed as soon as it ends */
    private readonly scheduler?: FlushScheduler,
    /** where a frame that cannot be delivered is reported (once per stream) */
    private readonly log?: Logger,
  ) {}

  get key(): string {
    return streamKey(this.app, this.name);
  }

  get active(): boolean {
    return this.publisher !== undefined;
  }

  /** The GOP cache as it stands (for tests and stats). */
  get cachedGop(): readonly MediaFrame[] {
    return this.gopValid ? this.gop : [];
  }

  attachPublisher(pub: PublisherInfo): void {
    if (this.publisher !== undefined) {
      throw serverError(ErrorCode.StreamBusy, `stream ${this.key} is already being published by ${this.publisher.id}`);
    }
    this.flush();
    this.publisher = pub;
    this.metadata = undefined;
    this.videoHeader = undefined;
    this.audioHeader = undefined;
    this.hasVideo = false;
    this.hasAudio = false;
    this.resetGop();
    this.sessionStarted = false;
    this.stats.publishedAt = this.stats.lastMediaAt = Date.now();
    for (const r of this.readers) {
      r.restart(false);
      r.streamStarted(this);
    }
  }

  detachPublisher(pub: PublisherInfo): void {
    if (this.publisher !== pub) return;
    this.flush(); // the last frames go out before the readers hear the stream stopped
    this.publisher = undefined;
    this.resetGop();
    for (const r of this.readers) r.streamStopped(this);
  }

  /**
   * Frames pushed between beginBatch() and endBatch() (one publisher read) are
   * held and delivered together when the outermost endBatch() comes: at the
   * end of the read's own processing (or after flush_window). A reader then
   * gets the read's frames in one system call, and the read walks the readers
   * once. (Until 2026-12-07 the flush waited for the event loop's check phase,
   * setImmediate: the same writes, later, and one more callback per turn.)
   */
  beginBatch(): void {
    this.batchDepth++;
  }

  endBatch(): void {
    if (this.batchDepth > 0 && --this.batchDepth === 0 && this.holding && !this.flushPending) {
      const window = this.options.flushWindow ?? 0;
      if (window > 0) {
        this.flushPending = true;
        setTimeout(this.flushNow, window);
      } else {
        this.flushHeld();
      }
    }
  }

  /** Flushes through the scheduler (bracketed in the output batch). A method, not a closure per stream: the hot path calls one target. */
  private flushHeld(): void {
    if (this.scheduler === undefined) this.flush();
    else this.scheduler.flushNow(this);
  }

  /** flush_window's timer callback */
  private readonly flushNow = (): void => this.flushHeld();

  /** Delivers the held frames to every reader (their writes leave now). */
  flush(): void {
    this.flushPending = false;
    if (!this.holding) return;
    this.holding = false;
    // the previous flush's frames: every reader has had them (a complete reader too, from its microtask), so their
    // encodings are let go: the GOP cache keeps only the payloads (half the bytes, two objects less per cached frame
    // for the collector to promote and trace); a reader joining later has each cached frame encoded once more
    const previous = this.releaseSpare();
    const frames = this.held;
    // swap the two arrays: no allocation per flush, and frames pushed while delivering are kept
    this.held = previous;
    this.spare = frames;
    this.spareCount = frames.length;
    // a reader that throws (a frame its output cannot encode) misses that frame; nothing throws out of a flush
    if (frames.length === 1) {
      const f = frames[0]!;
      for (const r of this.readers) {
        try {
          r.push(f);
        } catch (e) {
          this.undeliverable(f, e);
        }
      }
    } else {
      for (const r of this.readers) {
        r.cork();
        for (let i = 0; i < frames.length; i++) {
          try {
            r.push(frames[i]!);
          } catch (e) {
            this.undeliverable(frames[i]!, e);
          }
        }
        r.uncork();
      }
    }
  }

  /**
   * A reader's sink threw while taking `frame` (an encoding that cannot be
   * made, e.g. larger than the RTMP length field): that reader misses the
   * frame, the others and the stream go on. A cached frame (metadata, codec
   * header, GOP) is forgotten so that it is not replayed to new readers.
   * Logged once per stream, counted in stats.undeliverable.
   */
  private undeliverable(frame: MediaFrame, e: unknown): void {
    this.stats.undeliverable++;
    if (this.metadata === frame) this.metadata = undefined;
    else if (this.videoHeader === frame) this.videoHeader = undefined;
    else if (this.audioHeader === frame) this.audioHeader = undefined;
    else if (this.gopValid && this.gop.includes(frame)) this.resetGop();
    if (this.undeliverableLogged) return;
    this.undeliverableLogged = true;
    this.log?.warn(
      { stream: this.key, kind: frame.kind, bytes: frame.payload.length, ...describeError(e) },
      'frame dropped: a reader could not take it (logged once per stream, counted in stats)',
    );
  }

  /** Lets the encodings of the frames delivered last go (see flush()); returns the emptied array. */
  private releaseSpare(): MediaFrame[] {
    const spare = this.spare;
    const n = this.spareCount;
    if (n === 0) return spare;
    for (let i = 0; i < n; i++) releaseEncodings(spare[i]!);
    emptyArray(spare);
    this.spareCount = 0;
    return spare;
  }

  /** The publisher's hot path: classify, cache, fan out. */
  pushMedia(kind: FrameKind, rawTimestamp: number, payload: Buffer): MediaFrame {
    const now = Date.now();
    const timestamp = this.mapTimestamp(kind, rawTimestamp, now);
    const flags = frameFlags(kind, payload);
    // a codec header stays cached for the whole session: out of a publisher's payload arena it gets bytes of
    // its own, so that it does not keep an arena slab alive (src/core/payload-arena.ts)
    if ((flags & FrameFlag.SequenceHeader) !== 0 && headroomOf(payload) !== 0) payload = Buffer.from(payload);
    const frame = new MediaFrame(kind, timestamp, payload, flags);
    this.stats.framesIn++;
    this.stats.bytesIn += payload.length;
    if (kind !== FrameKind.Data) this.stats.lastMediaAt = now;
    if (kind === FrameKind.Video) {
      this.stats.videoFrames++;
      if (!this.hasVideo) {
        this.hasVideo = true;
        for (const r of this.readers) r.hasVideo = true;
      }
    } else if (kind === FrameKind.Audio) {
      this.stats.audioFrames++;
      this.hasAudio = true;
    }
    this.cache(frame);
    if (this.batchDepth > 0) {
      this.held.push(frame);
      this.holding = true;
    }
    else {
      this.flush(); // frames held by an earlier batch go first
      for (const r of this.readers) {
        try {
          r.push(frame);
        } catch (e) {
          this.undeliverable(frame, e);
        }
      }
      // its encodings go with the next flush's, as a batch's do
      if (this.spareCount >= MAX_SPARE_FRAMES) this.releaseSpare();
      this.spare.push(frame);
      this.spareCount++;
    }
    return frame;
  }

  addReader(reader: StreamReader): void {
    // the held frames are already in the GOP cache the new reader is about to get;
    // they leave now, through the output batch (one write group for all the readers:
    // during a crowd's arrival this runs once per new player)
    this.flushHeld();
    this.readers.add(reader);
    reader.attached = true;
    if (this.publisher !== undefined) {
      reader.restart(this.hasVideo);
      reader.streamStarted(this);
      this.replayTo(reader);
    }
  }

  removeReader(reader: StreamReader): void {
    if (this.readers.delete(reader)) {
      reader.attached = false;
      this.stats.droppedByGoneReaders += reader.dropped;
    }
  }

  /** Nobody publishes and nobody reads: the hub may forget it. */
  get idle(): boolean {
    return this.publisher === undefined && this.readers.size === 0;
  }

  /** A new reader gets metadata, codec headers and the cached GOP, in one corked write. */
  private replayTo(reader: StreamReader): void {
    if (this.metadata === undefined && this.videoHeader === undefined && this.audioHeader === undefined && !this.gopValid) return;
    reader.cork();
    try {
      if (this.metadata) this.sendTo(reader, this.metadata);
      if (this.videoHeader) this.sendTo(reader, this.videoHeader);
      if (this.audioHeader) this.sendTo(reader, this.audioHeader);
      if (this.gopValid) {
        for (const f of this.gop) {
          try {
            reader.push(f);
          } catch (e) {
            this.undeliverable(f, e);
            break; // the GOP was forgotten
          }
        }
      }
    } finally {
      reader.uncork();
    }
  }

  private sendTo(reader: StreamReader, frame: MediaFrame): void {
    try {
      reader.send(frame);
    } catch (e) {
      this.undeliverable(frame, e);
    }
  }

  private cache(frame: MediaFrame): void {
    if (frame.kind === FrameKind.Data) {
      this.metadata = frame;
      return;
    }
    if (frame.isSequenceHeader) {
      if (frame.kind === FrameKind.Video) this.videoHeader = frame;
      else this.audioHeader = frame;
      return;
    }
    if (!this.options.gopCache) return;
    if (frame.isKeyframe) {
      emptyArray(this.gop); // its storage stays: the next GOP needs as much
      this.gopBytes = 0;
      this.gopValid = true;
    } else if (!this.gopValid) {
      // audio-only streams: every audio frame is a start point; keep a short tail
      if (this.hasVideo || frame.kind !== FrameKind.Audio) return;
      this.gopValid = true;
    }
    this.gop.push(frame);
    this.gopBytes += frame.payload.length;
    if (this.gopBytes > this.options.maxGopBytes) this.resetGop();
    else if (!this.hasVideo && this.gop.length > 64) {
      // audio-only: a bounded window of recent frames is enough
      this.gopBytes -= this.gop.shift()!.payload.length;
    }
  }

  private resetGop(): void {
    this.gop = [];
    this.gopBytes = 0;
    this.gopValid = false;
  }

  /**
   * The publisher's clock mapped to the stream's: monotonic per kind, and
   * continuous over publisher reconnects and over jumps of the publisher's
   * clock. A step from the previous frame of the same kind that goes back
   * more than TIMESTAMP_BACK_JUMP_MS, or forward more than TIMESTAMP_JUMP_MS
   * beyond the time that passed between the two frames, is a discontinuity
   * (an encoder restart, a 32-bit wrap, a hostile frame at 0xFFFFFF00): the
   * offset is re-based so that the frame continues from the latest output
   * timestamp, and later frames advance with the publisher's clock from
   * there. (A monotonic clamp alone would pin every later frame to the jump's
   * value.) Smaller steps back are clamped.
   */
  private mapTimestamp(kind: FrameKind, raw: number, now: number): number {
    if (kind === FrameKind.Data) {
      // script data neither starts a session nor moves the clock: placed at or before the latest media
      const d = this.sessionStarted ? raw + this.offset : this.lastOut;
      return (d < 0 ? 0 : d > this.lastOut ? this.lastOut : d) >>> 0;
    }
    if (!this.sessionStarted) {
      this.sessionStarted = true;
      // the first session keeps the publisher's clock; later ones continue from where the last stopped
      this.offset = this.everPublished ? this.lastOut - raw : 0;
      this.everPublished = true;
      this.lastRawAudio = this.lastRawVideo = -1;
    }
    const audio = kind === FrameKind.Audio;
    const prev = audio ? this.lastRawAudio : this.lastRawVideo;
    if (prev >= 0) {
      const step = raw - prev;
      const elapsed = now - (audio ? this.lastRawAudioAt : this.lastRawVideoAt);
      if (step < -TIMESTAMP_BACK_JUMP_MS || step > elapsed + TIMESTAMP_JUMP_MS) this.offset = this.lastOut - raw;
    }
    let ts = raw + this.offset;
    if (ts < 0) ts = 0;
    if (audio) {
      this.lastRawAudio = raw;
      this.lastRawAudioAt = now;
      if (ts < this.lastAudioOut) ts = this.lastAudioOut;
      this.lastAudioOut = ts;
    } else {
      this.lastRawVideo = raw;
      this.lastRawVideoAt = now;
      if (ts < this.lastVideoOut) ts = this.lastVideoOut;
      this.lastVideoOut = ts;
    }
    if (ts > this.lastOut) this.lastOut = ts;
    return ts >>> 0;
  }


}

/** a step of the publisher's clock (per kind) larger than this, beyond the time that passed, is a discontinuity */
export const TIMESTAMP_JUMP_MS = 5000;
/** a step back of the publisher's clock (per kind) larger than this is a discontinuity; smaller ones are clamped */
export const TIMESTAMP_BACK_JUMP_MS = 1000;

export function streamKey(app: string, name: string): string {
  return `${app}/${name}`;
}
