import { ByteReader } from '../core/bytes.js';
import { ErrorCode, serverError } from '../core/errors.js';
import { NO_TAG_DATA, peekExPacketType, readModExChain, readTrackHeader } from './flv.js';

/**
 * The FLV / RTMP video tag header: legacy (FLV spec v10.1, E.4.3.1) and
 * Enhanced RTMP (veovera enhanced-rtmp v1/v2, ExVideoTagHeader).
 *
 * Multitrack (VideoPacketType.Multitrack) is parsed as far as the first track
 * of the message: `codec`, `compositionTime` and `data` describe that track and
 * `multitrack` is set; the other tracks are not returned.
 */

/** Legacy CodecID (low nibble of the first byte when IsExHeader is 0). */
export const VideoCodecId = {
  H263: 2,
  ScreenVideo: 3,
  Vp6: 4,
  Vp6Alpha: 5,
  ScreenVideo2: 6,
  Avc: 7,
  /** non-standard, used by some Chinese CDNs: same layout as AVC, HEVC payload */
  Hevc: 12,
} as const;
export type VideoCodecId = (typeof VideoCodecId)[keyof typeof VideoCodecId];

export const VideoFrameType = { Key: 1, Inter: 2, DisposableInter: 3, Generated: 4, Command: 5 } as const;
export type VideoFrameType = (typeof VideoFrameType)[keyof typeof VideoFrameType];

/** Legacy AVCPacketType (also used by legacy HEVC, codec id 12). */
export const AvcPacketType = { SequenceHeader: 0, Nalu: 1, EndOfSequence: 2 } as const;
export type AvcPacketType = (typeof AvcPacketType)[keyof typeof AvcPacketType];

/** Enhanced RTMP VideoPacketType (low nibble of the first byte when IsExHeader is 1). */
export const VideoPacketType = {
  SequenceStart: 0,
  CodedFrames: 1,
  SequenceEnd: 2,
  CodedFramesX: 3,
  Metadata: 4,
  Mpeg2TsSequenceStart: 5,
  Multitrack: 6,
  ModEx: 7,
} as const;
export type VideoPacketType = (typeof VideoPacketType)[keyof typeof VideoPacketType];

export const VideoFourCC = { Avc: 'avc1', Hevc: 'hvc1', Av1: 'av01', Vp8: 'vp08', Vp9: 'vp09' } as const;
export type VideoFourCC = (typeof VideoFourCC)[keyof typeof VideoFourCC];

/** The UI8 that follows a Command frame's header. */
export const VideoCommand = { StartSeek: 0, EndSeek: 1 } as const;

/** IsExHeader: the top bit of the first byte. */
const EX_HEADER_BIT = 0x80;

export interface VideoTagInfo {
  enhanced: boolean;
  frameType: number;
  /** 'avc1', 'hvc1' (legacy AVC/HEVC map here too), 'av01', 'vp09', ...; 'legacy:<id>' for other legacy codecs; '' for an enhanced command frame (it has no FourCC) */
  codec: string;
  /** a keyframe carrying coded video (not a sequence header, command or metadata) */
  isKeyframe: boolean;
  /** legacy AVC/HEVC sequence header, or enhanced SequenceStart / Mpeg2TsSequenceStart */
  isSequenceHeader: boolean;
  isEndOfSequence: boolean;
  /** ms, signed */
  compositionTime: number;
  /** view of the codec payload after the header(s) */
  data: Buffer;
  /** enhanced: the VideoPacketType (after ModEx / Multitrack); legacy AVC/HEVC: the AvcPacketType; else undefined */
  packetType?: number;
  /** a Command frame's VideoCommand */
  command?: number;
  /** sum of the ModEx TimestampOffsetNano values, when present */
  timestampOffsetNano?: number;
  /** set for a Multitrack message: its AvMultitrackType and the first track's id */
  multitrack?: { type: number; trackId: number };
}

function isAvcLike(fourCC: string): boolean {
  return fourCC === VideoFourCC.Avc || fourCC === VideoFourCC.Hevc;
}

/** Parses a video tag / RTMP video message header. Throws FlvMalformed on truncation or unknown packet types. */
export function parseVideoTag(payload: Buffer): VideoTagInfo {
  const r = new ByteReader(payload, 0, payload.length, ErrorCode.FlvMalformed);
  const b0 = r.u8();
  return (b0 & EX_HEADER_BIT) === 0 ? parseLegacy(r, b0) : parseEnhanced(r, b0);
}

