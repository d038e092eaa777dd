import type { MediaFrame } from './frame.js';
import { FrameKind } from './frame.js';

/**
 * Where a live reader's frames go: an RTMP player, an HTTP-FLV response, a push
 * relay. The sink owns its output queue (for sockets: the socket's own write
 * buffer) and reports how much is waiting, so the reader can bound it.
 */
export interface FrameSink {
  /** bytes accepted by write() and not yet handed to the peer */
  queuedBytes(): number;
  write(frame: MediaFrame): void;
  /** optional batching: frames written between cork() and uncork() go out in one system call */
  cork?(): void;
  uncork?(): void;
  /** the stream got a publisher (also called at attach time when it already has one) */
  onStreamStart(info: StreamInfo): void;
  /** the publisher left; the reader stays attached and resumes on the next publish */
  onStreamStop(info: StreamInfo): void;
}

export interface StreamInfo {
  readonly app: string;
  readonly name: string;
}

export interface ReaderLimits {
  /** start dropping when more than this many bytes are queued */
  readonly maxQueuedBytes: number;
  /** resume at a keyframe only when the queue is below this */
  readonly resumeQueuedBytes: number;
  /** wait_key: video starts on a keyframe (default on) */
  readonly waitKey?: boolean;
  /** wait_video: no audio before the first video frame of a stream that has video */
  readonly waitVideo?: boolean;
}

export const DEFAULT_READER_LIMITS: ReaderLimits = { maxQueuedBytes: 4 * 1024 * 1024, resumeQueuedBytes: 1024 * 1024 };

/**
 * How a reader treats a consumer that cannot keep up.
 * - live: never wait, drop to the next keyframe (players, relays): LiveReader
 * - complete: every frame in order, from a bounded buffer of its own; a reader
 *   that overruns it is cut off (recorders, muxers): CompleteReader
 */
export const ReaderPolicy = { Live: 'live', Complete: 'complete' } as const;
export type ReaderPolicy = (typeof ReaderPolicy)[keyof typeof ReaderPolicy];

/**
 * A reader as LiveStream sees it, whatever its policy. LiveStream calls these
 * from its fan-out; none of them may throw for a reason of its own (a sink's
 * encoding error is caught by the stream and counted as undeliverable).
 */
export interface StreamReader {
  readonly policy: ReaderPolicy;
  /** set by LiveStream while the reader is in its set */
  attached: boolean;
  /** set by LiveStream when the stream has video (start points: keyframes, not any audio frame) */
  hasVideo: boolean;
  /** frames this reader did not deliver (live: dropped when slow; complete: lost after a cut-off) */
  readonly dropped: number;
  /** the stream (re)started: video starts at a keyframe again */
  restart(hasVideo: boolean): void;
  /** one frame of the fan-out, under the reader's policy */
  push(frame: MediaFrame): void;
  /** a frame replayed at attach time (metadata, codec headers): delivered without the start-point rule */
  send(frame: MediaFrame): void;
  /** brackets the frames of one flush (a socket sink: one system call) */
  cork(): void;
  uncork(): void;
  /** the stream got a publisher (also at attach time when it has one) */
  streamStarted(info: StreamInfo): void;
  /** the publisher left; the reader stays attached and resumes on the next publish */
  streamStopped(info: StreamInfo): void;
}

/**
 * The live policy: one consumer of a live stream, with a bounded queue. A reader that falls
 * behind drops media up to the next keyframe (counted); the publisher never
 * waits. Codec headers and metadata are never lost, but they do not pass the
 * bound either: while the reader is over it, the latest metadata, video header
 * and audio header are remembered (one slot each, a newer one replaces the
 * older) and sent when the reader resumes, before the frame it resumes on.
 */
export class LiveReader implements StreamReader {
  readonly policy = ReaderPolicy.Live;
  /** frames dropped because this reader was too slow */
  dropped = 0;
  /** number of times the reader entered the dropping state */
  dropEpisodes = 0;
  framesOut = 0;
  bytesOut = 0;
  private dropping = false;
  /** video must (re)start on a keyframe: set on attach and after a drop */
  private needKeyframe: boolean;
  /** wait_video: audio is held back until a video frame went out */
  private videoSent = false;
  /** set when the stream has video: audio-only streams resume on any frame */
  hasVideo = false;
  attached = false;
  // the limits, copied: the limits objects come in many shapes (spreads of the
  // configuration's), and reading them on the hot path made those loads megamorphic
  private readonly maxQueuedBytes: number;
  private readonly resumeQueuedBytes: number;
  private readonly waitVideo: boolean;
  /** superseding frames held while dropping (sent on resume, in this order) */
  private heldMetadata: MediaFrame | undefined = undefined;
  private heldVideoHeader: MediaFrame | undefined = undefined;
  private heldAudioHeader: MediaFrame | undefined = undefined;

