import { isAudioSequenceHeader } from '../media/audio.js';
import { FlvTagType } from '../media/flv.js';
import { isVideoKeyframe, isVideoSequenceHeader } from '../media/video.js';

/** What a frame carries; the numbers are FLV tag types (and RTMP message types for audio/video). */
export const FrameKind = {
  Audio: FlvTagType.Audio,
  Video: FlvTagType.Video,
  /** script data: an AMF0 ["onMetaData", {...}] body, as in an FLV script tag */
  Data: FlvTagType.Script,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export const FrameFlag = {
  None: 0,
  /** a video keyframe (a point a player can start from) */
  Keyframe: 1,
  /** a codec configuration record (AVC/HEVC/AAC sequence header) */
  SequenceHeader: 2,
} as const;

/**
 * One media message of a live stream, shared by every reader of the stream.
 * Outputs may cache one encoding of it (`wire`, tagged by an output-defined
 * `wireKey`) so that a message is encoded once and the same bytes go to all.
 */
export class MediaFrame {
  wire: Buffer | undefined = undefined;
  wireKey = -1;

  constructor(
    readonly kind: FrameKind,
    /** milliseconds, monotonic for the stream's lifetime (publisher reconnects included) */
    readonly timestamp: number,
    readonly payload: Buffer,
    readonly flags: number,
  ) {}

  get isKeyframe(): boolean {
    return (this.flags & FrameFlag.Keyframe) !== 0;
  }

  get isSequenceHeader(): boolean {
    return (this.flags & FrameFlag.SequenceHeader) !== 0;
  }
}

/** Classifies a payload with a few byte reads (no allocation). */
export function frameFlags(kind: FrameKind, payload: Buffer): number {
  switch (kind) {
    case FrameKind.Video:
      if (isVideoSequenceHeader(payload)) return FrameFlag.SequenceHeader;
      return isVideoKeyframe(payload) ? FrameFlag.Keyframe : FrameFlag.None;
    case FrameKind.Audio:
      return isAudioSequenceHeader(payload) ? FrameFlag.SequenceHeader : FrameFlag.None;
    case FrameKind.Data:
      return FrameFlag.None;
    default: {
      const never: never = kind;
      throw new TypeError(`unknown frame kind ${String(never)}`);
    }
  }
}
