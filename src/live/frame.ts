import { NO_ENCODING_KEY, type EncodingSlots } from '../core/encoding.js';
import { ErrorCode, isServerError } from '../core/errors.js';
import { isAudioSequenceHeader, parseAudioTag } from '../media/audio.js';
import { FlvTagType } from '../media/flv.js';
import { isVideoKeyframe, isVideoSequenceHeader, parseVideoTag } from '../media/video.js';

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
 * What a muxer needs of an audio/video frame, parsed from its FLV tag header
 * (src/media/video.ts, audio.ts) when a reader asks.
 */
export interface CodecData {
  /**
   * The codec as a FourCC, legacy codecs mapped to theirs: video 'avc1', 'hvc1',
   * 'av01', 'vp09', 'vp08'; audio 'mp4a' (AAC), '.mp3', 'Opus', 'fLaC', 'ac-3',
   * 'ec-3'; other legacy codecs 'legacy:<id>'; '' for an enhanced video command frame.
   */
  readonly codec: string;
  /** Enhanced RTMP (ExVideoTagHeader / ExAudioTagHeader) */
  readonly enhanced: boolean;
  /** video: the composition time offset in ms (pts - dts), signed; 0 for audio and codecs without one */
  readonly cts: number;
  /** a codec configuration record (AVCDecoderConfigurationRecord, HEVC/AV1/VP9 config, AudioSpecificConfig, ...) */
  readonly isConfig: boolean;
  /** a video keyframe carrying coded video */
  readonly isKeyframe: boolean;
  /** video end of sequence */
  readonly isEndOfSequence: boolean;
  /** the codec data: a view of the payload after the FLV audio/video tag header(s), not a copy */
  readonly data: Buffer;
}

/**
 * One media message of a live stream, shared by every reader of the stream.
 *
 * Encodings: outputs share one encoding of it per output format through the
 * slots `enc0..2` / `key0..2` (src/core/encoding.ts: `encodeShared(frame,
 * format)`), so a message is encoded once per format and the same bytes go to
 * every reader of that format.
 *
 * Codec facts: `flags` (keyframe, sequence header) are set on ingest with a few
 * byte reads; the rest (`codecData`: codec, cts, codec data view) is parsed
 * when a muxer asks, each time it asks: the ingest path pays nothing for it,
 * and a frame kept in the GOP cache does not keep two more objects (the facts
 * and a view) for the collector to promote and trace (until 2026-12-07 they
 * were kept on the frame, ~100 bytes per cached frame).
 */
export class MediaFrame implements EncodingSlots {
  enc0: Buffer | undefined = undefined;
  key0 = NO_ENCODING_KEY;
  enc1: Buffer | undefined = undefined;
  key1 = NO_ENCODING_KEY;
  enc2: Buffer | undefined = undefined;
  key2 = NO_ENCODING_KEY;
  /** the RTMP encoding that owns the payload's headroom, if any (src/rtmp/player.ts OutgoingMedia) */
  headroomKey = NO_ENCODING_KEY;

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

  /**
   * The frame's codec-level facts, parsed from the tag header at each call (a
   * few byte reads and a view: read it once per frame); undefined for script
   * data and for a tag header the parser rejects (truncated, unknown packet
   * type): a muxer skips such a frame.
   */
  get codecData(): CodecData | undefined {
    return parseCodecData(this.kind, this.payload);
  }

  /** the codec's FourCC ('' when there is no codec data): see CodecData.codec */
  get codec(): string {
    return this.codecData?.codec ?? '';
  }

  /** video composition time offset in ms (0 when there is none) */
  get cts(): number {
    return this.codecData?.cts ?? 0;
  }
}

function parseCodecData(kind: FrameKind, payload: Buffer): CodecData | undefined {
  try {
    switch (kind) {
      case FrameKind.Video: {
        const v = parseVideoTag(payload);
        return { codec: v.codec, enhanced: v.enhanced, cts: v.compositionTime, isConfig: v.isSequenceHeader, isKeyframe: v.isKeyframe, isEndOfSequence: v.isEndOfSequence, data: v.data };
      }
      case FrameKind.Audio: {
        const a = parseAudioTag(payload);
        return { codec: a.codec, enhanced: a.enhanced, cts: 0, isConfig: a.isSequenceHeader, isKeyframe: false, isEndOfSequence: false, data: a.data };
      }
      case FrameKind.Data:
        return undefined;
      default: {
        const never: never = kind;
        throw new TypeError(`unknown frame kind ${String(never)}`);
      }
    }
  } catch (e) {
    if (isServerError(e, ErrorCode.FlvMalformed)) return undefined;
    throw e;
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