  constructor(
    readonly sink: FrameSink,
    readonly limits: ReaderLimits = DEFAULT_READER_LIMITS,
    readonly onDropEpisode?: (reader: LiveReader) => void,
  ) {
    this.needKeyframe = limits.waitKey !== false;
    this.maxQueuedBytes = limits.maxQueuedBytes;
    this.resumeQueuedBytes = limits.resumeQueuedBytes;
    this.waitVideo = limits.waitVideo === true;
  }

  /** Called at (re)start of the stream: the first video frame must be a keyframe. */
  restart(hasVideo: boolean): void {
    this.hasVideo = hasVideo;
    this.needKeyframe = this.limits.waitKey !== false;
    this.dropping = false;
    this.videoSent = false;
    this.heldMetadata = this.heldVideoHeader = this.heldAudioHeader = undefined;
  }

  get isDropping(): boolean {
    return this.dropping;
  }

  /** The hot path: one call per frame per reader. */
  push(frame: MediaFrame): void {
    if (frame.kind === FrameKind.Data || frame.isSequenceHeader) {
      // rare frames: checking the bound here costs nothing on the media path
      if (!this.dropping && this.sink.queuedBytes() <= this.maxQueuedBytes) this.send(frame);
      else this.hold(frame);
      return;
    }
    const startPoint = frame.isKeyframe || (!this.hasVideo && frame.kind === FrameKind.Audio);
    if (this.dropping) {
      if (startPoint && this.sink.queuedBytes() <= this.resumeQueuedBytes) {
        this.dropping = false;
        this.needKeyframe = false;
        this.sendHeld();
      } else {
        this.dropped++;
        return;
      }
    } else if (this.sink.queuedBytes() > this.maxQueuedBytes) {
      this.dropping = true;
      this.dropEpisodes++;
      this.dropped++;
      this.onDropEpisode?.(this);
      return;
    }
    if (this.needKeyframe && frame.kind === FrameKind.Video) {
      if (!frame.isKeyframe) {
        this.dropped++;
        return;
      }
      this.needKeyframe = false;
    } else if (frame.kind === FrameKind.Audio && this.waitVideo && this.hasVideo && !this.videoSent) {
      this.dropped++;
      return;
    }
    this.send(frame);
  }

  /** Over the bound: metadata or a codec header waits in its slot, replacing the one before. */
  private hold(frame: MediaFrame): void {
    if (!this.dropping) {
      this.dropping = true;
      this.dropEpisodes++;
      this.onDropEpisode?.(this);
    }
    if (frame.kind === FrameKind.Data) this.heldMetadata = frame;
    else if (frame.kind === FrameKind.Video) this.heldVideoHeader = frame;
    else this.heldAudioHeader = frame;
  }

  /** Resuming: what was held goes out first, metadata then codec headers. */
  private sendHeld(): void {
    const m = this.heldMetadata;
    const v = this.heldVideoHeader;
    const a = this.heldAudioHeader;
    if (m === undefined && v === undefined && a === undefined) return;
    this.heldMetadata = this.heldVideoHeader = this.heldAudioHeader = undefined;
    if (m !== undefined) this.send(m);
    if (v !== undefined) this.send(v);
    if (a !== undefined) this.send(a);
  }

  cork(): void {
    this.sink.cork?.();
  }

  uncork(): void {
    this.sink.uncork?.();
  }

  streamStarted(info: StreamInfo): void {
    this.sink.onStreamStart(info);
  }

  streamStopped(info: StreamInfo): void {
    this.sink.onStreamStop(info);
  }

  /** Sends without the drop policy (cached headers, GOP replay). */
  send(frame: MediaFrame): void {
    if (frame.kind === FrameKind.Video) {
      if (frame.isKeyframe) this.needKeyframe = false;
      if (!frame.isSequenceHeader) this.videoSent = true;
    }
    this.framesOut++;
    this.bytesOut += frame.payload.length;
    this.sink.write(frame);
  }
}