function parseLegacy(r: ByteReader, b0: number): VideoTagInfo {
  const frameType = b0 >> 4;
  const codecId = b0 & 0x0f;
  const avcLike = codecId === VideoCodecId.Avc || codecId === VideoCodecId.Hevc;
  const codec = codecId === VideoCodecId.Avc ? VideoFourCC.Avc : codecId === VideoCodecId.Hevc ? VideoFourCC.Hevc : `legacy:${codecId}`;
  const info: VideoTagInfo = {
    enhanced: false,
    frameType,
    codec,
    isKeyframe: false,
    isSequenceHeader: false,
    isEndOfSequence: false,
    compositionTime: 0,
    data: NO_TAG_DATA,
  };
  if (frameType === VideoFrameType.Command) {
    info.command = r.u8();
    info.data = r.rest();
    return info;
  }
  if (!avcLike) {
    info.isKeyframe = frameType === VideoFrameType.Key;
    info.data = r.rest();
    return info;
  }
  const packetType = r.u8();
  const compositionTime = r.i24();
  info.packetType = packetType;
  switch (packetType) {
    case AvcPacketType.SequenceHeader:
      info.isSequenceHeader = true;
      break;
    case AvcPacketType.Nalu:
      info.isKeyframe = frameType === VideoFrameType.Key;
      info.compositionTime = compositionTime;
      break;
    case AvcPacketType.EndOfSequence:
      info.isEndOfSequence = true;
      break;
    default:
      throw serverError(ErrorCode.FlvMalformed, `unknown AVCPacketType ${packetType}`);
  }
  info.data = r.rest();
  return info;
}

function parseEnhanced(r: ByteReader, b0: number): VideoTagInfo {
  const frameType = (b0 >> 4) & 0x07;
  const modEx = readModExChain(r, b0 & 0x0f);
  let packetType = modEx.packetType;
  const info: VideoTagInfo = {
    enhanced: true,
    frameType,
    codec: '',
    isKeyframe: false,
    isSequenceHeader: false,
    isEndOfSequence: false,
    compositionTime: 0,
    data: NO_TAG_DATA,
    packetType,
  };
  if (modEx.timestampOffsetNano !== undefined) info.timestampOffsetNano = modEx.timestampOffsetNano;

  if (packetType !== VideoPacketType.Metadata && frameType === VideoFrameType.Command) {
    info.command = r.u8();
    info.data = r.rest();
    return info;
  }

  const track = readTrackHeader(r, info, packetType, 'Video', VideoPacketType.Multitrack, VideoPacketType.ModEx);
  packetType = track.packetType;
  const body = track.body;

  switch (packetType) {
    case VideoPacketType.SequenceStart:
    case VideoPacketType.Mpeg2TsSequenceStart:
      info.isSequenceHeader = true;
      break;
    case VideoPacketType.CodedFrames:
      if (isAvcLike(info.codec)) info.compositionTime = body.i24();
      info.isKeyframe = frameType === VideoFrameType.Key;
      break;
    case VideoPacketType.CodedFramesX:
      info.isKeyframe = frameType === VideoFrameType.Key;
      break;
    case VideoPacketType.SequenceEnd:
      info.isEndOfSequence = true;
      break;
    case VideoPacketType.Metadata:
      // AMF-encoded metadata (e.g. colorInfo); the frame type is to be ignored
      break;
    default:
      throw serverError(ErrorCode.FlvMalformed, `unknown VideoPacketType ${packetType}`);
  }
  info.data = body.rest();
  return info;
}

/**
 * Hot path, non-throwing, allocation-free: a keyframe carrying coded video
 * (frame type Key; legacy AVC/HEVC NALU packet, enhanced CodedFrames(X); any
 * legacy codec's key frame). Sequence headers, command and metadata frames are not.
 */
export function isVideoKeyframe(payload: Buffer): boolean {
  const b0 = payload[0];
  if (b0 === undefined) return false;
  if ((b0 & EX_HEADER_BIT) === 0) {
    if (b0 >> 4 !== VideoFrameType.Key) return false;
    const codecId = b0 & 0x0f;
    if (codecId !== VideoCodecId.Avc && codecId !== VideoCodecId.Hevc) return true;
    return payload[1] === AvcPacketType.Nalu;
  }
  if (((b0 >> 4) & 0x07) !== VideoFrameType.Key) return false;
  const pt = peekExPacketType(payload, VideoPacketType.Multitrack);
  return pt === VideoPacketType.CodedFrames || pt === VideoPacketType.CodedFramesX;
}

/**
 * Hot path, non-throwing, allocation-free: a codec configuration record
 * (legacy AVC/HEVC AVCPacketType 0, enhanced SequenceStart or
 * Mpeg2TsSequenceStart). Command frames are not.
 */
export function isVideoSequenceHeader(payload: Buffer): boolean {
  const b0 = payload[0];
  if (b0 === undefined) return false;
  if ((b0 & EX_HEADER_BIT) === 0) {
    const codecId = b0 & 0x0f;
    if (codecId !== VideoCodecId.Avc && codecId !== VideoCodecId.Hevc) return false;
    if (b0 >> 4 === VideoFrameType.Command) return false;
    return payload[1] === AvcPacketType.SequenceHeader;
  }
  const pt = peekExPacketType(payload, VideoPacketType.Multitrack);
  if (((b0 >> 4) & 0x07) === VideoFrameType.Command && pt !== VideoPacketType.Metadata) return false;
  return pt === VideoPacketType.SequenceStart || pt === VideoPacketType.Mpeg2TsSequenceStart;
}
