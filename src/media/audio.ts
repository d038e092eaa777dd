import { ByteReader } from '../core/bytes.js';
import { ErrorCode, serverError } from '../core/errors.js';
import { NO_TAG_DATA, peekExPacketType, readModExChain, readTrackHeader } from './flv.js';

/**
 * The FLV / RTMP audio tag header: legacy (FLV spec v10.1, E.4.2.1) and
 * Enhanced RTMP (veovera enhanced-rtmp v2, ExAudioTagHeader).
 *
 * Multitrack (AudioPacketType.Multitrack) is parsed as far as the first track
 * of the message: `codec` and `data` describe that track and `multitrack` is
 * set; the other tracks are not returned.
 */

export const SoundFormat = {
  Pcm: 0,
  Adpcm: 1,
  Mp3: 2,
  PcmLe: 3,
  Nellymoser16: 4,
  Nellymoser8: 5,
  Nellymoser: 6,
  G711A: 7,
  G711U: 8,
  /** Enhanced RTMP: the low nibble is an AudioPacketType and a FourCC follows */
  ExHeader: 9,
  Aac: 10,
  Speex: 11,
  Mp38k: 14,
  DeviceSpecific: 15,
} as const;
export type SoundFormat = (typeof SoundFormat)[keyof typeof SoundFormat];

export const AacPacketType = { SequenceHeader: 0, Raw: 1 } as const;
export type AacPacketType = (typeof AacPacketType)[keyof typeof AacPacketType];

export const AudioPacketType = {
  SequenceStart: 0,
  CodedFrames: 1,
  SequenceEnd: 2,
  MultichannelConfig: 4,
  Multitrack: 5,
  ModEx: 7,
} as const;
export type AudioPacketType = (typeof AudioPacketType)[keyof typeof AudioPacketType];

export const AudioFourCC = { Aac: 'mp4a', Opus: 'Opus', Flac: 'fLaC', Ac3: 'ac-3', Eac3: 'ec-3', Mp3: '.mp3' } as const;
export type AudioFourCC = (typeof AudioFourCC)[keyof typeof AudioFourCC];

/** Legacy SoundRate (2 bits) in Hz. AAC always says 3 (44 kHz): read the AudioSpecificConfig. */
const SOUND_RATES = [5500, 11025, 22050, 44100] as const;
const SoundSizeBits = { Bits8: 8, Bits16: 16 } as const;

export interface AudioTagInfo {
  enhanced: boolean;
  /** 'mp4a' for AAC, 'Opus', 'fLaC', 'ac-3', 'ec-3', '.mp3' (legacy MP3 maps here too), or 'legacy:<format>' */
  codec: string;
  /** Hz from the legacy header; 0 for enhanced tags (read the codec's sequence header) */
  soundRate: number;
  /** bits per sample from the legacy header (8 or 16); 0 for enhanced tags */
  soundSize: number;
  /** legacy SoundType; false for enhanced tags */
  stereo: boolean;
  /** legacy AAC AacPacketType 0, or enhanced SequenceStart */
  isSequenceHeader: boolean;
  /** view of the codec payload after the header(s) */
  data: Buffer;
  /** legacy AAC: the AacPacketType; enhanced: the AudioPacketType (after ModEx / Multitrack); else undefined */
  packetType?: number;
  /** sum of the ModEx TimestampOffsetNano values, when present */
  timestampOffsetNano?: number;
  /** set for a Multitrack message: its AvMultitrackType and the first track's id */
  multitrack?: { type: number; trackId: number };
}

/** Parses an audio tag / RTMP audio message header. Throws FlvMalformed on truncation or unknown packet types. */
export function parseAudioTag(payload: Buffer): AudioTagInfo {
  const r = new ByteReader(payload, 0, payload.length, ErrorCode.FlvMalformed);
  const b0 = r.u8();
  const format = b0 >> 4;
  return format === SoundFormat.ExHeader ? parseEnhanced(r, b0) : parseLegacy(r, b0, format);
}

function legacyCodec(format: number): string {
  switch (format) {
    case SoundFormat.Aac:
      return AudioFourCC.Aac;
    case SoundFormat.Mp3:
    case SoundFormat.Mp38k:
      return AudioFourCC.Mp3;
    default:
      return `legacy:${format}`;
  }
}

function parseLegacy(r: ByteReader, b0: number, format: number): AudioTagInfo {
  const info: AudioTagInfo = {
    enhanced: false,
    codec: legacyCodec(format),
    soundRate: SOUND_RATES[(b0 >> 2) & 0x03]!,
    soundSize: (b0 & 0x02) !== 0 ? SoundSizeBits.Bits16 : SoundSizeBits.Bits8,
    stereo: (b0 & 0x01) !== 0,
    isSequenceHeader: false,
    data: NO_TAG_DATA,
  };
  if (format === SoundFormat.Aac) {
    const packetType = r.u8();
    switch (packetType) {
      case AacPacketType.SequenceHeader:
        info.isSequenceHeader = true;
        break;
      case AacPacketType.Raw:
        break;
      default:
        throw serverError(ErrorCode.FlvMalformed, `unknown AACPacketType ${packetType}`);
    }
    info.packetType = packetType;
  }
  info.data = r.rest();
  return info;
}

function parseEnhanced(r: ByteReader, b0: number): AudioTagInfo {
  const modEx = readModExChain(r, b0 & 0x0f);
  let packetType = modEx.packetType;
  const info: AudioTagInfo = {
    enhanced: true,
    codec: '',
    soundRate: 0,
    soundSize: 0,
    stereo: false,
    isSequenceHeader: false,
    data: NO_TAG_DATA,
    packetType,
  };
  if (modEx.timestampOffsetNano !== undefined) info.timestampOffsetNano = modEx.timestampOffsetNano;

  const track = readTrackHeader(r, info, packetType, 'Audio', AudioPacketType.Multitrack, AudioPacketType.ModEx);
  packetType = track.packetType;
  const body = track.body;

  switch (packetType) {
    case AudioPacketType.SequenceStart:
      info.isSequenceHeader = true;
      break;
    case AudioPacketType.CodedFrames:
    case AudioPacketType.SequenceEnd:
    case AudioPacketType.MultichannelConfig:
      break;
    default:
      throw serverError(ErrorCode.FlvMalformed, `unknown AudioPacketType ${packetType}`);
  }
  info.data = body.rest();
  return info;
}

/** Hot path, non-throwing, allocation-free: legacy AAC AacPacketType 0, or enhanced SequenceStart. */
export function isAudioSequenceHeader(payload: Buffer): boolean {
  const b0 = payload[0];
  if (b0 === undefined) return false;
  const format = b0 >> 4;
  if (format === SoundFormat.Aac) return payload[1] === AacPacketType.SequenceHeader;
  if (format !== SoundFormat.ExHeader) return false;
  return peekExPacketType(payload, AudioPacketType.Multitrack) === AudioPacketType.SequenceStart;
}
